"""What `$process-messages` does with a message bundle from an EMR, with Ocean's rules.

Rules (contract §5): Task status -> folder per §5.1; appointments with a date book (participant
`accepted` = confirmed, `tentative` = unconfirmed), `cancelled` or undated after a booking
cancels; only the current receiver changes status or appointments; only the sender cancels;
a token acts only for its own site. Each accepted change is echoed to the referral's
integrations as notify-update-service-request, as Ocean reports every change, the acting EMR's
own included (§2.1). Messages are not echoed as updates (Ocean sends Communications with their
own events, §3.1): a provider's message reaches the referrer's copies as
send-communication-from-provider, a requester's reaches the target as
send-communication-from-requester. A message is text (payload.contentString), files
(payload.contentAttachment: kept as sent, inline data or url, repeated in every later bundle),
or both (contract §3.2, §4.1).

Bundles are read leniently, as a FHIR server would: references resolve by fullUrl, urn:uuid:
or bare UUID, or Type/id; systems match on their final path segment, never the host.
"""
import base64
import binascii
import uuid
from datetime import datetime

from django.db import transaction

from harbour.sandbox import referrals as actions
from harbour.sandbox.models import Appointment, Message, Referral, Site

TASK_FOLDERS = {
    "requested": Referral.Folder.NEW,
    "received": Referral.Folder.NEW,
    "accepted": Referral.Folder.PENDING_BOOKING,
    "in-progress": Referral.Folder.PENDING_BOOKING,
    "on-hold": Referral.Folder.PENDING_BOOKING,
    "ready": Referral.Folder.PENDING_BOOKING,
    "rejected": Referral.Folder.DECLINED,
    "cancelled": Referral.Folder.DECLINED,
    "completed": Referral.Folder.COMPLETED,
}

TASK_EVENTS = {"notify-add-process-request", "notify-update-process-request", "notify-update-status"}
APPOINTMENT_EVENTS = {"notify-add-appointment", "notify-update-appointment", "notify-cancel-appointment"}
COMMUNICATION_EVENTS = {"send-communication-from-provider", "send-communication-from-requester"}
CORRECTION_EVENTS = {"notify-data-correction", "update-patient-data"}
REVOKE_EVENTS = {"revoke-service-request", "terminate-servicerequest", "notify-revoke-service-request"}
ACCEPTED_EVENTS = TASK_EVENTS | APPOINTMENT_EVENTS | COMMUNICATION_EVENTS | CORRECTION_EVENTS | REVOKE_EVENTS


class Refusal(Exception):
    """An answer other than 200: HTTP status, OperationOutcome issue code, diagnostics."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def suffix(system) -> str:
    if not isinstance(system, str):
        return ""
    return system.split("?", 1)[0].split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1].lower()


class Entries:
    """The bundle's resources, found by fullUrl, urn:uuid:/bare UUID or Type/id."""

    def __init__(self, entries: list):
        self.resources = []
        self.by_key: dict[str, dict] = {}
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
                continue
            resource = entry["resource"]
            self.resources.append(resource)
            full_url = entry.get("fullUrl")
            rtype, rid = resource.get("resourceType"), resource.get("id")
            keys = []
            if isinstance(full_url, str):
                keys += [full_url, full_url.removeprefix("urn:uuid:")]
                tail = full_url.rstrip("/").split("/")
                if len(tail) >= 2:
                    keys.append("/".join(tail[-2:]))
            if isinstance(rtype, str) and isinstance(rid, str):
                keys += [f"{rtype}/{rid}", rid]
            for key in keys:
                self.by_key.setdefault(key, resource)

    def resolve(self, reference) -> dict | None:
        if not isinstance(reference, dict) or not isinstance(reference.get("reference"), str):
            return None
        ref = reference["reference"]
        for key in (ref, ref.removeprefix("urn:uuid:"), "/".join(ref.rstrip("/").split("/")[-2:])):
            if key in self.by_key:
                return self.by_key[key]
        return None

    def of_type(self, rtype: str) -> list[dict]:
        return [r for r in self.resources if r.get("resourceType") == rtype]


def outcome(severity: str, code: str, text: str) -> dict:
    return {"resourceType": "OperationOutcome", "issue": [{"severity": severity, "code": code, "diagnostics": text, "details": {"text": text}}]}


# --- Reading the envelope ----------------------------------------------------------------------

def read_envelope(bundle) -> tuple[dict, str, Entries]:
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise Refusal(400, "structure", "The body is not a FHIR Bundle.")
    if bundle.get("type") != "message":
        raise Refusal(400, "structure", "The Bundle's type must be 'message'.")
    entries = bundle.get("entry")
    if not isinstance(entries, list) or not entries or not isinstance(entries[0], dict):
        raise Refusal(400, "structure", "The Bundle has no entries.")
    header = entries[0].get("resource")
    if not isinstance(header, dict) or header.get("resourceType") != "MessageHeader":
        raise Refusal(400, "structure", "The first entry of a message Bundle must be its MessageHeader.")
    coding = header.get("eventCoding")
    code = coding.get("code") if isinstance(coding, dict) else None
    if not isinstance(code, str) or not code.strip():
        raise Refusal(400, "required", "MessageHeader.eventCoding.code is missing.")
    return header, code.strip(), Entries(entries[1:])


def _ref_from_identifiers(identifiers) -> str | None:
    if isinstance(identifiers, dict):
        identifiers = [identifiers]
    for identifier in identifiers if isinstance(identifiers, list) else []:
        if isinstance(identifier, dict) and suffix(identifier.get("system")) == "id-ereferral-reference":
            value = identifier.get("value")
            if isinstance(value, str) and value.strip():
                return value.strip()
    return None


def referral_ref(header: dict, entries: Entries) -> str | None:
    """The referral ref: header extension (either version), else the focus or what it is based on."""
    for extension in header.get("extension") or []:
        if not isinstance(extension, dict):
            continue
        name = suffix(extension.get("url"))
        if name == "ext-referral-identifier" and isinstance(extension.get("valueIdentifier"), dict):
            value = extension["valueIdentifier"].get("value")
            if isinstance(value, str) and value.strip():
                return value.strip()
        if name == "ext-id-message-header" and isinstance(extension.get("valueString"), str) and extension["valueString"].strip():
            return extension["valueString"].strip()
    candidates = [entries.resolve(f) for f in header.get("focus") or []]
    for resource in [c for c in candidates if c] + entries.of_type("ServiceRequest"):
        found = _ref_from_identifiers(resource.get("identifier"))
        if found:
            return found
        for based_on in resource.get("basedOn") or []:
            target = entries.resolve(based_on)
            found = (_ref_from_identifiers(target.get("identifier")) if target else None) or (
                _ref_from_identifiers(based_on.get("identifier")) if isinstance(based_on, dict) else None
            )
            if found:
                return found
        if resource.get("resourceType") == "ServiceRequest" and isinstance(resource.get("id"), str):
            return resource["id"]
    return None


def focus_of(header: dict, entries: Entries, rtype: str) -> dict | None:
    """The header's focus of type `rtype`, else the last resource of that type in the bundle."""
    for reference in header.get("focus") or []:
        resource = entries.resolve(reference)
        if resource and resource.get("resourceType") == rtype:
            return resource
    found = entries.of_type(rtype)
    return found[-1] if found else None


# --- Processing --------------------------------------------------------------------------------

def process(site: Site, bundle) -> dict:
    """Apply one EMR message for `site` (the token's site); raises Refusal, returns an outcome."""
    header, event, entries = read_envelope(bundle)
    if event not in ACCEPTED_EVENTS:
        raise Refusal(400, "not-supported", f"The event '{event}' is not supported from an EMR.")
    ref = referral_ref(header, entries)
    if not ref:
        raise Refusal(400, "required", "The message does not name a referral (no id-ereferral-reference).")
    try:
        key = uuid.UUID(ref)
    except ValueError:
        raise Refusal(404, "not-found", f"No referral {ref}.") from None
    with transaction.atomic():
        referral = (
            Referral.objects.select_for_update()
            .select_related("sender_site", "receiver_site", "target_listing")
            .filter(ref=key).first()
        )
        if referral is None:
            raise Refusal(404, "not-found", f"No referral {ref}.")
        if site.pk not in (referral.sender_site_id, referral.receiver_site_id):
            raise Refusal(403, "forbidden", f"Site {site.number} is not a party to referral {ref}.")
        if event in TASK_EVENTS:
            text = _task(site, referral, header, entries)
        elif event in APPOINTMENT_EVENTS:
            text = _appointment(site, referral, focus_of(header, entries, "Appointment"), entries)
        elif event in COMMUNICATION_EVENTS:
            text = _communication(site, referral, event, header, entries)
        elif event in CORRECTION_EVENTS:
            text = _correction(site, referral, header, entries)
        else:
            text = _revoke(site, referral)
    return outcome("information", "informational", text)


def receiver_only(site: Site, referral: Referral) -> None:
    """§5.4: only the current receiver changes status or appointments, never on a cancelled referral."""
    if site.pk != referral.receiver_site_id:
        raise Refusal(403, "forbidden", "Only the referral's current receiver can change its status or appointments.")
    if referral.folder == Referral.Folder.CANCELLED:
        raise Refusal(422, "business-rule", "The referral was cancelled by its sender; it cannot change any more.")


def echo(referral: Referral, author: str) -> None:
    """Ocean reports every change to the referral's integrations, the acting side's own included (§2.1)."""
    actions.notify(referral, "notify-update-service-request", author=author)


def _task(site: Site, referral: Referral, header: dict, entries: Entries) -> str:
    receiver_only(site, referral)
    task = focus_of(header, entries, "Task")
    appointment = None
    for reference in header.get("focus") or []:
        resource = entries.resolve(reference)
        if resource and resource.get("resourceType") == "Appointment":
            appointment = resource
    if task is None and appointment is None:
        raise Refusal(422, "required", "The message carries no Task.")
    texts = []
    if task is not None:
        reason = task.get("statusReason", {}).get("text", "") if isinstance(task.get("statusReason"), dict) else ""
        texts.append(set_task_status(site, referral, task.get("status"), reason if isinstance(reason, str) else ""))
    if appointment is not None:
        texts.append(_apply_appointment(site, referral, appointment, entries))
    echo(referral, "receiver")
    return " ".join(texts)


def set_task_status(site: Site, referral: Referral, status, reason: str = "", *, via: str = "api") -> str:
    """The receiver's Task status -> §5.1's folder, logged (the caller echoes the change).

    Used by `$process-messages` (an EMR's Task) and by the receiving site's staff in the portal
    (harbour.sandbox.staff): the same change either way."""
    if status not in TASK_FOLDERS:
        raise Refusal(422, "code-invalid", f"Task status '{status}' is not supported by Ocean.")
    referral.task_status = status
    referral.status_reason = reason or ""
    referral.folder = TASK_FOLDERS[status]
    referral.awaiting_reply = False
    referral.save(update_fields=["task_status", "status_reason", "folder", "awaiting_reply", "updated_at"])
    text = f"Status set to {status} ({referral.get_folder_display()})."
    actions.log_event(referral, "status", text + (f" Reason: {referral.status_reason}" if referral.status_reason else ""), site=site, via=via)
    return text


def _appointment(site: Site, referral: Referral, appointment: dict | None, entries: Entries) -> str:
    receiver_only(site, referral)
    if appointment is None:
        raise Refusal(422, "required", "The message carries no Appointment.")
    text = _apply_appointment(site, referral, appointment, entries)
    echo(referral, "receiver")
    return text


def _when(value, name: str) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise Refusal(422, "invalid", f"Appointment.{name} must be a dateTime with a time zone.")
    return moment


def _apply_appointment(site: Site, referral: Referral, resource: dict, entries: Entries) -> str:
    status = resource.get("status") or "booked"
    start, end = _when(resource.get("start"), "start"), _when(resource.get("end"), "end")
    if start and end and end < start:
        raise Refusal(422, "invalid", "Appointment.end is before Appointment.start.")
    instruction = resource.get("patientInstruction") if isinstance(resource.get("patientInstruction"), str) else ""
    return change_appointment(site, referral, status=status, start=start, end=end, instruction=instruction,
                              confirmed=_patient_accepted(resource, entries))


def change_appointment(site: Site, referral: Referral, *, status: str, start: datetime | None, end: datetime | None,
                       instruction: str = "", confirmed: bool = False, via: str = "api") -> str:
    """Book, rebook or cancel the referral's appointment (§5.2), logged (the caller echoes it).

    Used by `$process-messages` (an EMR's Appointment) and by the receiving site's staff in the
    portal (harbour.sandbox.staff): `cancelled`, or undated after a booking, cancels; a date books."""
    current = referral.appointments.filter(cancelled=False).order_by("-id").first()
    booked = current is not None and current.start is not None
    if status in {"cancelled", "noshow", "entered-in-error"} or (start is None and booked):
        if not booked:
            raise Refusal(422, "business-rule", "There is no booked appointment to cancel.")
        current.cancelled = True
        current.status = "cancelled"
        current.save(update_fields=["cancelled", "status", "updated_at"])
        referral.folder = Referral.Folder.PENDING_BOOKING
        referral.save(update_fields=["folder", "updated_at"])
        text = "Appointment cancelled (Pending Booking)."
    elif start is None:
        # Booking instructions without a date (status proposed + patientInstruction).
        if not instruction:
            raise Refusal(422, "required", "An appointment needs a start, or booking instructions in patientInstruction.")
        appointment = current or Appointment(referral=referral)
        appointment.status, appointment.patient_instruction = "proposed", instruction
        appointment.save()
        text = "Booking instructions recorded."
    else:
        appointment = current or Appointment(referral=referral)
        appointment.status = status if status in {"booked", "pending", "arrived", "fulfilled", "checked-in"} else "booked"
        appointment.start, appointment.end = start, end
        appointment.confirmed = confirmed
        appointment.patient_instruction = instruction
        appointment.save()
        referral.folder = Referral.Folder.BOOKED
        referral.save(update_fields=["folder", "updated_at"])
        text = f"Appointment booked for {start.isoformat()} ({'confirmed' if confirmed else 'unconfirmed'})."
    actions.log_event(referral, "appointment", text, site=site, via=via)
    return text


def _patient_accepted(resource: dict, entries: Entries) -> bool:
    """Booking Confirmed when the patient participant is `accepted`, Unconfirmed when `tentative`."""
    participants = [p for p in resource.get("participant") or [] if isinstance(p, dict)]
    patients = []
    for participant in participants:
        actor = participant.get("actor")
        target = entries.resolve(actor)
        reference = actor.get("reference", "") if isinstance(actor, dict) else ""
        if (target and target.get("resourceType") == "Patient") or (isinstance(reference, str) and reference.startswith("Patient/")):
            patients.append(participant)
    return any(p.get("status") == "accepted" for p in patients)


def _communication(site: Site, referral: Referral, event: str, header: dict, entries: Entries) -> str:
    provider = event == "send-communication-from-provider"
    if provider and site.pk != referral.receiver_site_id:
        raise Refusal(403, "forbidden", "Only the referral's current receiver sends send-communication-from-provider.")
    if not provider and site.pk != referral.sender_site_id:
        raise Refusal(403, "forbidden", "Only the referral's sender sends send-communication-from-requester.")
    communication = focus_of(header, entries, "Communication")
    if communication is None:
        raise Refusal(422, "required", "The message carries no Communication.")
    payload = communication.get("payload")
    parts = [p for p in payload if isinstance(p, dict)] if isinstance(payload, list) else []
    texts = [
        p["contentString"].strip() for p in parts
        if isinstance(p.get("contentString"), str) and p["contentString"].strip()
    ]
    attachments = [_message_attachment(p["contentAttachment"]) for p in parts if p.get("contentAttachment") is not None]
    if not texts and not attachments:
        raise Refusal(422, "required", "The Communication has neither text (payload.contentString) nor a file (payload.contentAttachment).")
    side = Message.Side.RECEIVER if provider else Message.Side.SENDER
    message = Message.objects.create(
        referral=referral, side=side, site=site, text="\n\n".join(texts), attachments=attachments, via="api",
    )
    # A FHIR server keeps the Communication's own `sent` (the moment the EMR's user wrote it) and
    # later bundles repeat it: the EMR recognises its own message in them. Else: when it arrived.
    sent = communication.get("sent")
    try:
        written = datetime.fromisoformat(sent) if isinstance(sent, str) and "T" in sent else None
    except ValueError:
        written = None
    if written is not None and written.tzinfo is not None:
        Message.objects.filter(pk=message.pk).update(sent_at=written)
    referral.awaiting_reply = provider
    referral.save(update_fields=["awaiting_reply", "updated_at"])
    files = f" {len(attachments)} file(s) attached." if attachments else ""
    actions.log_event(referral, "message", f"Message from the {'receiver' if provider else 'referrer'}.{files}", site=site, via="api")
    if provider:
        actions.notify(referral, event, author="receiver", focus="communication", only={"copy"})
    else:
        actions.notify(referral, event, focus="communication", only={"target"})
    return "Message added to the referral."


# The FHIR R4 Attachment elements a message's file keeps (as the EMR sent them).
ATTACHMENT_KEYS = {"contentType": str, "language": str, "data": str, "url": str, "size": int, "hash": str,
                   "title": str, "creation": str}


def _message_attachment(attachment) -> dict:
    """A Communication's contentAttachment, checked as a FHIR server would, kept as sent."""
    if not isinstance(attachment, dict):
        raise Refusal(422, "structure", "payload.contentAttachment must be a FHIR Attachment (an object).")
    kept = {key: value for key, value in attachment.items()
            if key in ATTACHMENT_KEYS and isinstance(value, ATTACHMENT_KEYS[key]) and not isinstance(value, bool)}
    title = kept.get("title") or "(no title)"
    if not kept.get("data") and not kept.get("url"):
        raise Refusal(422, "required", f"The attachment {title} has neither data nor url.")
    if kept.get("data"):
        if not kept.get("contentType"):
            raise Refusal(422, "invariant", f"The attachment {title} has data but no contentType (FHIR att-1).")
        try:
            data = base64.b64decode(kept["data"], validate=True)
        except (binascii.Error, ValueError):
            raise Refusal(422, "invalid", f"The attachment {title}: data is not valid base64.") from None
        if not data or len(data) > actions.MAX_ATTACHMENT_BYTES:
            raise Refusal(422, "too-long" if data else "required", f"The attachment {title} is empty or larger than 10 MB.")
    return kept


def _correction(site: Site, referral: Referral, header: dict, entries: Entries) -> str:
    if referral.folder == Referral.Folder.CANCELLED:
        raise Refusal(422, "business-rule", "The referral was cancelled by its sender; it cannot change any more.")
    patient = focus_of(header, entries, "Patient")
    if patient is None:
        raise Refusal(422, "required", "The message carries no Patient to correct.")
    changes = _patient_fields(patient)
    if not changes:
        raise Refusal(422, "required", "The Patient carries no demographics to correct.")
    try:
        cleaned = actions.clean_patient(changes, partial=True)
    except actions.SandboxError as exc:
        raise Refusal(422, "invalid", exc.message) from None
    referral.patient = {**referral.patient, **cleaned}
    referral.save(update_fields=["patient", "updated_at"])
    actions.log_event(referral, "correction", f"Demographics corrected ({', '.join(sorted(cleaned))}).", site=site, via="api")
    echo(referral, "receiver" if site.pk == referral.receiver_site_id else "sender")
    return "Demographics corrected."


def _patient_fields(patient: dict) -> dict:
    found = {}
    names = [n for n in patient.get("name") or [] if isinstance(n, dict)]
    if names:
        name = next((n for n in names if n.get("use") == "official"), names[0])
        if isinstance(name.get("family"), str):
            found["family"] = name["family"]
        if isinstance(name.get("given"), list):
            found["given"] = " ".join(g for g in name["given"] if isinstance(g, str))
    for key, field in (("birthDate", "birth_date"), ("gender", "gender")):
        if isinstance(patient.get(key), str):
            found[field] = patient[key]
    for identifier in patient.get("identifier") or []:
        if isinstance(identifier, dict) and suffix(identifier.get("system")) == "ca-on-patient-hcn":
            if isinstance(identifier.get("value"), str):
                found["hcn"] = identifier["value"]
            for extension in identifier.get("extension") or []:
                if isinstance(extension, dict) and suffix(extension.get("url")) == "ext-id-health-card-version-code":
                    found["version_code"] = extension.get("valueString") or ""
    for telecom in patient.get("telecom") or []:
        if isinstance(telecom, dict) and isinstance(telecom.get("value"), str):
            if telecom.get("system") == "email":
                found["email"] = telecom["value"]
            elif telecom.get("system") == "phone":
                found["phone"] = telecom["value"]
    return found


def _revoke(site: Site, referral: Referral) -> str:
    if site.pk != referral.sender_site_id:
        raise Refusal(403, "forbidden", "Only the referral's sender can cancel it.")
    try:
        actions.cancel_referral(referral, site, via="api")
    except actions.SandboxError as exc:
        raise Refusal(422, "business-rule", exc.message) from None
    return "Referral cancelled."
