"""Outbound bundles: structure, strict validation, and round trips through the reader."""
import base64
import copy
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from harbour.fhir import build, codes
from harbour.fhir.build import (
    AppointmentBooking, BuildError, OutboundInvalid, OutgoingAttachment, OutgoingMessage,
    ReferralContext, TaskUpdate, validate_outbound,
)
from harbour.fhir.read import read_message

BUNDLES = Path(__file__).resolve().parents[1] / "fixtures" / "bundles"
REF = "71db1a5c-89ce-41d5-bc71-8466f6c2f182"
EST = timezone(timedelta(hours=-4))
NOW = datetime(2025, 6, 3, 10, 0, tzinfo=EST)


def snapshot(name="notify-update-service-request.full.json"):
    return json.loads((BUNDLES / name).read_text())


def ctx(**kw):
    base = dict(ocean_base_url="https://test.cognisantmd.com", referral_ref=REF,
                harbour_url="https://soleil.example.org", site_number="1234",
                listing_ref="autorouter_test49721437", snapshot=snapshot())
    base.update(kw)
    return ReferralContext(**base)


def resources(bundle, rtype):
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == rtype]


def test_first_task_header_and_task():
    bundle = build.build_task_message(ctx(), TaskUpdate("accepted"), first=True, now=NOW)
    validate_outbound(bundle, expected_event=codes.NOTIFY_ADD_PROCESS_REQUEST)
    header = bundle["entry"][0]["resource"]
    assert header["eventCoding"] == {"system": codes.MESSAGE_EVENT_SYSTEM, "code": "notify-add-process-request",
                                     "display": "notify-add-process-request"}
    assert header["source"]["endpoint"] == "https://soleil.example.org"
    assert header["destination"][0]["endpoint"] == "https://test.cognisantmd.com/svc/fhir/v1/$process-messages"
    assert header["extension"] == [{"url": codes.EXT_ID_MESSAGE_HEADER, "valueString": REF}]
    assert header["meta"]["profile"] == [codes.PROFILE_PREFIX + "MessageHeader|1.0.1"]
    [task] = resources(bundle, "Task")  # the snapshot's earlier Task is not copied
    assert task["status"] == "accepted" and task["intent"] == "order"
    assert task["code"]["coding"][0] == {"system": codes.TASK_CODE_SYSTEM, "code": "process-request"}
    assert task["meta"]["profile"] == [codes.PROFILE_PREFIX + "Task|1.0.0"]
    sr_url = "urn:uuid:71db1a5c-89ce-41d5-bc71-8466f6c2f182"
    assert task["basedOn"][0]["reference"] == sr_url
    assert task["basedOn"][0]["identifier"] == {
        "system": "https://test.cognisantmd.com/svc/fhir/v1/NamingSystem/id-ereferral-reference", "value": REF}
    assert task["owner"]["reference"] == "urn:uuid:163dd763-3947-442a-82d5-3d0c598142bd"
    assert task["authoredOn"] == "2025-06-03T10:00:00-04:00"
    # Fresh urn:uuid fullUrls for the header and the Task; the focus points at the Task.
    task_entry = next(e for e in bundle["entry"] if e["resource"] is task)
    assert task_entry["fullUrl"].startswith("urn:uuid:") and bundle["entry"][0]["fullUrl"].startswith("urn:uuid:")
    assert header["focus"] == [{"reference": task_entry["fullUrl"]}]
    assert resources(bundle, "Appointment") == [] and resources(bundle, "Communication") == []


def test_later_status_is_an_update_and_reads_back():
    bundle = build.build_task_message(ctx(), TaskUpdate("rejected", reason="Not our specialty"),
                                      first=False, now=NOW)
    validate_outbound(bundle)
    message = read_message(bundle, strict=True)
    assert message.event == codes.NOTIFY_UPDATE_PROCESS_REQUEST
    assert message.referral_ref == REF
    assert message.payload_version == "0.11.1"
    [task] = message.tasks
    assert (task.status, task.status_reason, task.authored_on) == ("rejected", "Not our specialty", NOW)
    assert message.focus == ("Task",)
    assert message.service_request.ref == REF
    assert message.target.reference == "autorouter_test49721437"


def test_decline_needs_a_reason_and_unknown_status_refused():
    with pytest.raises(BuildError):
        build.build_task_message(ctx(), TaskUpdate("rejected", reason="  "), first=False)
    with pytest.raises(BuildError):
        build.build_task_message(ctx(), TaskUpdate("failed"), first=False)


def test_task_code_system_is_configurable():
    bundle = build.build_task_message(ctx(task_code_system="https://example.org/cs"), TaskUpdate("completed"),
                                      first=False, now=NOW)
    assert resources(bundle, "Task")[0]["code"]["coding"][0]["system"] == "https://example.org/cs"


def test_booking_round_trip():
    start = datetime(2025, 6, 10, 14, 0, tzinfo=EST)
    booking = AppointmentBooking(start=start, minutes_duration=45, confirmed=True,
                                 instructions="Bring your health card", location="Room 3")
    bundle = build.build_appointment_message(ctx(), booking, now=NOW)
    validate_outbound(bundle, expected_event=codes.NOTIFY_ADD_APPOINTMENT)
    [appointment] = resources(bundle, "Appointment")
    assert appointment["end"] == "2025-06-10T14:45:00-04:00" and appointment["minutesDuration"] == 45
    message = read_message(bundle, strict=True)
    assert message.event == codes.NOTIFY_ADD_APPOINTMENT and message.focus == ("Appointment",)
    [read] = message.appointments
    assert (read.status, read.start, read.end, read.participant_status, read.patient_instruction) == (
        "booked", start, start + timedelta(minutes=45), "accepted", "Bring your health card")
    assert not read.is_cancellation_signal


def test_unconfirmed_booking_is_tentative():
    start = datetime(2025, 6, 10, 14, 0, tzinfo=EST)
    bundle = build.build_appointment_message(ctx(), AppointmentBooking(start=start, end=start + timedelta(hours=1)))
    assert read_message(bundle).appointments[0].participant_status == "tentative"


def test_instructions_only_is_proposed_without_dates():
    bundle = build.build_appointment_message(ctx(), AppointmentBooking(instructions="Call us to book"), now=NOW)
    validate_outbound(bundle)
    [appointment] = resources(bundle, "Appointment")
    assert appointment["status"] == "proposed"
    assert "start" not in appointment and "end" not in appointment and "minutesDuration" not in appointment
    assert read_message(bundle).appointments[0].patient_instruction == "Call us to book"
    with pytest.raises(BuildError):
        build.build_appointment_message(ctx(), AppointmentBooking())


def test_bad_appointments_refused():
    start = datetime(2025, 6, 10, 14, 0, tzinfo=EST)
    with pytest.raises(BuildError):
        build.build_appointment_message(ctx(), AppointmentBooking(start=start, end=start))
    with pytest.raises(BuildError):
        build.build_appointment_message(ctx(), AppointmentBooking(start=start))  # no end, no duration
    with pytest.raises(BuildError):
        build.build_appointment_message(ctx(), AppointmentBooking(start=datetime(2025, 6, 10, 14), minutes_duration=5))


def test_rebook_focuses_appointment_and_task():
    start = datetime(2025, 6, 11, 9, 0, tzinfo=EST)
    bundle = build.build_appointment_message(ctx(), AppointmentBooking(start=start, minutes_duration=30),
                                             update=TaskUpdate("accepted"), now=NOW)
    validate_outbound(bundle, expected_event=codes.NOTIFY_UPDATE_PROCESS_REQUEST)
    message = read_message(bundle, strict=True)
    assert message.focus == ("Appointment", "Task")
    assert message.appointments[0].start == start and message.tasks[0].status == "accepted"


def test_cancel_appointment_is_the_undated_signal():
    bundle = build.build_appointment_cancel_message(ctx(), "Doctor ill", TaskUpdate("accepted", reason="Doctor ill"),
                                                    now=NOW)
    validate_outbound(bundle)
    [appointment] = resources(bundle, "Appointment")
    assert appointment["cancelationReason"] == {"text": "Doctor ill"}
    message = read_message(bundle, strict=True)
    assert message.appointments[0].is_cancellation_signal
    assert message.focus == ("Appointment", "Task")
    with pytest.raises(BuildError):
        build.build_appointment_cancel_message(ctx(), "", TaskUpdate("accepted"))


def test_communication_with_attachment_round_trip():
    data = b"%PDF-1.4 tiny"
    outgoing = OutgoingMessage(text="Please send the MRI report.", sender_name="Dr Soleil",
                               attachment=OutgoingAttachment("form.pdf", "application/pdf", data),
                               in_response_to="urn:uuid:3d4e5f6a-7b8c-4d9e-0f1a-2b3c4d5e6f7a", sent=NOW)
    bundle = build.build_communication_message(ctx(), outgoing, now=NOW)
    validate_outbound(bundle, expected_event=codes.SEND_COMMUNICATION_FROM_PROVIDER)
    header = bundle["entry"][0]["resource"]
    focus_url = header["focus"][0]["reference"]
    ours = next(e["resource"] for e in bundle["entry"] if e["fullUrl"] == focus_url)
    assert ours["status"] == "completed"
    assert ours["payload"][0] == {"contentString": "Please send the MRI report."}
    att = ours["payload"][1]["contentAttachment"]
    assert base64.b64decode(att["data"]) == data and att["contentType"] == "application/pdf"
    assert att["title"] == "form.pdf" and att["size"] == len(data)
    # inResponseTo points at the referrer's Communication, which stays in the bundle.
    assert ours["inResponseTo"] == [{"reference": "urn:uuid:3d4e5f6a-7b8c-4d9e-0f1a-2b3c4d5e6f7a",
                                     "type": "Communication"}]
    message = read_message(bundle, strict=True)
    mine = next(c for c in message.communications if c.payload_texts == ("Please send the MRI report.",))
    assert mine.sender == "Dr Soleil" and mine.sent == NOW and mine.attachment_titles == ("form.pdf",)
    assert mine.status == "completed"


def test_message_from_the_requester_on_a_sent_referral():
    """A message the clinic writes on a copy of a referral it sent (both sides message, [F 34])."""
    outgoing = OutgoingMessage(text="Any news on the booking?", sender_name="Dr Soleil", sent=NOW)
    bundle = build.build_communication_message(ctx(), outgoing, now=NOW, from_requester=True)
    validate_outbound(bundle, expected_event=codes.SEND_COMMUNICATION_FROM_REQUESTER)
    header = bundle["entry"][0]["resource"]
    request = resources(bundle, "ServiceRequest")[0]
    ours = next(e["resource"] for e in bundle["entry"] if e["fullUrl"] == header["focus"][0]["reference"])
    assert ours["resourceType"] == "Communication"
    # Written by the referrer (ServiceRequest.requester), to the target listing.
    assert ours["sender"]["reference"] == request["requester"]["reference"]
    assert ours["sender"]["display"] == "Dr Soleil"
    assert header["sender"]["reference"] == request["requester"]["reference"]
    assert header["destination"][0]["receiver"]["reference"] == "urn:uuid:163dd763-3947-442a-82d5-3d0c598142bd"
    message = read_message(bundle, strict=True)
    assert message.event_code == codes.SEND_COMMUNICATION_FROM_REQUESTER
    mine = next(c for c in message.communications if c.payload_texts == ("Any news on the booking?",))
    assert mine.sender == "Dr Soleil" and mine.sent == NOW
    # The provider's message is unchanged: sent by the target listing.
    provider = build.build_communication_message(ctx(), outgoing, now=NOW)
    assert provider["entry"][0]["resource"]["eventCoding"]["code"] == codes.SEND_COMMUNICATION_FROM_PROVIDER
    assert provider["entry"][0]["resource"]["sender"]["reference"] == "urn:uuid:163dd763-3947-442a-82d5-3d0c598142bd"


def test_requester_event_only_for_a_message():
    """send-communication-from-requester is accepted for a Communication focus only."""
    bundle = build.build_task_message(ctx(), TaskUpdate("accepted"), first=True, now=NOW)
    bundle["entry"][0]["resource"]["eventCoding"].update(code=codes.SEND_COMMUNICATION_FROM_REQUESTER)
    with pytest.raises(OutboundInvalid, match="only a Communication"):
        validate_outbound(bundle)
    # Other requester-side or inbound events stay refused.
    for event in (codes.SEND_COMMUNICATION, "add-service-request", "revoke-service-request"):
        bundle = build.build_communication_message(ctx(), OutgoingMessage(text="x"), now=NOW, from_requester=True)
        bundle["entry"][0]["resource"]["eventCoding"].update(code=event)
        with pytest.raises(OutboundInvalid, match="not an event"):
            validate_outbound(bundle)


def test_message_needs_content():
    with pytest.raises(BuildError):
        build.build_communication_message(ctx(), OutgoingMessage(text="  "))


def test_data_correction_replaces_patient():
    patient = copy.deepcopy(resources(snapshot(), "Patient")[0])
    patient["birthDate"] = "1980-02-03"
    bundle = build.build_data_correction_message(ctx(), patient, now=NOW)
    validate_outbound(bundle, expected_event=codes.NOTIFY_DATA_CORRECTION)
    assert len(resources(bundle, "Patient")) == 1
    message = read_message(bundle, strict=True)
    assert message.focus == ("Patient",) and message.patient.birth_date.isoformat() == "1980-02-03"
    with pytest.raises(BuildError):
        build.build_data_correction_message(ctx(), {"resourceType": "Observation"})


def test_without_snapshot_stubs_keep_the_bundle_complete():
    bundle = build.build_task_message(ctx(snapshot=None), TaskUpdate("accepted"), first=True, now=NOW)
    validate_outbound(bundle)
    [request] = resources(bundle, "ServiceRequest")
    assert request["identifier"][0]["value"] == REF
    task = resources(bundle, "Task")[0]
    assert task["owner"]["identifier"]["value"] == "autorouter_test49721437"
    assert read_message(bundle, strict=True).referral_ref == REF


def test_real_v011_snapshot_works():
    bundle = build.build_task_message(ctx(snapshot=snapshot("add-service-request.back-pain.json")),
                                      TaskUpdate("completed"), first=False, now=NOW)
    validate_outbound(bundle)
    assert read_message(bundle).tasks[0].status == "completed"


def test_bad_context_refused():
    with pytest.raises(BuildError):
        build.build_task_message(ctx(referral_ref=""), TaskUpdate("accepted"), first=True)
    with pytest.raises(BuildError):
        build.build_task_message(ctx(harbour_url="soleil"), TaskUpdate("accepted"), first=True)


@pytest.mark.parametrize("breaker, problem", [
    (lambda b: b.update(type="collection"), "type message"),
    (lambda b: b["entry"].insert(0, b["entry"].pop(1)), "first entry"),
    (lambda b: b["entry"][0]["resource"]["eventCoding"].update(code="add-service-request"), "not an event"),
    (lambda b: b["entry"][0]["resource"]["eventCoding"].update(system="http://x"), "message-event"),
    (lambda b: b["entry"][0]["resource"].pop("extension"), "ext-id-message-header"),
    (lambda b: b["entry"][0]["resource"]["destination"][0].update(endpoint="https://x/other"), "$process-messages"),
    (lambda b: b["entry"][0]["resource"]["source"].pop("endpoint"), "source.endpoint"),
    (lambda b: b["entry"][0]["resource"].update(focus=[{"reference": "urn:uuid:nowhere"}]), "focus"),
    (lambda b: _task(b).update(status="draft"), "Ocean honours"),
    (lambda b: _task(b).update(intent="plan"), "intent"),
    (lambda b: _task(b).update(description=""), "empty"),
    (lambda b: _task(b).update(authoredOn="yesterday"), "authoredOn"),
    (lambda b: _task(b).pop("owner"), "owner"),
    (lambda b: _task(b).update(basedOn=[]), "basedOn"),
    (lambda b: _task(b)["meta"].update(profile=["x"]), "profile"),
    (lambda b: b["entry"].append(copy.deepcopy(b["entry"][1])), "repeats a fullUrl"),
    (lambda b: b.update(entry=[e for e in b["entry"] if e["resource"]["resourceType"] != "Patient"]), "Patient"),
])
def test_validator_catches(breaker, problem):
    bundle = build.build_task_message(ctx(), TaskUpdate("accepted"), first=True, now=NOW)
    validate_outbound(bundle)
    breaker(bundle)
    with pytest.raises(OutboundInvalid) as caught:
        validate_outbound(bundle)
    assert problem in str(caught.value)


def _task(bundle):
    return resources(bundle, "Task")[0]


def test_validator_appointment_and_attachment_rules():
    start = datetime(2025, 6, 10, 14, 0, tzinfo=EST)
    bundle = build.build_appointment_message(ctx(), AppointmentBooking(start=start, minutes_duration=30))
    resources(bundle, "Appointment")[0].pop("end")
    with pytest.raises(OutboundInvalid, match="start and end"):
        validate_outbound(bundle)
    bundle = build.build_communication_message(
        ctx(), OutgoingMessage(text="x", attachment=OutgoingAttachment("a.txt", "text/plain", b"abc")))
    comm = next(c for c in resources(bundle, "Communication") if c["payload"][0] == {"contentString": "x"})
    comm["payload"][1]["contentAttachment"]["data"] = "not base64!"
    with pytest.raises(OutboundInvalid, match="base64"):
        validate_outbound(bundle)


def test_echo_keys_ignore_offsets():
    utc = NOW.astimezone(timezone.utc)
    assert build.task_echo_key("accepted", NOW) == build.task_echo_key("accepted", utc)
    assert build.task_echo_key("accepted", NOW) != build.task_echo_key("rejected", NOW)
    assert build.communication_echo_key("hi ", NOW) == build.communication_echo_key("hi", utc)
    assert len(build.communication_echo_key("x" * 5000, NOW)) <= 100
    # The key built from what the reader reads back equals the key built when sending.
    bundle = build.build_task_message(ctx(), TaskUpdate("accepted", authored_on=NOW), first=True)
    task = read_message(bundle).tasks[0]
    assert build.task_echo_key(task.status, task.authored_on) == build.task_echo_key("accepted", NOW)
