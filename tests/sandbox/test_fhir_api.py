"""$process-messages with Ocean's rules, and $letter, $binary: every answer, good and bad."""
import base64
import io
import json
import uuid

import pytest
from django.test import Client
from pypdf import PdfReader

from harbour.sandbox import sites
from harbour.sandbox.delivery import deliver_due
from harbour.sandbox.models import Referral
from tests.sandbox.conftest import AdminApi, ready_site, send_referral

PROCESS = "/svc/fhir/v1/$process-messages"
REF_SYSTEM = "https://ocean.example/svc/fhir/v1/NamingSystem/id-ereferral-reference"  # any host: suffix matters


def token_for(site) -> str:
    credential, secret = sites.create_oauth_credential(site, f"EMR of {site.number}")
    response = Client().post("/svc/oauth2/token", {"grant_type": "client_credentials", "client_id": credential.client_id, "client_secret": secret})
    return response.json()["access_token"]


def message(event: str, ref, *resources: dict, focus: int = 0, header_ext: str = "v0.11.1") -> dict:
    """An EMR message bundle like Harbour's: header with the ref extension, focus on resources[focus]."""
    urls = [f"urn:uuid:{uuid.uuid4()}" for _ in resources]
    sr_url = f"urn:uuid:{uuid.uuid4()}"
    service_request = {"fullUrl": sr_url, "resource": {
        "resourceType": "ServiceRequest", "identifier": [{"system": REF_SYSTEM, "value": str(ref)}], "status": "active", "intent": "proposal"}}
    entries = []
    for url, resource in zip(urls, resources):
        resource = dict(resource)
        if resource["resourceType"] in {"Task", "Appointment", "Communication"}:
            resource.setdefault("basedOn", [{"reference": sr_url}])
        entries.append({"fullUrl": url, "resource": resource})
    extension = (
        [{"url": "http://ehealthontario.ca/fhir/StructureDefinition/ext-referral-identifier", "valueIdentifier": {"system": REF_SYSTEM, "value": str(ref)}}]
        if header_ext == "v0.11.1" else
        [{"url": "http://ehealthontario.ca/fhir/StructureDefinition/ext-id-message-header", "valueString": str(ref)}]
        if header_ext == "v0.10.0" else []
    )
    header_id = str(uuid.uuid4())
    header = {
        "resourceType": "MessageHeader", "id": header_id, "extension": extension,
        "eventCoding": {"system": "https://ehealthontario.ca/fhir/CodeSystem/message-event-code", "code": event},
        "source": {"name": "Harbour", "endpoint": "http://harbour.test"},
        "focus": [{"reference": urls[focus]}] if resources else [{"reference": sr_url}],
    }
    return {"resourceType": "Bundle", "id": str(uuid.uuid4()), "type": "message",
            "entry": [{"fullUrl": header_id, "resource": header}, *entries, service_request]}


def task(status, reason=""):
    resource = {"resourceType": "Task", "status": status, "intent": "order",
                "code": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-TaskOutcome", "code": "process-request"}]}}
    if reason:
        resource["statusReason"] = {"text": reason}
    return resource


PATIENT_ENTRY = {"resourceType": "Patient", "name": [{"family": "Tremblay"}]}


def appointment(start=None, end=None, patient_status="tentative", status="booked", instruction=None):
    resource = {"resourceType": "Appointment", "status": status, "participant": [{"actor": {"reference": "Patient/p1"}, "status": patient_status}]}
    if start:
        resource.update(start=start, end=end)
    if instruction:
        resource["patientInstruction"] = instruction
    return resource


def communication(text, attachment=None):
    payload = [{"contentString": text}] if text is not None else []
    if attachment is not None:
        payload.append({"contentAttachment": attachment})
    return {"resourceType": "Communication", "status": "completed", "payload": payload}


SCAN = b"%PDF-1.4 a scanned form"
SCAN_ATTACHMENT = {"contentType": "application/pdf", "data": base64.b64encode(SCAN).decode(), "title": "scan.pdf",
                   "size": len(SCAN), "creation": "2025-06-03T10:00:00-04:00"}


def payloads(bundle) -> list[list[dict]]:
    """Each Communication's payload in a bundle, in order."""
    return [e["resource"]["payload"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Communication"]


class Emr:
    def __init__(self, site):
        self.site = site
        self.client = Client(HTTP_AUTHORIZATION=f"Bearer {token_for(site)}")

    def send(self, bundle, expect=200):
        raw = bundle if isinstance(bundle, (bytes, str)) else json.dumps(bundle)
        response = self.client.post(PROCESS, raw, content_type="application/fhir+json")
        assert response.status_code == expect, response.content
        body = response.json()
        assert body["resourceType"] == "OperationOutcome"
        return body["issue"][0]


@pytest.fixture
def world(pair):
    referral = send_referral(pair)
    deliver_due()
    return {**pair, "referral": referral, "clinic_emr": Emr(pair["clinic"]), "referrer_emr": Emr(pair["referrer"])}


def folder(referral):
    referral.refresh_from_db()
    return referral.folder


@pytest.mark.parametrize("status, expected", [
    ("received", "new"), ("requested", "new"), ("accepted", "pending_booking"), ("in-progress", "pending_booking"),
    ("on-hold", "pending_booking"), ("ready", "pending_booking"), ("rejected", "declined"), ("cancelled", "declined"),
    ("completed", "completed"),
])
def test_task_status_to_folder(world, status, expected):
    issue = world["clinic_emr"].send(message("notify-add-process-request", world["referral"].ref, task(status, "why")))
    assert issue["severity"] == "information"
    assert folder(world["referral"]) == expected
    assert world["referral"].task_status == status and world["referral"].status_reason == "why"


def test_each_accepted_change_is_echoed_as_notify_update_service_request(world, receiver):
    receiver.requests.clear()
    world["clinic_emr"].send(message("notify-add-process-request", world["referral"].ref, task("accepted")))
    deliver_due()
    [echo] = receiver.bundles()
    header = echo["entry"][0]["resource"]
    assert header["eventCoding"]["code"] == "notify-update-service-request"
    tasks = [e["resource"] for e in echo["entry"] if e["resource"]["resourceType"] == "Task"]
    assert [t["status"] for t in tasks] == ["accepted"]
    # The receiver's change: the author is the target PractitionerRole.
    assert header["author"] == header["destination"][0]["receiver"]


def test_declined_referral_reopens_and_old_event_spelling_and_header_work(world):
    emr = world["clinic_emr"]
    emr.send(message("notify-update-process-request", world["referral"].ref, task("rejected", "Not our service")))
    assert folder(world["referral"]) == "declined"
    emr.send(message("notify-update-status", world["referral"].ref, task("accepted"), header_ext="v0.10.0"))
    assert folder(world["referral"]) == "pending_booking"
    # No header extension: the ref is found through the Task's basedOn ServiceRequest.
    emr.send(message("notify-update-process-request", world["referral"].ref, task("completed"), header_ext="none"))
    assert folder(world["referral"]) == "completed"


def test_appointments_book_update_confirm_and_cancel(world):
    emr, referral = world["clinic_emr"], world["referral"]
    emr.send(message("notify-add-appointment", referral.ref, appointment("2030-06-10T14:00:00-04:00", "2030-06-10T14:30:00-04:00", "tentative"), PATIENT_ENTRY))
    assert folder(referral) == "booked"
    appt = referral.appointments.get()
    assert not appt.confirmed and appt.start.isoformat().startswith("2030-06-10T18:00")
    # Receiver's update: notify-update-process-request with the Appointment as focus.
    emr.send(message("notify-update-process-request", referral.ref, appointment("2030-06-11T09:00:00-04:00", "2030-06-11T09:30:00-04:00", "accepted"), task("accepted")))
    appt.refresh_from_db()
    assert folder(referral) == "booked" and appt.confirmed and appt.start.day == 11 and referral.appointments.count() == 1
    emr.send(message("notify-update-process-request", referral.ref, appointment(status="cancelled")))
    appt.refresh_from_db()
    assert appt.cancelled and folder(referral) == "pending_booking"
    kinds = list(referral.events.filter(kind="appointment").values_list("text", flat=True))
    assert kinds[0].endswith("(unconfirmed).") and kinds[1].endswith("(confirmed).") and kinds[2].startswith("Appointment cancelled")


def test_booking_instructions_without_a_date(world):
    emr, referral = world["clinic_emr"], world["referral"]
    emr.send(message("notify-add-appointment", referral.ref, appointment(status="proposed", instruction="Call us to book")))
    assert referral.appointments.get().patient_instruction == "Call us to book"
    assert folder(referral) == "new"


@pytest.mark.parametrize("resource, code, text", [
    (appointment("not a date"), "invalid", "Appointment.start must be a dateTime with a time zone."),
    (appointment("2030-06-10T14:00:00"), "invalid", "Appointment.start must be a dateTime with a time zone."),
    (appointment("2030-06-10T14:00:00-04:00", "2030-06-10T13:00:00-04:00"), "invalid", "Appointment.end is before Appointment.start."),
    (appointment(status="cancelled"), "business-rule", "There is no booked appointment to cancel."),
    (appointment(status="proposed"), "required", "An appointment needs a start, or booking instructions in patientInstruction."),
])
def test_bad_appointments_get_422(world, resource, code, text):
    issue = world["clinic_emr"].send(message("notify-add-appointment", world["referral"].ref, resource), expect=422)
    assert (issue["code"], issue["diagnostics"]) == (code, text)
    assert folder(world["referral"]) == "new"


def test_messages_both_ways(world, receiver):
    copy = sites.register_integration(world["referrer"], name="Referrer EMR", request_url=receiver.url + "/copies", send_copy=True)
    referral = world["referral"]
    receiver.requests.clear()
    world["clinic_emr"].send(message("send-communication-from-provider", referral.ref, communication("Please send imaging")))
    referral.refresh_from_db()
    assert referral.awaiting_reply and referral.messages.get().side == "receiver"
    world["referrer_emr"].send(message("send-communication-from-requester", referral.ref, communication("Attached"), task("requested"), focus=0))
    referral.refresh_from_db()
    assert not referral.awaiting_reply and [m.text for m in referral.messages.all()] == ["Please send imaging", "Attached"]
    deliver_due()
    assert [b["entry"][0]["resource"]["eventCoding"]["code"] for b in receiver.bundles("/copies")] == ["send-communication-from-provider"]
    assert [b["entry"][0]["resource"]["eventCoding"]["code"] for b in receiver.bundles()] == ["send-communication-from-requester"]
    assert copy.deliveries.count() == 1


def test_a_message_with_only_a_file_is_kept_shown_and_echoed(world, receiver):
    """Contract §3.2/§4.1: a message's file travels in payload[].contentAttachment, with or without text."""
    copy = sites.register_integration(world["referrer"], name="Referrer EMR", request_url=receiver.url + "/copies", send_copy=True)
    referral = world["referral"]
    receiver.requests.clear()
    issue = world["clinic_emr"].send(message("send-communication-from-provider", referral.ref, communication(None, SCAN_ATTACHMENT)))
    assert issue["diagnostics"] == "Message added to the referral."
    [kept] = referral.messages.all()
    assert (kept.text, kept.attachments) == ("", [SCAN_ATTACHMENT])
    deliver_due()
    [echo] = receiver.bundles("/copies")
    assert echo["entry"][0]["resource"]["eventCoding"]["code"] == "send-communication-from-provider"
    assert payloads(echo) == [[{"contentAttachment": SCAN_ATTACHMENT}]]
    assert copy.deliveries.count() == 1
    # Every later bundle repeats it (Ocean's bundles are snapshots), a referrer's text-and-file message too.
    by_url = {"contentType": "image/png", "url": "https://files.example.org/xray.png", "title": "xray.png"}
    world["referrer_emr"].send(message("send-communication-from-requester", referral.ref, communication("Here is the X-ray", by_url)))
    world["clinic_emr"].send(message("notify-update-process-request", referral.ref, task("accepted")))
    deliver_due()
    update = [b for b in receiver.bundles() if b["entry"][0]["resource"]["eventCoding"]["code"] == "notify-update-service-request"][-1]
    assert payloads(update) == [[{"contentAttachment": SCAN_ATTACHMENT}],
                                [{"contentString": "Here is the X-ray"}, {"contentAttachment": by_url}]]
    state = AdminApi().get(f"referrals/{referral.ref}")
    assert [m["attachments"] for m in state["messages"]] == [
        [{"title": "scan.pdf", "content_type": "application/pdf", "size": len(SCAN), "url": ""}],
        [{"title": "xray.png", "content_type": "image/png", "size": None, "url": "https://files.example.org/xray.png"}],
    ]


def test_the_referral_page_shows_a_messages_files(world, pair):
    from django.contrib.auth import get_user_model

    from harbour.sandbox.models import SiteUser

    referral = world["referral"]
    world["clinic_emr"].send(message("send-communication-from-provider", referral.ref, communication(None, SCAN_ATTACHMENT)))
    by_url = {"contentType": "image/png", "url": "https://files.example.org/xray.png", "title": "xray.png"}
    world["referrer_emr"].send(message("send-communication-from-requester", referral.ref, communication("Here is the X-ray", by_url)))
    user = get_user_model().objects.create_user("dr.soleil", password="ocean-sandbox-pw-1")
    SiteUser.objects.create(site=pair["clinic"], user=user)
    browser = Client()
    browser.force_login(user)
    page = browser.get(f"/site/1234/referrals/{referral.ref}/").content.decode()
    assert f"Attachment: scan.pdf (application/pdf, {len(SCAN)} bytes, sent inline)" in page
    assert 'Attachment: <a href="https://files.example.org/xray.png">xray.png</a> (image/png)' in page
    assert "Here is the X-ray" in page


def test_harbours_own_file_only_message_is_accepted(world, receiver):
    """The bundle Harbour really builds for a message with a file and no text (fhir.build)."""
    from harbour.fhir import build
    from harbour.fhir.read import read_message

    [snapshot] = receiver.bundles()  # the add-service-request the clinic's EMR received
    ctx = build.ReferralContext(ocean_base_url="http://sandbox.test:8081", referral_ref=str(world["referral"].ref),
                                harbour_url="https://soleil.example.org", site_number="1234", snapshot=snapshot)
    outgoing = build.OutgoingMessage(text="", sender_name="Dr Soleil",
                                     attachment=build.OutgoingAttachment("scan.pdf", "application/pdf", SCAN))
    bundle = build.build_communication_message(ctx, outgoing)
    build.validate_outbound(bundle)
    receiver.requests.clear()
    issue = world["clinic_emr"].send(bundle)
    assert (issue["severity"], issue["diagnostics"]) == ("information", "Message added to the referral.")
    [kept] = world["referral"].messages.all()
    [attachment] = kept.attachments
    assert kept.text == "" and kept.side == "receiver"
    assert (attachment["title"], attachment["contentType"], base64.b64decode(attachment["data"])) == ("scan.pdf", "application/pdf", SCAN)
    # The clinic's own EMR gets it back in the next bundle, and Harbour's reader sees the file.
    world["clinic_emr"].send(message("notify-update-process-request", world["referral"].ref, task("accepted")))
    deliver_due()
    update = receiver.bundles()[-1]
    assert update["entry"][0]["resource"]["eventCoding"]["code"] == "notify-update-service-request"
    [echoed] = read_message(update).communications
    assert echoed.attachment_titles == ("scan.pdf",) and echoed.payload_texts == ()


def test_data_correction_updates_demographics(world):
    patient = {"resourceType": "Patient", "name": [{"use": "official", "family": "Tremblay-Roy", "given": ["Marie"]}], "birthDate": "1980-03-01",
               "identifier": [{"system": "https://fhir.infoway-inforoute.ca/NamingSystem/ca-on-patient-hcn", "value": "9876543210",
                               "extension": [{"url": "http://ehealthontario.ca/fhir/StructureDefinition/ext-id-health-card-version-code", "valueString": "cd"}]}]}
    world["clinic_emr"].send(message("notify-data-correction", world["referral"].ref, patient))
    world["referral"].refresh_from_db()
    p = world["referral"].patient
    assert (p["family"], p["given"], p["birth_date"], p["hcn"], p["version_code"]) == ("Tremblay-Roy", "Marie", "1980-03-01", "9876543210", "CD")
    bad = {"resourceType": "Patient", "birthDate": "yesterday"}
    issue = world["clinic_emr"].send(message("notify-data-correction", world["referral"].ref, bad), expect=422)
    assert issue["diagnostics"] == "Enter the birth date as YYYY-MM-DD."


def test_status_change_from_the_sender_is_refused_and_changes_nothing(world):
    issue = world["referrer_emr"].send(message("notify-add-process-request", world["referral"].ref, task("accepted")), expect=403)
    assert issue["code"] == "forbidden"
    assert issue["diagnostics"] == "Only the referral's current receiver can change its status or appointments."
    assert folder(world["referral"]) == "new" and not world["referral"].deliveries.filter(event="notify-update-service-request").exists()


def test_status_change_from_a_previous_receiver_is_refused(world):
    new_receiver = ready_site("New receiver", "4004")
    Referral.objects.filter(pk=world["referral"].pk).update(receiver_site=new_receiver)
    issue = world["clinic_emr"].send(message("notify-update-process-request", world["referral"].ref, task("accepted")), expect=403)
    assert issue["code"] == "forbidden"


def test_cancel_from_the_receiver_is_refused_and_from_the_sender_accepted(world):
    issue = world["clinic_emr"].send(message("revoke-service-request", world["referral"].ref), expect=403)
    assert issue["diagnostics"] == "Only the referral's sender can cancel it."
    assert folder(world["referral"]) == "new"
    world["referrer_emr"].send(message("revoke-service-request", world["referral"].ref))
    assert folder(world["referral"]) == "cancelled" and world["referral"].status == "revoked"
    again = world["referrer_emr"].send(message("revoke-service-request", world["referral"].ref), expect=422)
    assert again["diagnostics"] == "This referral is already cancelled."
    late = world["clinic_emr"].send(message("notify-update-process-request", world["referral"].ref, task("accepted")), expect=422)
    assert late["code"] == "business-rule"


def test_a_token_of_another_site_cannot_touch_the_referral(world):
    stranger = Emr(ready_site("Stranger", "5005"))
    for event, resource in [("notify-add-process-request", task("accepted")), ("send-communication-from-provider", communication("hi")), ("revoke-service-request", None)]:
        issue = stranger.send(message(event, world["referral"].ref, *([resource] if resource else [])), expect=403)
        assert issue["diagnostics"] == f"Site 5005 is not a party to referral {world['referral'].ref}."
    assert folder(world["referral"]) == "new"


@pytest.mark.parametrize("body, status, code, text", [
    (b"{not json", 400, "structure", "The body is not JSON."),
    ({"resourceType": "Patient"}, 400, "structure", "The body is not a FHIR Bundle."),
    ({"resourceType": "Bundle", "type": "collection", "entry": []}, 400, "structure", "The Bundle's type must be 'message'."),
    ({"resourceType": "Bundle", "type": "message", "entry": []}, 400, "structure", "The Bundle has no entries."),
    ({"resourceType": "Bundle", "type": "message", "entry": [{"resource": {"resourceType": "Task"}}]}, 400, "structure", "The first entry of a message Bundle must be its MessageHeader."),
    ({"resourceType": "Bundle", "type": "message", "entry": [{"resource": {"resourceType": "MessageHeader"}}]}, 400, "required", "MessageHeader.eventCoding.code is missing."),
    ("unknown-event", 400, "not-supported", "The event 'notify-teleport' is not supported from an EMR."),
    ("no-ref", 400, "required", "The message does not name a referral (no id-ereferral-reference)."),
    ("unknown-ref", 404, "not-found", None),
    ("bad-status", 422, "code-invalid", "Task status 'draft' is not supported by Ocean."),
    ("no-task", 422, "required", "The message carries no Task."),
    ("empty-communication", 422, "required", "The Communication has neither text (payload.contentString) nor a file (payload.contentAttachment)."),
    ("attachment-without-content", 422, "required", "The attachment scan.pdf has neither data nor url."),
    ("attachment-bad-base64", 422, "invalid", "The attachment scan.pdf: data is not valid base64."),
    ("attachment-without-type", 422, "invariant", "The attachment scan.pdf has data but no contentType (FHIR att-1)."),
    ("attachment-not-an-object", 422, "structure", "payload.contentAttachment must be a FHIR Attachment (an object)."),
])
def test_malformed_and_refused_messages(world, body, status, code, text):
    ref = world["referral"].ref
    if body == "unknown-event":
        body = message("notify-teleport", ref, task("accepted"))
    elif body == "no-ref":
        body = message("notify-add-process-request", ref, task("accepted"), header_ext="none")
        body["entry"] = body["entry"][:-1]
        body["entry"][1]["resource"].pop("basedOn")
    elif body == "unknown-ref":
        body = message("notify-add-process-request", uuid.uuid4(), task("accepted"))
    elif body == "bad-status":
        body = message("notify-add-process-request", ref, task("draft"))
    elif body == "no-task":
        body = message("notify-add-process-request", ref)
    elif body == "empty-communication":
        body = message("send-communication-from-provider", ref, {"resourceType": "Communication", "payload": [{"contentString": "  "}]})
    elif isinstance(body, str) and body.startswith("attachment-"):
        attachment = {
            "attachment-without-content": {"contentType": "application/pdf", "title": "scan.pdf"},
            "attachment-bad-base64": {"contentType": "application/pdf", "title": "scan.pdf", "data": "not base64!"},
            "attachment-without-type": {"title": "scan.pdf", "data": base64.b64encode(b"%PDF-1.4").decode()},
            "attachment-not-an-object": "scan.pdf",
        }[body]
        body = message("send-communication-from-provider", ref, communication("With a file", attachment=attachment))
    issue = world["clinic_emr"].send(body, expect=status)
    assert issue["severity"] == "error" and issue["code"] == code
    if text:
        assert issue["diagnostics"] == text
    assert folder(world["referral"]) == "new"
    assert not world["referral"].messages.exists()


def test_letter_is_a_pdf_summary_and_appends_attachments(world, pair):
    from fpdf import FPDF

    extra = FPDF()
    extra.add_page()
    extra.set_font("Helvetica", size=12)
    extra.cell(0, 10, "Imaging report page")
    attachment_pdf = bytes(extra.output())
    referral = send_referral(pair, attachments=[
        {"title": "imaging.pdf", "content_type": "application/pdf", "data": base64.b64encode(attachment_pdf).decode()},
        {"title": "notes.txt", "content_type": "text/plain", "data": base64.b64encode(b"plain notes").decode()},
    ])
    client = world["clinic_emr"].client
    response = client.get(f"/svc/fhir/v1/ServiceRequest/{referral.ref}/$letter")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    summary = PdfReader(io.BytesIO(response.content))
    text = "".join(page.extract_text() for page in summary.pages)
    assert "Tremblay" in text and "1234567890" in text and "Back pain with no red flags" in text and "imaging.pdf" in text
    merged = PdfReader(io.BytesIO(client.get(f"/svc/fhir/v1/ServiceRequest/{referral.ref}/$letter?attachments=true").content))
    assert len(merged.pages) == len(summary.pages) + 1
    assert "Imaging report page" in merged.pages[-1].extract_text()
    # The referrer's EMR may read the letter too; another site's token may not.
    assert world["referrer_emr"].client.get(f"/svc/fhir/v1/ServiceRequest/{referral.ref}/$letter").status_code == 200
    stranger = Emr(ready_site("Stranger", "5005")).client
    refused = stranger.get(f"/svc/fhir/v1/ServiceRequest/{referral.ref}/$letter")
    assert refused.status_code == 404 and refused.json()["issue"][0]["code"] == "not-found"
    assert client.get("/svc/fhir/v1/ServiceRequest/nope/$letter").status_code == 404


def test_binary_returns_the_attachment_to_the_parties_only(world, pair):
    referral = send_referral(pair, attachments=[{"title": "x.png", "content_type": "image/png", "data": base64.b64encode(b"\x89PNG fake").decode()}])
    attachment = referral.attachments.get()
    response = world["clinic_emr"].client.get(f"/svc/fhir/v1/DocumentReference/{attachment.ref}/$binary")
    assert response.status_code == 200 and response.content == b"\x89PNG fake" and response["Content-Type"] == "image/png"
    stranger = Emr(ready_site("Stranger", "5005")).client
    assert stranger.get(f"/svc/fhir/v1/DocumentReference/{attachment.ref}/$binary").status_code == 404
    assert world["clinic_emr"].client.get(f"/svc/fhir/v1/DocumentReference/{uuid.uuid4()}/$binary").status_code == 404
    bundle = json.loads(bytes(referral.deliveries.first().bundle))
    urls = [e["resource"]["content"][0]["attachment"]["url"] for e in bundle["entry"] if e["resource"]["resourceType"] == "DocumentReference"]
    assert urls[1] == f"http://sandbox.test:8081/svc/fhir/v1/DocumentReference/{attachment.ref}/$binary"
