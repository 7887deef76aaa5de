"""Message bundles shaped like Ocean's (tests/fixtures/bundles/add-service-request.back-pain.json).

v0.11.1: bare-UUID MessageHeader fullUrl, `urn:uuid:` fullUrls and references elsewhere, the
referral ref in `ext-referral-identifier`. v0.10.0: `{fhir}/Type/id` fullUrls with resource ids,
`Type/id` references, the ref in `ext-id-message-header`, the target by its External Service ID.
Naming systems and Ocean extensions are rooted at the sandbox's own URL, like Ocean's at its host.
Every bundle is a snapshot: it carries everything the referral has accumulated (Task,
appointments, messages), as Ocean's do.
"""
import html
import uuid
from datetime import datetime

import orjson
from django.utils import timezone

from harbour.sandbox import conf
from harbour.sandbox.models import Referral

EVENT_SYSTEM = "https://ehealthontario.ca/fhir/CodeSystem/message-event-code"
EHO = "http://ehealthontario.ca/fhir/StructureDefinition/"
EXT_REFERRAL_IDENTIFIER = EHO + "ext-referral-identifier"
EXT_ID_MESSAGE_HEADER = EHO + "ext-id-message-header"
EXT_HCN_VERSION_CODE = EHO + "ext-id-health-card-version-code"
HCN_SYSTEM = "https://fhir.infoway-inforoute.ca/NamingSystem/ca-on-patient-hcn"
CPSO_SYSTEM = "http://infoway-inforoute.ca/fhir/NamingSystem/ca-on-license-physician"
OHIP_BILLING_SYSTEM = "https://fhir.infoway-inforoute.ca/NamingSystem/ca-on-ohip-billing-id"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
SNOMED_CA = "https://fhir.infoway-inforoute.ca/CodeSystem/snomedctcaextension"
TASK_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-TaskOutcome"
BUMPED_IN_0_11_1 = {"MessageHeader", "Patient", "ServiceRequest", "Location"}

# The resources every bundle of a referral repeats, with ids stable across bundles.
STABLE_RESOURCES = [
    "patient", "target_role", "requester_role", "practitioner", "requester_location", "target_location",
    "letter", "questionnaire", "task",
]


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return timezone.localtime(moment).isoformat(timespec="seconds")


class Shape:
    """What differs between payload versions: fullUrls, references and profiles."""

    def __init__(self, version: str):
        self.version = version
        self.v10 = version == "0.10.0"

    def full_url(self, rtype: str, rid: str) -> str:
        return f"{conf.fhir_base()}/{rtype}/{rid}" if self.v10 else f"urn:uuid:{rid}"

    def ref(self, rtype: str, rid: str) -> dict:
        return {"reference": f"{rtype}/{rid}" if self.v10 else f"urn:uuid:{rid}"}

    def meta(self, rtype: str) -> dict:
        bumped = not self.v10 and rtype in BUMPED_IN_0_11_1
        return {"profile": [f"{EHO}ca-on-eReferral-profile-{rtype}|{'1.0.1' if bumped else '1.0.0'}"]}

    def entry(self, rtype: str, rid: str, body: dict, profiled: bool = True) -> dict:
        resource = {"resourceType": rtype}
        if self.v10:
            resource["id"] = rid
        if profiled:
            resource["meta"] = self.meta(rtype)
        resource.update({key: value for key, value in body.items() if value not in (None, [], {}, "")})
        return {"fullUrl": self.full_url(rtype, rid), "resource": resource}


def ids_for(referral: Referral) -> dict:
    """The referral's stable resource ids (created on first use and kept on the row)."""
    return {key: referral.resource_id(key) for key in STABLE_RESOURCES}


def build_message(
    referral: Referral, event: str, *, version: str = "0.11.1", endpoint: str = "", author: str = "sender",
    focus: str = "service_request", reason_text: str = "",
) -> dict:
    """The message bundle for `event` about `referral`, in payload `version`.

    `author` is the side whose action this message reports (sender or receiver); `focus` is
    service_request or communication (the latest message).
    """
    shape = Shape(version)
    ids = ids_for(referral)
    ref = str(referral.ref)
    now = timezone.now()
    listing = referral.target_listing
    entries = [
        _patient(shape, referral, ids),
        _target_role(shape, referral, ids),
        _requester_role(shape, referral, ids),
        _practitioner(shape, referral, ids),
        shape.entry("Location", ids["requester_location"], {
            "status": "active", "mode": "instance", "address": {"use": "work", "type": "physical"},
        }),
        shape.entry("Location", ids["target_location"], {
            "status": "active", "mode": "instance", "name": listing.name,
            "address": _address("work", "physical", listing.address_line, listing.city, listing.postal_code),
        }),
        _letter(shape, referral, ids),
        _service_request(shape, referral, ids),
        _questionnaire(shape, referral, ids),
    ]
    entries += [_attachment(shape, referral, att) for att in referral.attachments.all()]
    if referral.task_status:
        entries.append(_task(shape, referral, ids))
    entries += [_appointment(shape, referral, ids, appt) for appt in referral.appointments.all()]
    messages = list(referral.messages.all())
    entries += [_communication(shape, referral, ids, msg) for msg in messages]

    if focus == "communication" and messages:
        focus_ref = shape.ref("Communication", str(messages[-1].fhir_id))
    else:
        focus_ref = shape.ref("ServiceRequest", ref)
    author_ref = shape.ref("PractitionerRole", ids["target_role" if author == "receiver" else "requester_role"])
    header_id = str(uuid.uuid4())
    if shape.v10:
        extension = [{"url": EXT_ID_MESSAGE_HEADER, "valueString": ref}]
        receiver = _target_by_external_service(shape, referral, ids)
    else:
        extension = [{"url": EXT_REFERRAL_IDENTIFIER, "valueIdentifier": {"system": conf.naming_system("id-ereferral-reference"), "value": ref}}]
        receiver = shape.ref("PractitionerRole", ids["target_role"])
    header = {
        "resourceType": "MessageHeader",
        "id": header_id,
        "meta": shape.meta("MessageHeader"),
        "extension": extension,
        "eventCoding": {"system": EVENT_SYSTEM, "code": event, "display": event},
        "destination": [{"name": listing.name, "endpoint": endpoint or conf.fhir_base() + "/$process-messages", "receiver": receiver}],
        "sender": author_ref,
        "author": author_ref,
        "source": {"name": "Ocean", "endpoint": conf.fhir_base() + "/$process-messages"},
        "focus": [focus_ref],
    }
    if reason_text:
        header["reason"] = {"text": reason_text}
    # The header's fullUrl is a bare UUID in v0.11.1 (a quirk of the real payloads).
    header_url = shape.full_url("MessageHeader", header_id) if shape.v10 else header_id
    stamp = timezone.localtime(now).isoformat(timespec="milliseconds")
    return {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": stamp},
        "type": "message",
        "timestamp": stamp,
        "entry": [{"fullUrl": header_url, "resource": header}, *entries],
    }


def to_bytes(bundle: dict) -> bytes:
    return orjson.dumps(bundle)


# --- Resources ---------------------------------------------------------------------------------

def _address(use, kind, line="", city="", postal_code="") -> dict:
    address = {"use": use, "type": kind}
    if line:
        address["line"] = [line]
    if city:
        address.update({"city": city, "state": "ON"})
    if postal_code:
        address["postalCode"] = postal_code
    return address


def _patient(shape: Shape, referral: Referral, ids: dict) -> dict:
    p = referral.patient
    hcn = {
        "use": "official",
        "type": {"coding": [{"system": V2_0203, "code": "JHN", "display": "Jurisdictional health number (Canada)"}], "text": "Personal Health Number"},
        "system": HCN_SYSTEM,
    }
    if p.get("hcn"):
        hcn["value"] = p["hcn"]
    if p.get("version_code"):
        hcn["extension"] = [{"url": EXT_HCN_VERSION_CODE, "valueString": p["version_code"]}]
    mrn = {
        "type": {"coding": [{"system": V2_0203, "code": "MR", "display": "Medical record number"}], "text": "EMR/EHR Medical Record Number"},
        "system": conf.naming_system("id-external-patient-reference"),
    }
    if p.get("mrn"):
        mrn["value"] = p["mrn"]
    given = [g for g in (p.get("given") or "").split() if g]
    name = {"use": "official", "text": " ".join([*given, p.get("family", "")]).strip(), "family": p.get("family", "")}
    if given:
        name["given"] = given
    telecom = []
    if p.get("email"):
        telecom.append({"system": "email", "value": p["email"], "use": "home"})
    if p.get("phone"):
        telecom.append({"system": "phone", "value": p["phone"], "use": "mobile"})
    return shape.entry("Patient", ids["patient"], {
        "identifier": [hcn, mrn],
        "active": True,
        "name": [name],
        "telecom": telecom,
        "gender": p.get("gender") or None,
        "birthDate": p.get("birth_date") or None,
        "deceasedBoolean": False,
        "address": [_address("home", "postal", p.get("address_line", ""), p.get("city", ""), p.get("postal_code", ""))],
    })


def _target_identifiers(referral: Referral) -> list:
    listing = referral.target_listing
    identifiers = [
        {"system": conf.naming_system("id-referral-target-reference"), "value": listing.ref},
        {"system": conf.naming_system("id-site-number"), "value": referral.receiver_site.number},
    ]
    if listing.external_service_id:
        identifiers.append({"system": conf.naming_system("id-referral-target-external-service"), "value": listing.external_service_id})
    return identifiers


def _target_by_external_service(shape: Shape, referral: Referral, ids: dict) -> dict:
    external = referral.target_listing.external_service_id
    if external:
        return {"identifier": {"system": conf.naming_system("id-referral-target-external-service"), "value": external}}
    return shape.ref("PractitionerRole", ids["target_role"])


def _target_role(shape: Shape, referral: Referral, ids: dict) -> dict:
    listing = referral.target_listing
    return shape.entry("PractitionerRole", ids["target_role"], {
        "identifier": _target_identifiers(referral),
        "active": True,
        "specialty": [{"coding": [{"system": SNOMED_CA, "code": listing.specialty_code}]}],
        "location": [shape.ref("Location", ids["target_location"])],
    })


def _requester_role(shape: Shape, referral: Referral, ids: dict) -> dict:
    r = referral.referrer
    return shape.entry("PractitionerRole", ids["requester_role"], {
        "active": True,
        "practitioner": shape.ref("Practitioner", ids["practitioner"]),
        "location": [shape.ref("Location", ids["requester_location"])],
        "code": [{"coding": [{"system": "http://snomed.info/sct", "code": "59058001"}]}],
        "telecom": [{"system": "fax", "value": r["fax"], "use": "work"}] if r.get("fax") else [],
    })


def _practitioner(shape: Shape, referral: Referral, ids: dict) -> dict:
    r = referral.referrer
    identifiers = []
    if r.get("cpso"):
        identifiers.append({"system": CPSO_SYSTEM, "value": r["cpso"]})
    if r.get("billing"):
        identifiers.append({"system": OHIP_BILLING_SYSTEM, "value": r["billing"]})
    if r.get("username"):
        identifiers.append({"system": conf.naming_system("id-practitioner-username"), "value": r["username"]})
    name = {"family": r.get("family") or "Referrer"}
    if r.get("given"):
        name["given"] = r["given"].split()
    return shape.entry("Practitioner", ids["practitioner"], {
        "identifier": identifiers,
        "active": True,
        "address": [{"use": "work", "type": "both"}],
        "name": [name],
        "telecom": [{"system": "phone", "value": r["phone"], "use": "work"}] if r.get("phone") else [],
    })


def letter_url(referral: Referral) -> str:
    return f"{conf.fhir_base()}/ServiceRequest/{referral.ref}/$letter"


def binary_url(attachment) -> str:
    return f"{conf.fhir_base()}/DocumentReference/{attachment.ref}/$binary"


def _letter(shape: Shape, referral: Referral, ids: dict) -> dict:
    authored = iso(referral.authored_on)
    family = referral.patient.get("family") or "referral"
    return shape.entry("DocumentReference", ids["letter"], {
        "identifier": [{"system": conf.naming_system("id-ereferral-reference"), "value": str(referral.ref)}],
        "status": "current",
        "date": timezone.localtime(referral.authored_on).isoformat(timespec="milliseconds"),
        "content": [{"attachment": {
            "contentType": "application/pdf",
            "url": letter_url(referral),
            "title": f"{family}--{timezone.localtime(referral.authored_on).date().isoformat()}.pdf",
            "creation": authored,
        }}],
    })


def _attachment(shape: Shape, referral: Referral, attachment) -> dict:
    return shape.entry("DocumentReference", str(attachment.ref), {
        "identifier": [{"system": conf.naming_system("id-attachment-reference"), "value": str(attachment.ref)}],
        "status": "current",
        "content": [{"attachment": {
            "contentType": attachment.content_type,
            "url": binary_url(attachment),
            "title": attachment.title,
            "size": len(attachment.data),
            "creation": iso(attachment.created_at),
        }}],
    })


def _service_request(shape: Shape, referral: Referral, ids: dict) -> dict:
    listing = referral.target_listing
    supporting = [shape.ref("DocumentReference", ids["letter"]), shape.ref("QuestionnaireResponse", ids["questionnaire"])]
    supporting += [shape.ref("DocumentReference", str(att.ref)) for att in referral.attachments.all()]
    performer = _target_by_external_service(shape, referral, ids) if shape.v10 else shape.ref("PractitionerRole", ids["target_role"])
    # Ocean sends the reason as HTML in note.text (a quirk Harbour must sanitise).
    note_html = f"<b>Reason for Referral:</b> {html.escape(referral.reason)}&nbsp;"
    return shape.entry("ServiceRequest", str(referral.ref), {
        "identifier": [{"system": conf.naming_system("id-ereferral-reference"), "value": str(referral.ref)}],
        "status": referral.status,
        "intent": "proposal",
        "category": [{"coding": [{"system": "http://snomed.info/sct", "code": listing.specialty_code, "display": listing.specialty_display}]}],
        "priority": referral.priority,
        "subject": shape.ref("Patient", ids["patient"]),
        "authoredOn": iso(referral.authored_on),
        "requester": shape.ref("PractitionerRole", ids["requester_role"]),
        "performer": [performer],
        "supportingInfo": supporting,
        "note": [{"authorReference": shape.ref("Practitioner", ids["practitioner"]), "time": iso(referral.authored_on), "text": note_html}],
    })


def _questionnaire(shape: Shape, referral: Referral, ids: dict) -> dict:
    hidden_ext = [{"url": f"{conf.fhir_base()}/StructureDefinition/ext-ocean-eform-item-visibility", "valueString": "hidden"}]
    items = []
    for answer in referral.form_answers:
        item = {}
        if answer.get("hidden"):
            item["extension"] = hidden_ext
        item["linkId"] = answer["link_id"]
        if answer.get("text"):
            item["text"] = answer["text"]
        if answer.get("answer"):
            item["answer"] = [{"valueString": answer["answer"]}]
        items.append(item)
    return shape.entry("QuestionnaireResponse", ids["questionnaire"], {
        # QuestionnaireResponse.identifier is a single Identifier in R4.
        "identifier": {"system": conf.naming_system("id-form-reference"), "value": referral.form_ref},
        "status": "completed",
        "subject": shape.ref("Patient", ids["patient"]),
        "author": shape.ref("Practitioner", ids["practitioner"]),
        "item": items,
    })


def _task(shape: Shape, referral: Referral, ids: dict) -> dict:
    return shape.entry("Task", ids["task"], {
        "status": referral.task_status,
        "intent": "order",
        "code": {"coding": [{"system": TASK_CODE_SYSTEM, "code": "process-request"}]},
        "basedOn": [shape.ref("ServiceRequest", str(referral.ref))],
        "owner": shape.ref("PractitionerRole", ids["target_role"]),
        "statusReason": {"text": referral.status_reason} if referral.status_reason else None,
        "lastModified": iso(referral.updated_at),
    }, profiled=False)


def _appointment(shape: Shape, referral: Referral, ids: dict, appointment) -> dict:
    if appointment.cancelled or not appointment.start:
        # Ocean signals a cancelled (or undated) appointment as `proposed` with no dates.
        body = {"status": "proposed", "patientInstruction": appointment.patient_instruction or None}
        participant_status = "needs-action"
    else:
        minutes = int((appointment.end - appointment.start).total_seconds() // 60) if appointment.end else None
        body = {
            "status": appointment.status or "booked",
            "start": iso(appointment.start),
            "end": iso(appointment.end),
            "minutesDuration": minutes,
            "patientInstruction": appointment.patient_instruction or None,
        }
        participant_status = "accepted" if appointment.confirmed else "tentative"
    body["basedOn"] = [shape.ref("ServiceRequest", str(referral.ref))]
    body["participant"] = [
        {"actor": shape.ref("PractitionerRole", ids["target_role"]), "status": "accepted"},
        {"actor": shape.ref("Patient", ids["patient"]), "status": participant_status},
    ]
    return shape.entry("Appointment", str(appointment.fhir_id), body, profiled=False)


def _communication(shape: Shape, referral: Referral, ids: dict, message) -> dict:
    sender = ids["target_role"] if message.side == "receiver" else ids["requester_role"]
    return shape.entry("Communication", str(message.fhir_id), {
        "identifier": [{"system": conf.naming_system("id-ereferral-reference"), "value": str(referral.ref)}],
        "status": "completed",
        "basedOn": [shape.ref("ServiceRequest", str(referral.ref))],
        "subject": shape.ref("Patient", ids["patient"]),
        "sent": iso(message.sent_at),
        "sender": shape.ref("PractitionerRole", sender),
        "payload": ([{"contentString": message.text}] if message.text else [])
        + [{"contentAttachment": attachment} for attachment in message.attachments or []],
    }, profiled=False)
