"""The real Ocean payload parses into every field it carries."""

from datetime import datetime, timedelta, timezone

import pytest

from harbour.fhir.read import check_envelope, read_message

REF = "71db1a5c-89ce-41d5-bc71-8466f6c2f182"


@pytest.fixture
def message(bundle):
    return read_message(bundle, strict=True)


def test_envelope(bundle):
    env = check_envelope(bundle)
    assert env.bundle_id == "7ea1dd78-8b77-4f8b-968b-d6ab36391350"
    assert env.header_id == "fdd94a37-22a7-41ce-8140-6604a1f10908"
    assert env.event_code == "add-service-request"
    assert env.referral_ref == REF


def test_header(message):
    assert message.bundle_id == "7ea1dd78-8b77-4f8b-968b-d6ab36391350"
    assert message.timestamp == datetime(2025, 5, 27, 11, 45, 6, 783000, timezone(timedelta(hours=-4)))
    assert message.event_code == message.event == "add-service-request"
    assert message.payload_version == "0.11.1"
    assert message.header_id == "fdd94a37-22a7-41ce-8140-6604a1f10908"
    assert message.referral_ref == REF
    assert message.source_endpoint == "http://localhost:8081/svc/fhir/v1/$process-messages"
    assert message.destination_endpoint == "http://localhost:4001/api/cds/cds-services/order-sign-cds"
    assert message.header_reason == "Initial"
    assert message.focus == ("ServiceRequest",)


def test_service_request(message):
    sr = message.service_request
    assert sr.ref == REF
    assert (sr.status, sr.intent, sr.priority) == ("active", "proposal", None)
    assert sr.category_code == "410223002"
    assert sr.category_display == "MENTAL_HEALTH_ASSESSMENT_AND_REFERRAL"
    assert sr.category_label == "Mental health assessment and referral"
    assert sr.authored_on == datetime(2025, 5, 27, 11, 38, tzinfo=timezone(timedelta(hours=-4)))
    assert sr.authored_on.tzinfo is not None
    assert sr.reason_text == "Reason for Referral: Back pain with no red flags"
    assert sr.specialties == ("410223002", "49634009")  # from the target listing
    assert sr.replaces == sr.based_on == ()


def test_patient(message):
    p = message.patient
    assert p.family == "DKTest" and p.name_text == "DKTest" and p.given == ()
    assert p.gender == "male"
    assert p.birth_date is None
    assert p.hcn is None and p.has_hcn_identifier and p.hcn_version is None
    assert p.mrn is None
    assert p.addresses == ()  # both are empty (use/type only)
    assert p.telecom == ()
    assert p.deceased is False
    assert p.display_name == "DKTest"


def test_referrer(message):
    r = message.referrer
    assert r.name == "Doug Kavanagh"
    assert (r.family, r.given) == ("Kavanagh", ("Doug",))
    assert r.cpso is r.ohip_billing_number is r.ocean_username is None
    assert r.location_address is None  # the referrer's Location address is empty


def test_target(message):
    t = message.target
    assert t.reference == "autorouter_test49721437"
    assert t.site_number == "1234"
    assert t.name == "Autorouter Test"
    assert t.specialties == ("410223002", "49634009")
    assert t.location_address.city == "Toronto"
    assert t.location_address.one_line() == "3080 Yonge St, Toronto, ON M4P 0C6"


def test_form(message):
    form = message.form
    assert form.reference == "quickReferral" and form.status == "completed"
    assert len(form.items) == 25
    assert [i.link_id for i in form.items][:3] == ["allergies", "tx", "rx"]
    assert sum(i.hidden for i in form.items) >= 17
    rfr = next(i for i in form.items if i.link_id == "rfr")
    assert rfr.answers == ("back pain with no red flags",) and not rfr.hidden and rfr.text is None
    assert rfr.label == "rfr"
    allergies = form.items[0]
    assert allergies.hidden and allergies.text == "Allergies:" and allergies.answers == ()
    assert not next(i for i in form.items if i.link_id == "includeCPP").hidden


def test_letter(message):
    (letter,) = message.attachments
    assert letter.kind == "letter"
    assert letter.identifier == REF
    assert letter.url == f"http://localhost:8081/svc/fhir/v1/ServiceRequest/{REF}/$letter"
    assert letter.title == "DKTest--2025-05-27.pdf"
    assert letter.content_type == "application/pdf"
    assert letter.status == "current"
    assert letter.creation == datetime(2025, 5, 27, 11, 38, tzinfo=timezone(timedelta(hours=-4)))


def test_no_other_resources(message):
    assert message.appointments == message.tasks == message.communications == ()


def test_warnings_name_the_gaps_without_patient_data(message):
    assert "health card identifier has no value" in message.warnings
    assert "the patient has no birth date" in message.warnings
    assert "the patient has no given name" in message.warnings
    assert not any("DKTest" in w for w in message.warnings)
    assert len(message.warnings) == 3


def test_full_bundle(full_bundle):
    m = read_message(full_bundle, strict=True)
    assert m.event == "notify-update-service-request" and m.warnings == ()
    p = m.patient
    assert (p.hcn, p.hcn_version, p.mrn) == ("1234567890", "AB", "CHART-0042")
    assert p.given == ("Dana", "K") and p.birth_date.isoformat() == "1980-02-29"
    assert [t.system for t in p.telecom] == ["email", "phone"]
    assert len(p.addresses) == 1 and p.addresses[0].city == "Ottawa"
    r = m.referrer
    assert (r.cpso, r.ohip_billing_number, r.ocean_username) == ("98765", "123456", "dkavanagh")
    assert (r.phone, r.fax, r.role_code) == ("416-555-0199", "416-555-0198", "59058001")
    assert r.location_name == "Kavanagh Family Practice"
    assert r.organization_name == "Kavanagh Medicine Professional Corporation"
    assert m.service_request.priority == "urgent"
    letter, xray = m.attachments
    assert (xray.kind, xray.identifier, xray.size) == ("attachment", "att-77", 20480)
    (task,) = m.tasks
    assert (task.status, task.code, task.status_reason, task.business_status) == \
        ("accepted", "process-request", "Accepted, will book", "Pending booking")
    assert task.last_modified.isoformat() == "2025-06-02T08:05:00-04:00"
    booked, cancelled = m.appointments
    assert booked.participant_status == "tentative" and booked.minutes_duration == 30
    assert booked.appointment_type == "Initial consultation" and not booked.is_cancellation_signal
    assert booked.patient_instruction == "Bring your health card."
    assert cancelled.is_cancellation_signal and cancelled.start is None
    (msg,) = m.communications
    assert msg.payload_texts == ("Any update on this referral?",)
    assert msg.attachment_titles == ("note.pdf",) and msg.sender == "Doug Kavanagh"
    assert msg.sent.isoformat() == "2025-06-02T09:00:00-04:00"


def test_communication_focus_leads_to_the_service_request(load_bundle):
    m = read_message(load_bundle("send-communication-from-requester.json"), strict=True)
    assert m.focus == ("Communication",)
    assert m.event == "send-communication-from-requester"
    assert m.service_request.ref == REF
    assert m.warnings == ()
