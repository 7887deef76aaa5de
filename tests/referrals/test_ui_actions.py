"""Actions on the referral page: each form through the view into ocean.actions, bad input, state rules."""
import html
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from harbour.referrals.models import Appointment, CommunicationMessage, Event, Referral
from tests.conftest import client_for
from tests.ocean.conftest import configure, make_referral
from tests.referrals.action_forms import act, action_url, detail, flashes, outbound

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def ocean(clinic):
    return configure(clinic, "https://ocean.example.org")


@pytest.fixture
def referral(clinic, ocean):
    return make_referral(clinic)


def future(days=3, hour=10):
    day = (timezone.localtime() + timedelta(days=days)).date()
    return {"date": day.isoformat(), "time": f"{hour:02d}:30", "duration": "45", "location": "Room 2",
            "confirmed": "on", "instructions": "Bring your health card."}


# --- Each action, through the view -------------------------------------------------------------


def test_accept_enqueues_and_records(staff_client, staff_user, referral):
    assert 'id="form-accept"' in detail(staff_client, referral)
    response = act(staff_client, referral, "accept", {"idempotency_key": "k1"}, HTTP_ACCEPT_LANGUAGE="en", follow=True)
    assert response.redirect_chain[-1][0] == reverse("referrals:detail", args=[referral.pk])
    assert "Referral accepted. Ocean will be told." in flashes(response)
    referral.refresh_from_db()
    assert (referral.status, referral.ocean_folder) == ("accepted", "pending_booking")
    [message] = outbound(referral)
    assert message.kind == "accept" and message.created_by == staff_user and message.state == "pending"
    page = response.content.decode()
    assert 'id="not-synced"' in page and 'data-sync="pending"' in page
    assert 'id="form-accept"' not in page and 'id="form-book"' in page and 'id="form-complete"' in page


def test_french_success_message(staff_client, referral):
    response = act(staff_client, referral, "accept", {}, HTTP_ACCEPT_LANGUAGE="fr", follow=True)
    assert "Consultation acceptée. Ocean en sera informé." in flashes(response)


def test_decline_with_reason(staff_client, referral):
    act(staff_client, referral, "decline", {"reason": "  Outside our catchment  "})
    referral.refresh_from_db()
    assert referral.status == "declined"
    [message] = outbound(referral)
    assert message.kind == "decline"
    assert Event.objects.get(outbound_id=message.pk).params["reason"] == "Outside our catchment"


@pytest.mark.parametrize("reason", ["", "   "])
@pytest.mark.parametrize("lang, text", [("en", "Give the reason for declining."),
                                        ("fr", "Indiquez la raison du refus.")])
def test_decline_without_reason_is_refused(staff_client, referral, reason, lang, text):
    response = act(staff_client, referral, "decline", {"reason": reason}, HTTP_ACCEPT_LANGUAGE=lang)
    assert response.status_code == 400 and text in response.content.decode()
    assert outbound(referral) == [] and Referral.objects.get(pk=referral.pk).status == "new"


def test_book_rebook_cancel_and_complete(staff_client, referral):
    assert act(staff_client, referral, "book", future(3)).status_code == 302
    referral.refresh_from_db()
    assert (referral.status, referral.ocean_folder) == ("booked", "booking_confirmed")
    booked = Appointment.objects.get(referral=referral, superseded=False)
    assert booked.minutes == 45 and booked.confirmed and booked.patient_instruction == "Bring your health card."
    assert timezone.localtime(booked.start).hour == 10

    page = detail(staff_client, referral)
    assert 'id="form-book"' not in page and 'id="form-rebook"' in page and 'id="form-cancel_appointment"' in page
    assert 'id="form-accept"' not in page and 'id="form-decline"' not in page

    rebooked = {**future(5, 14), "confirmed": ""}
    assert act(staff_client, referral, "rebook", rebooked).status_code == 302
    referral.refresh_from_db()
    assert referral.ocean_folder == "booking_unconfirmed"
    assert timezone.localtime(Appointment.objects.get(referral=referral, superseded=False).start).hour == 14

    assert act(staff_client, referral, "cancel_appointment", {"reason": "Doctor away"}).status_code == 302
    referral.refresh_from_db()
    assert (referral.status, referral.ocean_folder) == ("accepted", "pending_booking")

    assert act(staff_client, referral, "complete", {}).status_code == 302
    referral.refresh_from_db()
    assert (referral.status, referral.ocean_folder) == ("completed", "completed")
    assert [m.kind for m in outbound(referral)] == ["book", "rebook", "cancel_appointment", "complete"]
    assert 'id="form-message"' in detail(staff_client, referral)
    assert 'id="form-complete"' not in detail(staff_client, referral)


def test_cancel_appointment_requires_a_reason(staff_client, referral):
    act(staff_client, referral, "book", future())
    response = act(staff_client, referral, "cancel_appointment", {"reason": " "}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400 and "Give the reason for cancelling the appointment." in response.content.decode()
    assert [m.kind for m in outbound(referral)] == ["book"]


@pytest.mark.parametrize("change, field_error", [
    ({"date": "2025-02-30"}, "Enter a valid date."),
    ({"date": "not a date"}, "Enter a valid date."),
    ({"time": "25:99"}, "Enter a valid time."),
    ({"date": ""}, "Give the date of the appointment."),
    ({"duration": "0"}, "An appointment lasts at least 5 minutes."),
    ({"duration": "9999"}, "An appointment lasts at most 12 hours."),
    ({"duration": "abc"}, "Enter a whole number."),
])
def test_booking_bad_input(staff_client, referral, change, field_error):
    response = act(staff_client, referral, "book", {**future(), **change}, HTTP_ACCEPT_LANGUAGE="en")
    page = response.content.decode()
    assert response.status_code == 400 and field_error in page
    assert "The appointment was not booked." in page and '<details open><summary>Book an appointment' in page
    assert outbound(referral) == [] and Referral.objects.get(pk=referral.pk).status == "new"


@pytest.mark.parametrize("lang, text", [("en", "The appointment must be in the future."),
                                        ("fr", "Le rendez-vous doit être dans le futur.")])
def test_booking_in_the_past_is_refused(staff_client, referral, lang, text):
    past = timezone.localtime() - timedelta(hours=1)
    data = {**future(), "date": past.date().isoformat(), "time": past.strftime("%H:%M")}
    response = act(staff_client, referral, "book", data, HTTP_ACCEPT_LANGUAGE=lang)
    assert response.status_code == 400 and text in response.content.decode()
    assert outbound(referral) == []


def test_message_with_attachment(staff_client, referral):
    upload = SimpleUploadedFile("results.pdf", PDF, content_type="application/pdf")
    response = act(staff_client, referral, "message", {"text": "Please send the MRI.", "attachment": upload},
                                 HTTP_ACCEPT_LANGUAGE="en", follow=True)
    assert "Message sent to Ocean for the referrer." in flashes(response)
    [message] = outbound(referral)
    assert message.kind == "message"
    sent = CommunicationMessage.objects.get(referral=referral, direction="from_us")
    assert sent.text == "Please send the MRI." and sent.attachment_titles == ["results.pdf"]
    communication = next(e["resource"] for e in message.bundle["entry"] if e["resource"]["resourceType"] == "Communication")
    assert any("contentAttachment" in p for p in communication["payload"])


@pytest.mark.parametrize("lang, summary, done, timeline", [
    ("en", "Send a message to the receiver", "Message sent to Ocean for the receiver.", "Message sent by"),
    ("fr", "Envoyer un message au destinataire", "Message envoyé à Ocean pour le destinataire.", "Message envoyé par"),
])
def test_message_the_receiver_of_a_sent_referral(staff_client, staff_user, clinic, ocean, lang, summary, done, timeline):
    # Issue #5, on by default (HARBOUR_OCEAN_MESSAGES_ON_SENT_COPIES).
    referral = make_referral(clinic, direction="sent", status="accepted", ocean_folder="pending_booking")
    page = detail(staff_client, referral, lang)
    assert summary in page and 'id="form-message"' in page
    assert 'id="form-accept"' not in page and 'id="form-complete"' not in page
    response = act(staff_client, referral, "message", {"text": "Any news on the booking?"},
                                 HTTP_ACCEPT_LANGUAGE=lang, follow=True)
    assert done in flashes(response)
    [message] = outbound(referral)
    assert message.event_code == "send-communication-from-requester" and message.created_by == staff_user
    page = html.unescape(response.content.decode())
    assert "Any news on the booking?" in page and timeline in page
    referral.refresh_from_db()
    assert (referral.status, referral.ocean_folder) == ("accepted", "pending_booking")


SENT_COPY_EN = "Messages about a referral your clinic sent are written in Ocean: Harbour's copy is read-only."
SENT_COPY_FR = ("Les messages au sujet d'une demande envoyée par votre clinique s'écrivent dans Ocean\u00a0: "
                "la copie dans Harbour est en lecture seule.")


@pytest.mark.parametrize("lang, sentence, view", [("en", SENT_COPY_EN, "View in Ocean"),
                                                  ("fr", SENT_COPY_FR, "Voir dans Ocean")])
def test_no_message_form_on_a_read_only_sent_copy(staff_client, clinic, ocean, settings, lang, sentence, view):
    """HARBOUR_OCEAN_MESSAGES_ON_SENT_COPIES off, the contract's stance (§3.2, §5.4): sent copies are
    read-only; messages are written in Ocean."""
    settings.HARBOUR_OCEAN_MESSAGES_ON_SENT_COPIES = False
    referral = make_referral(clinic, direction="sent", status="accepted", ocean_folder="pending_booking")
    page = html.unescape(detail(staff_client, referral, lang))
    assert 'id="form-message"' not in page and reverse("referrals:action", args=[referral.pk, "message"]) not in page
    actions_panel = page.split('id="actions"', 1)[1].split("</section>", 1)[0]
    assert sentence in actions_panel
    link = f"https://ocean.example.org/ocean/portal.html?siteNum=1234#/referrals/{referral.ocean_ref}/edit"
    assert link in actions_panel and view in actions_panel
    assert "You can send the receiver a message." not in page


def test_message_posted_anyway_on_a_read_only_sent_copy_is_refused(staff_client, clinic, ocean, settings):
    """The server refuses it too (a page opened before the setting changed, a crafted post)."""
    settings.HARBOUR_OCEAN_MESSAGES_ON_SENT_COPIES = False
    referral = make_referral(clinic, direction="sent", status="accepted", ocean_folder="pending_booking")
    response = act(staff_client, referral, "message", {"text": "Any news on the booking?", "idempotency_key": "k1"},
                   HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 302 and response["Location"] == reverse("referrals:detail", args=[referral.pk])
    response = staff_client.get(response["Location"], HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200 and SENT_COPY_EN in flashes(response)
    assert SENT_COPY_EN in html.unescape(response.content.decode())
    assert outbound(referral) == [] and not CommunicationMessage.objects.filter(referral=referral).exists()
    assert not Event.objects.filter(referral=referral).exists()
    referral.refresh_from_db()
    assert (referral.status, referral.ocean_folder) == ("accepted", "pending_booking")


def test_other_actions_on_a_sent_copy_stay_refused(staff_client, clinic, ocean):
    referral = make_referral(clinic, direction="sent", status="accepted")
    for name in ("accept", "decline", "book", "complete"):
        response = act(staff_client, referral, name, {"reason": "x", **future()},
                                     HTTP_ACCEPT_LANGUAGE="en", follow=True)
        assert any("copies of referrals you sent are read-only" in m for m in flashes(response)), name
    assert outbound(referral) == []


def test_message_needs_text_or_file(staff_client, referral):
    response = act(staff_client, referral, "message", {"text": "  "}, HTTP_ACCEPT_LANGUAGE="fr")
    assert response.status_code == 400 and "Écrivez un message ou joignez un fichier." in response.content.decode()
    assert outbound(referral) == []


def test_message_attachment_over_the_limit(staff_client, referral, settings):
    settings.HARBOUR_OCEAN_MESSAGE_MAX_BYTES = 1024 * 1024
    upload = SimpleUploadedFile("big.pdf", PDF + b"0" * (1024 * 1024), content_type="application/pdf")
    response = act(staff_client, referral, "message", {"text": "x", "attachment": upload},
                                 HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400 and "The attached file is too large (at most 1 MB)." in response.content.decode()
    assert outbound(referral) == []


@pytest.mark.parametrize("name, content_type, data, text", [
    ("page.html", "text/html", b"<html></html>", "This type of file cannot be sent to Ocean."),
    ("fake.pdf", "application/pdf", b"MZ not a pdf", "The file's content does not match its type."),
])
def test_message_attachment_of_a_type_not_allowed(staff_client, referral, name, content_type, data, text):
    upload = SimpleUploadedFile(name, data, content_type=content_type)
    response = act(staff_client, referral, "message", {"text": "x", "attachment": upload},
                                 HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 400 and text in html.unescape(response.content.decode())
    assert outbound(referral) == []


def test_attachment_errors_in_french(staff_client, referral):
    upload = SimpleUploadedFile("page.html", b"<html></html>", content_type="text/html")
    response = act(staff_client, referral, "message", {"text": "x", "attachment": upload},
                                 HTTP_ACCEPT_LANGUAGE="fr")
    assert response.status_code == 400
    assert "Ce type de fichier ne peut pas être envoyé à Ocean." in response.content.decode()


# --- Double submits, refusals, isolation, sessions ---------------------------------------------


def test_double_clicked_submit_has_one_effect(staff_client, referral):
    page = detail(staff_client, referral)
    key = page.split('id="form-book"', 1)[1].split('name="idempotency_key" value="', 1)[1].split('"', 1)[0]
    assert len(key) == 32
    first = act(staff_client, referral, "book", {**future(), "idempotency_key": key})
    second = act(staff_client, referral, "book", {**future(), "idempotency_key": key})
    assert first.status_code == second.status_code == 302
    assert len(outbound(referral)) == 1
    assert Appointment.objects.filter(referral=referral).count() == 1
    assert Event.objects.filter(referral=referral, code="appointment_booked").count() == 1


def test_double_accept_without_key_is_one_message_and_a_translated_refusal(staff_client, referral):
    act(staff_client, referral, "accept", {})
    response = act(staff_client, referral, "accept", {}, HTTP_ACCEPT_LANGUAGE="en", follow=True)
    assert "Only a new or declined referral can be accepted." in flashes(response)
    assert len(outbound(referral)) == 1


def test_each_form_gets_its_own_key(staff_client, referral):
    page = detail(staff_client, referral)
    keys = [chunk.split('"', 1)[0] for chunk in page.split('name="idempotency_key" value="')[1:]]
    assert len(keys) == len(set(keys)) >= 4


@pytest.mark.parametrize("lang, text", [
    ("en", "The sender cancelled this referral; it can no longer be changed."),
    ("fr", "L'expéditeur a annulé cette demande de consultation; elle ne peut plus être modifiée."),
])
def test_action_on_a_referral_cancelled_meanwhile(staff_client, referral, lang, text):
    page = detail(staff_client, referral)
    assert 'id="form-accept"' in page
    Referral.objects.filter(pk=referral.pk).update(status="cancelled", ocean_folder="cancelled")  # Ocean's revoke
    response = act(staff_client, referral, "accept", {}, HTTP_ACCEPT_LANGUAGE=lang, follow=True)
    assert text in flashes(response)
    assert outbound(referral) == [] and Referral.objects.get(pk=referral.pk).status == "cancelled"
    assert 'id="form-accept"' not in response.content.decode()


@pytest.mark.parametrize("fields, forms_shown", [
    ({"status": "cancelled"}, set()),
    ({"status": "forwarded"}, set()),
    ({"status": "externally_managed"}, set()),
    ({"direction": "sent"}, {"message"}),  # only a message (HARBOUR_OCEAN_MESSAGES_ON_SENT_COPIES, below)
    ({"direction": "sent", "status": "awaiting_reply"}, {"message"}),
    ({"direction": "sent", "status": "cancelled"}, set()),
    ({"direction": "unknown"}, set()),
    ({"status": "declined"}, {"accept", "message"}),
    ({"status": "accepted"}, {"decline", "book", "complete", "message"}),
    ({"status": "completed"}, {"message"}),
    ({"status": "new"}, {"accept", "decline", "book", "message"}),
])
def test_only_allowed_actions_are_offered(staff_client, clinic, ocean, fields, forms_shown):
    referral = make_referral(clinic, **fields)
    page = detail(staff_client, referral)
    shown = {name for name in ("accept", "decline", "book", "rebook", "cancel_appointment", "complete", "message")
             if f'id="form-{name}"' in page}
    assert shown == forms_shown
    assert "cancel the referral" not in page.lower()  # the receiver never cancels (§5.4)


@pytest.mark.parametrize("status, forms_shown", [
    ("new", {"message"}), ("accepted", {"message"}), ("awaiting_reply", {"message"}),  # both sides message [F 34]
    ("cancelled", set()), ("forwarded", set()), ("externally_managed", set()),
])
def test_sent_copy_offers_only_a_message_when_allowed(staff_client, clinic, ocean, settings, status, forms_shown):
    settings.HARBOUR_OCEAN_MESSAGES_ON_SENT_COPIES = True
    referral = make_referral(clinic, direction="sent", status=status)
    page = detail(staff_client, referral)
    shown = {name for name in ("accept", "decline", "book", "rebook", "cancel_appointment", "complete", "message")
             if f'id="form-{name}"' in page}
    assert shown == forms_shown
    assert 'id="messages-in-ocean"' not in page


def test_no_actions_for_a_referral_of_another_site(staff_client, clinic, ocean):
    referral = make_referral(clinic)
    Referral.objects.filter(pk=referral.pk).update(site_number="9999")
    page = detail(staff_client, referral)
    assert 'id="form-accept"' not in page and 'id="form-message"' not in page


def test_refused_action_on_a_sent_copy_posted_anyway(staff_client, clinic, ocean):
    referral = make_referral(clinic, direction="sent")
    response = act(staff_client, referral, "accept", {}, HTTP_ACCEPT_LANGUAGE="en", follow=True)
    assert any("copies of referrals you sent are read-only" in m for m in flashes(response))
    assert outbound(referral) == []


def test_another_clinics_referral_is_404_for_every_action(referral, other_admin):
    other = client_for(other_admin, "lune.example.org")
    for name in ("accept", "decline", "book", "rebook", "cancel_appointment", "complete", "message"):
        assert other.post(action_url(referral, name), {"reason": "x", **future()}).status_code == 404
    assert other.get(reverse("referrals:detail", args=[referral.pk])).status_code == 404
    assert outbound(referral) == []


def test_unknown_action_and_get_are_refused(staff_client, referral):
    assert act(staff_client, referral, "cancel", {}).status_code == 404  # the receiver never cancels
    assert staff_client.get(action_url(referral, "accept")).status_code == 405
    assert outbound(referral) == []


def test_expired_session_goes_to_login_and_does_nothing(staff_user, referral):
    client = client_for(staff_user, "soleil.example.org")
    assert 'id="form-accept"' in detail(client, referral)
    client.session.flush() if hasattr(client.session, "flush") else None
    client.logout()  # what an expired session amounts to: no authenticated user
    response = client.post(action_url(referral, "accept"), {})
    assert response.status_code == 302 and reverse("login") in response["Location"]
    assert outbound(referral) == [] and Referral.objects.get(pk=referral.pk).status == "new"


def test_expired_session_by_age(staff_user, referral, settings):
    """A session past its age: Django drops it and the post goes to the sign-in page."""
    from django.contrib.sessions.models import Session

    client = client_for(staff_user, "soleil.example.org")
    Session.objects.all().update(expire_date=timezone.now() - timedelta(seconds=1))
    response = client.post(action_url(referral, "decline"), {"reason": "No"})
    assert response.status_code == 302 and reverse("login") in response["Location"]
    assert outbound(referral) == []


def test_missing_csrf_token_is_refused(staff_user, referral):
    client = Client(HTTP_HOST="soleil.example.org", enforce_csrf_checks=True)
    client.force_login(staff_user)
    assert client.post(action_url(referral, "accept"), {}).status_code == 403
    assert outbound(referral) == []
