"""The real Ocean payload becomes a referral carrying every field it holds."""
from datetime import date, datetime, timedelta, timezone

from harbour.core.worker import run_until_idle
from harbour.intake.models import InboundMessage
from harbour.referrals.models import Attachment, Event, FormAnswer, Referral
from tests.referrals import bundles as B

EDT = timezone(timedelta(hours=-4))


def test_real_fixture_processes_into_a_referral(clinic, site):
    message = B.store(clinic, B.load(B.REAL))
    assert run_until_idle() >= 1
    message.refresh_from_db()
    assert message.state == InboundMessage.State.PROCESSED
    assert message.attempts == 1 and message.processed_at is not None and message.error == ""
    assert "health card identifier has no value" in message.warnings

    r = Referral.objects.get()
    assert r.clinic == clinic
    assert r.ocean_ref == B.REF
    assert r.direction == "received"
    assert r.status == "new" and r.ocean_folder == "new"
    assert r.ocean_status == "active"
    assert r.ocean_server == "http://localhost:8081"
    assert r.priority == ""  # the sample carries none
    assert r.category_code == "410223002"
    assert r.category_display == "MENTAL_HEALTH_ASSESSMENT_AND_REFERRAL"
    assert r.specialties == ["410223002", "49634009"]
    assert r.reason == "Reason for Referral: Back pain with no red flags"
    assert "<" not in r.reason and "&nbsp;" not in r.reason
    assert r.authored_at == datetime(2025, 5, 27, 11, 38, tzinfo=EDT)
    assert r.snapshot_at == datetime(2025, 5, 27, 11, 45, 6, 783000, tzinfo=EDT)
    assert r.listing_ref == "autorouter_test49721437"
    assert r.site_number == "1234"
    assert r.listing_name == "Autorouter Test"
    assert r.referrer_name == "Doug Kavanagh"
    assert r.patient_family == "DKTest"
    assert r.patient_given == ""
    assert r.patient_sex == "male"
    assert r.patient_birth_date is None and r.patient_hcn == "" and r.patient_address == ""
    assert r.patient_deceased is False
    assert r.form_reference == "quickReferral"
    assert r.first_seen_in_update is False
    assert r.last_activity_at == message.received_at

    answers = list(FormAnswer.objects.filter(referral=r))
    assert len(answers) == 25
    assert [a.link_id for a in answers[:2]] == ["allergies", "tx"]
    rfr = answers[-1]
    assert (rfr.link_id, rfr.label, rfr.answer_list, rfr.hidden) == ("rfr", "rfr", ["back pain with no red flags"], False)
    assert answers[0].hidden is True and answers[0].label == "Allergies:"

    letter = Attachment.objects.get(referral=r)
    assert letter.kind == "letter" and letter.identifier == B.REF
    assert letter.url.endswith(f"/ServiceRequest/{B.REF}/$letter")
    assert letter.title == "DKTest--2025-05-27.pdf" and letter.content_type == "application/pdf"
    assert letter.created == datetime(2025, 5, 27, 11, 38, tzinfo=EDT)

    events = list(Event.objects.filter(referral=r))
    assert [(e.code, e.inbound_message_id, e.kind) for e in events if e.code == "referral_received"] == [
        ("referral_received", message.pk, "add-service-request")]
    assert events[0].clinic == clinic


def test_full_update_carries_the_rest(clinic, site):
    """The derived full bundle: demographics, referrer identifiers, appointments, task, message."""
    message = B.store(clinic, B.load(B.FULL))
    run_until_idle()
    message.refresh_from_db()
    assert message.state == "processed", message.error
    r = Referral.objects.get()
    assert r.first_seen_in_update is True
    assert (r.patient_given, r.patient_family, r.patient_sex) == ("Dana K", "DKTest", "female")
    assert r.patient_birth_date == date(1980, 2, 29)
    assert (r.patient_hcn, r.patient_hcn_version, r.patient_mrn) == ("1234567890", "AB", "CHART-0042")
    assert (r.patient_phone, r.patient_email) == ("416-555-0100", "dana@example.org")
    assert r.patient_address == "1 Main St, Apt 2, Ottawa, ON K1A 0A1, CA"
    assert (r.referrer_licence, r.referrer_billing_number, r.referrer_username) == ("98765", "123456", "dkavanagh")
    assert (r.referrer_phone, r.referrer_fax) == ("416-555-0199", "416-555-0198")
    assert r.referrer_location_name == "Kavanagh Family Practice"
    assert r.referrer_location_address == "10 King St, Toronto, ON M5H 1A1"
    assert r.referrer_organization == "Kavanagh Medicine Professional Corporation"
    assert r.priority == "urgent"
    assert r.ocean_task_status == "accepted"
    # Booked, then the undated proposed appointment: cancelled → back to accepted, flagged.
    assert r.status == "accepted" and r.ocean_folder == "pending_booking"
    assert r.attention == "appointment_cancelled"
    booked, signal = r.appointments.order_by("id")
    assert booked.start == datetime(2025, 6, 10, 14, 0, tzinfo=EDT) and booked.minutes == 30
    assert booked.cancelled and booked.superseded and not booked.confirmed
    assert booked.patient_instruction == "Bring your health card."
    assert signal.start is None and signal.status == "proposed" and not signal.superseded
    kinds = {a.kind: a for a in r.attachments.all()}
    assert kinds["attachment"].title == "xray.png" and kinds["attachment"].size == 20480
    thread = list(r.messages.all())
    assert [(m.text, m.direction, m.attachment_titles) for m in thread] == [
        ("Any update on this referral?", "from_referrer", ["note.pdf"])]
    codes = list(r.events.values_list("code", flat=True))
    assert codes[0] == "first_seen_in_update"
    for code in ("task_status", "appointment_booked", "appointment_cancelled", "message_received"):
        assert code in codes
