"""Staff actions: state checks, local state, timeline with echo keys, one enqueued message each."""
from datetime import datetime, timedelta, timezone as dt_timezone

import pytest

from harbour.fhir import codes
from harbour.fhir.read import read_message
from harbour.ocean import actions
from harbour.ocean.actions import ActionNotAllowed, FileUpload
from harbour.ocean.models import OutboundMessage
from harbour.referrals.models import CommunicationMessage, Event, StatusChange
from tests.ocean.conftest import make_referral



@pytest.fixture(autouse=True)
def _english():
    from django.utils import translation

    with translation.override("en"):
        yield


START = datetime(2025, 7, 2, 14, 0, tzinfo=dt_timezone(timedelta(hours=-4)))


def only_message(referral):
    [message] = OutboundMessage.objects.filter(referral=referral)
    return message


def test_accept_updates_state_timeline_and_outbox(referral, admin_user):
    message = actions.accept(referral, admin_user)
    referral.refresh_from_db()
    assert (referral.status, referral.ocean_folder, referral.ocean_task_status) == (
        "accepted", "pending_booking", "accepted")
    assert message.kind == "accept" and message.state == "pending" and message.created_by == admin_user
    assert message.event_code == codes.NOTIFY_ADD_PROCESS_REQUEST  # the first Task
    read = read_message(message.bundle)
    assert read.tasks[0].status == "accepted" and read.referral_ref == referral.ocean_ref
    event = Event.objects.get(referral=referral, outbound_id=message.pk)
    assert event.code == "task_status" and event.actor == admin_user
    assert event.dedupe_key == message.echo_key and message.echo_key.startswith("task:accepted:")
    change = StatusChange.objects.get(referral=referral)
    assert (change.from_status, change.to_status, change.outbound_id) == ("new", "accepted", message.pk)


def test_echo_of_our_accept_adds_nothing(referral, admin_user):
    """Processing builds the same key from Ocean's echo; the timeline refuses a second row."""
    from harbour.referrals import dedupe

    message = actions.accept(referral, admin_user)
    task = read_message(message.bundle).tasks[0]
    assert dedupe.task_key(task.status, task.authored_on) == message.echo_key
    assert Event.objects.filter(referral=referral, dedupe_key=message.echo_key).count() == 1


def test_double_accept_gives_one_message(referral, admin_user):
    actions.accept(referral, admin_user)
    with pytest.raises(ActionNotAllowed):
        actions.accept(referral, admin_user)
    assert OutboundMessage.objects.filter(referral=referral).count() == 1


def test_double_submit_with_same_key_is_silent(referral, admin_user):
    first = actions.accept(referral, admin_user, idempotency_key="form-123")
    second = actions.accept(referral, admin_user, idempotency_key="form-123")
    assert first.pk == second.pk
    assert OutboundMessage.objects.filter(referral=referral).count() == 1
    assert Event.objects.filter(referral=referral).count() == 1


def test_decline_requires_reason_and_later_status_is_update(referral, admin_user):
    with pytest.raises(ActionNotAllowed):
        actions.decline(referral, admin_user, "   ")
    assert not OutboundMessage.objects.exists()
    actions.accept(referral, admin_user)
    message = actions.decline(referral, admin_user, "Outside our catchment")
    assert message.event_code == codes.NOTIFY_UPDATE_PROCESS_REQUEST
    task = read_message(message.bundle).tasks[0]
    assert (task.status, task.status_reason) == ("rejected", "Outside our catchment")
    referral.refresh_from_db()
    assert referral.status == "declined" and referral.ocean_folder == "declined"


@pytest.mark.parametrize("fields", [
    {"status": "cancelled"}, {"status": "forwarded"}, {"status": "externally_managed"},
    {"direction": "sent"}, {"direction": "unknown"},
])
def test_actions_refused_on_locked_referrals(clinic, ocean_settings, admin_user, fields):
    referral = make_referral(clinic, **fields)
    calls = [
        lambda: actions.accept(referral, admin_user),
        lambda: actions.decline(referral, admin_user, "no"),
        lambda: actions.complete(referral, admin_user),
        lambda: actions.book(referral, admin_user, START, duration=30),
    ]
    if fields.get("direction") != "sent":  # on a sent copy the clinic may message (see below)
        calls.append(lambda: actions.send_message(referral, admin_user, "hello"))
    for call in calls:
        with pytest.raises(ActionNotAllowed) as caught:
            call()
        assert str(caught.value.message)
    assert not OutboundMessage.objects.exists()
    referral.refresh_from_db()
    assert referral.status == fields.get("status", "new")


def test_refused_when_another_site(clinic, ocean_settings, admin_user):
    referral = make_referral(clinic)
    ocean_settings.site_number = "9999"
    ocean_settings.save()
    with pytest.raises(ActionNotAllowed, match="another Ocean site"):
        actions.accept(referral, admin_user)


def test_state_checks(referral, admin_user):
    with pytest.raises(ActionNotAllowed):
        actions.complete(referral, admin_user)  # new: accept or book first
    with pytest.raises(ActionNotAllowed):
        actions.rebook(referral, admin_user, START, duration=30)
    with pytest.raises(ActionNotAllowed):
        actions.cancel_appointment(referral, admin_user, "x")


def test_book_rebook_cancel_complete(referral, admin_user):
    actions.accept(referral, admin_user)
    booked = actions.book(referral, admin_user, START, duration=timedelta(minutes=45), location="Room 2",
                          confirmed=True, instructions="Arrive early")
    assert booked.event_code == codes.NOTIFY_ADD_APPOINTMENT
    referral.refresh_from_db()
    assert (referral.status, referral.ocean_folder) == ("booked", "booking_confirmed")
    appt = referral.appointments.get(superseded=False)
    assert (appt.start, appt.end, appt.minutes, appt.participant_status, appt.confirmed) == (
        START, START + timedelta(minutes=45), 45, "accepted", True)
    assert Event.objects.get(outbound_id=booked.pk).code == "appointment_booked"
    with pytest.raises(ActionNotAllowed, match="rebook"):
        actions.book(referral, admin_user, START, duration=30)

    new_start = START + timedelta(days=1)
    rebooked = actions.rebook(referral, admin_user, new_start, new_start + timedelta(minutes=30))
    assert rebooked.event_code == codes.NOTIFY_UPDATE_PROCESS_REQUEST
    read = read_message(rebooked.bundle)
    assert read.focus == ("Appointment", "Task") and read.appointments[0].start == new_start
    assert read.appointments[0].participant_status == "tentative"
    referral.refresh_from_db()
    assert referral.ocean_folder == "booking_unconfirmed"

    with pytest.raises(ActionNotAllowed):
        actions.cancel_appointment(referral, admin_user, " ")
    cancelled = actions.cancel_appointment(referral, admin_user, "Clinic closed")
    assert read_message(cancelled.bundle).appointments[0].is_cancellation_signal
    referral.refresh_from_db()
    assert referral.status == "accepted" and referral.ocean_folder == "pending_booking"
    from harbour.referrals.dedupe import appointment_cancelled_key

    assert cancelled.echo_key == appointment_cancelled_key(new_start)
    assert referral.appointments.filter(cancelled=True, start=new_start).exists()

    done = actions.complete(referral, admin_user)
    assert read_message(done.bundle).tasks[0].status == "completed"
    referral.refresh_from_db()
    assert referral.status == "completed"
    kinds = list(OutboundMessage.objects.filter(referral=referral).values_list("kind", flat=True))
    assert kinds == ["accept", "book", "rebook", "cancel_appointment", "complete"]


def test_instructions_only_booking(referral, admin_user):
    message = actions.book(referral, admin_user, None, instructions="Call 555-0100 to book")
    appointment = read_message(message.bundle).appointments[0]
    assert appointment.status == "proposed" and appointment.start is None
    referral.refresh_from_db()
    assert referral.status == "accepted"


def test_bad_booking_refused(referral, admin_user):
    with pytest.raises(ActionNotAllowed):
        actions.book(referral, admin_user, START, START - timedelta(hours=1))
    with pytest.raises(ActionNotAllowed):
        actions.book(referral, admin_user, None)
    assert not OutboundMessage.objects.exists()
    referral.refresh_from_db()
    assert referral.status == "new"


def test_send_message_with_attachment(referral, admin_user):
    admin_user.first_name, admin_user.last_name = "Ana", "Roy"
    admin_user.save()
    pdf = FileUpload("../../etc/report.pdf", "application/pdf", b"%PDF-1.4 hello")
    message = actions.send_message(referral, admin_user, "Please see the attached.", pdf)
    assert message.event_code == codes.SEND_COMMUNICATION_FROM_PROVIDER
    read = read_message(message.bundle)
    mine = read.communications[0]
    assert mine.payload_texts == ("Please see the attached.",) and mine.attachment_titles == ("report.pdf",)
    assert mine.sender == "Ana Roy"
    thread = CommunicationMessage.objects.get(referral=referral)
    assert thread.direction == "from_us" and thread.dedupe_key == message.echo_key
    from harbour.referrals import dedupe

    assert dedupe.communication_key(mine.payload_texts, mine.sent) == thread.dedupe_key
    referral.refresh_from_db()
    assert referral.ocean_folder == "awaiting_response" and referral.status == "new"


def test_no_message_on_a_sent_copy_when_sent_copies_are_read_only(clinic, ocean_settings, admin_user, settings):
    """HARBOUR_OCEAN_MESSAGES_ON_SENT_COPIES off, the contract's stance (§3.2, §5.4): sent copies are
    read-only; the message is written in Ocean."""
    settings.HARBOUR_OCEAN_MESSAGES_ON_SENT_COPIES = False
    referral = make_referral(clinic, direction="sent", status="accepted", ocean_folder="pending_booking")
    for attachment in (None, FileUpload("a.pdf", "application/pdf", b"not a pdf")):
        with pytest.raises(ActionNotAllowed) as caught:
            actions.send_message(referral, admin_user, "Any news on the booking?", attachment,
                                 idempotency_key="k1")
        assert str(caught.value.message) == ("Messages about a referral your clinic sent are written in Ocean: "
                                             "Harbour's copy is read-only.")
    assert not OutboundMessage.objects.exists() and not CommunicationMessage.objects.exists()
    assert not Event.objects.filter(referral=referral).exists()
    referral.refresh_from_db()
    assert (referral.status, referral.ocean_folder) == ("accepted", "pending_booking")


def test_message_on_a_sent_copy_goes_from_the_requester(clinic, ocean_settings, admin_user):
    """Both sides message [F 34]: on a copy of a referral the clinic sent, to the receiver (issue #5;
    on by default, HARBOUR_OCEAN_MESSAGES_ON_SENT_COPIES)."""
    admin_user.first_name, admin_user.last_name = "Ana", "Roy"
    admin_user.save()
    # A sent copy carries the receiver's site number, not the clinic's (1234): still allowed.
    referral = make_referral(clinic, direction="sent", status="accepted", ocean_folder="pending_booking")
    referral.site_number = "7777"
    referral.save()
    message = actions.send_message(referral, admin_user, "Any news on the booking?")
    assert message.kind == "message" and message.event_code == codes.SEND_COMMUNICATION_FROM_REQUESTER
    read = read_message(message.bundle)
    [mine] = [c for c in read.communications if c.payload_texts == ("Any news on the booking?",)]
    assert mine.sender == "Ana Roy"
    thread = CommunicationMessage.objects.get(referral=referral)
    assert thread.direction == "from_us" and thread.sender_name == "Ana Roy"
    from harbour.referrals import dedupe

    assert thread.dedupe_key == message.echo_key == dedupe.communication_key(mine.payload_texts, mine.sent)
    event = Event.objects.get(referral=referral, outbound_id=message.pk)
    assert event.code == "message_received" and event.params["direction"] == "from_us" and event.actor == admin_user
    # Nothing else changes: the status and folder are the receiver's.
    referral.refresh_from_db()
    assert (referral.status, referral.ocean_folder) == ("accepted", "pending_booking")
    assert not StatusChange.objects.filter(referral=referral).exists()
    # A double-clicked submit with the same key stays one message; the same text again at once
    # with another key is refused, never a crash on the thread's unique key.
    again = actions.send_message(referral, admin_user, "Thanks", idempotency_key="k")
    assert actions.send_message(referral, admin_user, "Thanks", idempotency_key="k") == again
    from unittest import mock

    with mock.patch("harbour.ocean.actions.timezone.now", return_value=START):
        actions.send_message(referral, admin_user, "Ping", idempotency_key="first")
        with pytest.raises(ActionNotAllowed, match="just sent"):
            actions.send_message(referral, admin_user, "Ping", idempotency_key="second")
    assert CommunicationMessage.objects.filter(referral=referral).count() == 3


def test_message_signed_with_the_clinic_when_the_user_has_no_name(referral, admin_user):
    """A login name is not a person's name: without one, the message is signed with the clinic's."""
    assert not admin_user.get_full_name()
    message = actions.send_message(referral, admin_user, "Please call us.")
    [mine] = [c for c in read_message(message.bundle).communications if c.payload_texts == ("Please call us.",)]
    assert mine.sender == referral.clinic.name != admin_user.get_username()
    assert CommunicationMessage.objects.get(referral=referral).sender_name == referral.clinic.name


def test_reply_on_a_sent_copy_ends_awaiting_reply(clinic, ocean_settings, admin_user, settings):
    settings.HARBOUR_OCEAN_MESSAGES_ON_SENT_COPIES = True
    referral = make_referral(clinic, direction="sent", status="awaiting_reply", ocean_folder="awaiting_response")
    StatusChange.objects.create(referral=referral, from_status="accepted", to_status="awaiting_reply")
    message = actions.send_message(referral, admin_user, "Yes, the X-ray is attached to the referral.")
    referral.refresh_from_db()
    assert (referral.status, referral.ocean_folder) == ("accepted", "pending_booking")
    change = StatusChange.objects.filter(referral=referral).order_by("-id").first()
    assert (change.from_status, change.to_status, change.outbound_id) == ("awaiting_reply", "accepted", message.pk)


@pytest.mark.parametrize("status", ["cancelled", "forwarded", "externally_managed"])
def test_no_message_on_a_closed_sent_copy(clinic, ocean_settings, admin_user, status, settings):
    settings.HARBOUR_OCEAN_MESSAGES_ON_SENT_COPIES = True  # even when messages on sent copies are allowed
    referral = make_referral(clinic, direction="sent", status=status)
    with pytest.raises(ActionNotAllowed):
        actions.send_message(referral, admin_user, "hello")
    assert not OutboundMessage.objects.exists() and not CommunicationMessage.objects.exists()


def test_message_on_a_direction_unknown_referral_refused(clinic, ocean_settings, admin_user):
    referral = make_referral(clinic, direction="unknown")
    with pytest.raises(ActionNotAllowed):
        actions.send_message(referral, admin_user, "hello")
    assert not OutboundMessage.objects.exists()


@pytest.mark.parametrize("upload, problem", [
    (FileUpload("a.exe", "application/x-msdownload", b"MZ"), "type"),
    (FileUpload("a.pdf", "application/pdf", b"not a pdf"), "content"),
    (FileUpload("a.png", "image/png", b"\xff\xd8\xff jpeg"), "content"),
    (FileUpload("a.txt", "text/plain", b"\xff\xfe\x00bad"), "content"),
    (FileUpload("a.pdf", "application/pdf", b""), "empty"),
])
def test_bad_attachments_refused(referral, admin_user, upload, problem):
    with pytest.raises(ActionNotAllowed) as caught:
        actions.send_message(referral, admin_user, "x", upload)
    assert problem in str(caught.value.message)
    assert not OutboundMessage.objects.exists() and not CommunicationMessage.objects.exists()


def test_attachment_size_limit(referral, admin_user, settings):
    settings.HARBOUR_OCEAN_MESSAGE_MAX_BYTES = 1024
    with pytest.raises(ActionNotAllowed, match="too large"):
        actions.send_message(referral, admin_user, "x", FileUpload("a.txt", "text/plain", b"a" * 1025))
    actions.send_message(referral, admin_user, "x", FileUpload("a.txt", "text/plain", b"a" * 1024))


def test_empty_message_refused(referral, admin_user):
    with pytest.raises(ActionNotAllowed):
        actions.send_message(referral, admin_user, "  ")


def test_action_rolled_back_when_enqueue_fails(referral, admin_user, monkeypatch):
    from harbour.ocean import outbox

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(outbox, "enqueue", broken)
    with pytest.raises(RuntimeError):
        actions.accept(referral, admin_user)
    referral.refresh_from_db()
    assert referral.status == "new"
    assert not Event.objects.exists() and not StatusChange.objects.exists()


def test_refusals_are_translated(clinic, ocean_settings, admin_user):
    from django.utils import translation

    referral = make_referral(clinic, status="cancelled")
    with pytest.raises(ActionNotAllowed) as caught:
        actions.accept(referral, admin_user)
    with translation.override("fr"):
        assert str(caught.value.message) == "L'expéditeur a annulé cette demande de consultation; elle ne peut plus être modifiée."
    with translation.override("en"):
        assert str(caught.value.message) == "The sender cancelled this referral; it can no longer be changed."


def test_two_files_without_text_in_the_same_second_are_two_messages(referral, admin_user, monkeypatch):
    from django.utils import timezone

    from harbour.referrals import dedupe

    monkeypatch.setattr(timezone, "now", lambda: START)  # the clock: both sends in one second
    first = actions.send_message(referral, admin_user, "", FileUpload("labs-may.pdf", "application/pdf", b"%PDF-1.4 a"))
    second = actions.send_message(referral, admin_user, "", FileUpload("labs-june.pdf", "application/pdf", b"%PDF-1.4 b"))
    assert first.pk != second.pk
    with pytest.raises(ActionNotAllowed, match="just sent"):  # the same file again: a double submit
        actions.send_message(referral, admin_user, "", FileUpload("labs-june.pdf", "application/pdf", b"%PDF-1.4 b"))
    # Ocean's echo of each rebuilds its key: nothing is added twice.
    for sent in (first, second):
        echoed = read_message(sent.bundle).communications[0]
        key = dedupe.communication_key(echoed.payload_texts, echoed.sent, echoed.attachment_titles)
        assert CommunicationMessage.objects.filter(referral=referral, dedupe_key=key).count() == 1
