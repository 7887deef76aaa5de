"""Ocean refuses one of Harbour's updates for good (REJECTED): the action is undone when nothing
happened since, flagged otherwise; a refusal is never offered "retry now" (ocean.refusals)."""
import html
import random
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from harbour.ocean import actions, outbox
from harbour.ocean.models import OutboundMessage
from harbour.referrals.models import Appointment, Event, Referral
from tests.ocean.fake_ocean import Reply, outcome

NOT_RECEIVER = "You are not the current receiver of this referral"


def deliver(http):
    return outbox.deliver_outbox(now=timezone.now(), rng=random.Random(1), http=http)


def refuse_next(fake_ocean, status=403, text=NOT_RECEIVER):
    fake_ocean.queue("process", Reply(status, outcome(text)))


def page(client, referral, lang="en"):
    response = client.get(reverse("referrals:detail", args=[referral.pk]), HTTP_ACCEPT_LANGUAGE=lang)
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def when(days=3, hour=10):
    start = timezone.localtime() + timedelta(days=days)
    return start.replace(hour=hour, minute=0, second=0, microsecond=0)


def state(referral):
    referral.refresh_from_db()
    return referral.status, referral.ocean_folder, referral.ocean_task_status


def current(referral):
    return referral.appointments.filter(superseded=False).order_by("-id").first()


def test_refused_decline_is_undone(referral, admin_user, admin_client, fake_ocean, http):
    before = state(referral)
    refuse_next(fake_ocean)
    message = actions.decline(referral, admin_user, "Not our catchment area")
    assert state(referral) == ("declined", "declined", "rejected")
    deliver(http)
    message.refresh_from_db()
    assert (message.state, message.refusal) == ("rejected", "undone")
    assert state(referral) == before == ("new", "new", "")
    back = referral.status_changes.order_by("-id").first()
    assert (back.from_status, back.to_status, back.outbound_id, back.actor) == ("declined", "new", None, None)
    # The refused entry's echo never comes: its key no longer stands for a fact Ocean has.
    refused = Event.objects.get(referral=referral, outbound_id=message.pk)
    assert refused.dedupe_key == ""
    entry = Event.objects.get(referral=referral, code="ocean_refused")
    assert entry.params["undone"] and entry.params["to"] == "new" and entry.params["error"] == NOT_RECEIVER
    assert outbox.referral_sync_state(referral).synced
    assert not Referral.objects.filter(pk__in=outbox.annotate_unsynced(Referral.objects.all())
                                       .filter(ocean_unsynced=True).values("pk")).exists()
    text = page(admin_client, referral)
    assert "Ocean refused this update (Decline): Harbour undid it, the referral is back to New." in text
    assert f"Ocean's answer: “{NOT_RECEIVER}”" in text
    assert 'id="not-synced"' not in text and "refused by Ocean, undone here" in text
    assert reverse("referrals:retry_outbound", args=[referral.pk, message.pk]) not in text
    assert "accept" in actions_offered(text) and "decline" in actions_offered(text)  # it can be redone
    french = page(admin_client, referral, "fr")
    assert "Ocean a refusé cette mise à jour (Refus)\u00a0: Harbour l'a annulée, la consultation est revenue à «\u00a0Nouvelle\u00a0»" in french


def actions_offered(text):
    return {name for name in ("accept", "decline", "book", "rebook", "cancel_appointment", "complete")
            if f'id="form-{name}"' in text}


def test_refused_accept_from_declined_goes_back_to_declined(referral, admin_user, fake_ocean, http):
    actions.decline(referral, admin_user, "Full")
    deliver(http)
    refuse_next(fake_ocean, 422, "Invalid Task transition")
    actions.accept(referral, admin_user)
    deliver(http)
    assert state(referral) == ("declined", "declined", "rejected")


def test_refused_booking_is_undone(referral, admin_user, admin_client, fake_ocean, http):
    actions.accept(referral, admin_user)
    deliver(http)
    refuse_next(fake_ocean)
    message = actions.book(referral, admin_user, when(), duration=30, location="Room 2")
    assert state(referral)[0] == "booked"
    deliver(http)
    assert state(referral) == ("accepted", "pending_booking", "accepted")
    assert current(referral) is None
    [refused] = Appointment.objects.filter(referral=referral)
    assert refused.outbound_id == message.pk and refused.superseded
    text = page(admin_client, referral)
    assert "Booked" not in text.split('id="referral-status"')[1].split("</p>")[0]
    assert "refused by Ocean" in text.split('id="h-appointments"')[1].split("</section>")[0]
    assert "book" in actions_offered(text)


def test_refused_rebooking_restores_the_appointment(referral, admin_user, admin_client, fake_ocean, http):
    first = when()
    actions.book(referral, admin_user, first, duration=30, location="Room 2", confirmed=True)
    deliver(http)
    before = state(referral)
    refuse_next(fake_ocean, 422, "Appointment is in the past")
    actions.rebook(referral, admin_user, when(days=5), duration=45)
    deliver(http)
    assert state(referral) == before == ("booked", "booking_confirmed", "")
    restored = current(referral)
    assert (restored.start, restored.minutes, restored.location, restored.confirmed, restored.cancelled) == (
        first, 30, "Room 2", True, False)
    text = page(admin_client, referral)
    assert "rebook" in actions_offered(text)


def test_refused_appointment_cancellation_restores_the_booking(referral, admin_user, fake_ocean, http):
    start = when()
    actions.book(referral, admin_user, start, duration=30)
    deliver(http)
    refuse_next(fake_ocean)
    actions.cancel_appointment(referral, admin_user, "Doctor away")
    assert state(referral)[0] == "accepted"
    deliver(http)
    assert state(referral) == ("booked", "booking_unconfirmed", "")
    restored = current(referral)
    assert restored.start == start and not restored.cancelled


def test_a_refusal_after_later_changes_is_kept_and_flagged(referral, admin_user, admin_client, fake_ocean, http):
    refuse_next(fake_ocean)
    accepted = actions.accept(referral, admin_user)
    actions.book(referral, admin_user, when(), duration=30)  # queued after it: something happened since
    deliver(http)
    deliver(http)
    accepted.refresh_from_db()
    assert (accepted.state, accepted.refusal) == ("rejected", "kept")
    assert state(referral)[0] == "booked"  # nothing undone
    assert current(referral) is not None
    entry = Event.objects.get(referral=referral, code="ocean_refused")
    assert entry.params["undone"] is False
    assert not outbox.referral_sync_state(referral).synced
    text = page(admin_client, referral)
    assert 'id="not-synced"' in text and "the referral changed since, so Harbour kept it as it is" in text
    assert "Ocean refused this update (Accept), but the referral changed since" in text
    assert reverse("referrals:retry_outbound", args=[referral.pk, accepted.pk]) not in text


def test_a_change_from_ocean_since_keeps_the_action(referral, admin_user, fake_ocean, http):
    from harbour.referrals.models import StatusChange

    refuse_next(fake_ocean)
    message = actions.accept(referral, admin_user)
    # Ocean (or a colleague) changed the referral before the refusal came back.
    StatusChange.objects.create(referral=referral, from_status="accepted", to_status="accepted")
    deliver(http)
    message.refresh_from_db()
    assert message.refusal == "kept" and state(referral)[0] == "accepted"


def test_a_transient_failure_keeps_the_local_state_and_retry(referral, admin_user, fake_ocean, http, settings):
    settings.HARBOUR_OUTBOX_MAX_ATTEMPTS = 1
    fake_ocean.queue("process", Reply(500, outcome("boom")))
    message = actions.accept(referral, admin_user)
    deliver(http)
    message.refresh_from_db()
    assert message.state == "dead" and message.refusal == "" and message.can_retry_now
    assert state(referral)[0] == "accepted"
    assert not Event.objects.filter(referral=referral, code="ocean_refused").exists()


def test_a_refused_message_keeps_the_text_and_puts_the_folder_back(referral, admin_user, fake_ocean, http):
    before = state(referral)
    refuse_next(fake_ocean, 400, "Communication not allowed")
    message = actions.send_message(referral, admin_user, "Please send the imaging report")
    assert state(referral)[1] == "awaiting_response"
    deliver(http)
    message.refresh_from_db()
    assert message.refusal == "undone" and state(referral) == before
    assert referral.messages.filter(text="Please send the imaging report").exists()


@pytest.mark.parametrize("kind", ["accept", "decline"])
def test_settling_twice_changes_nothing(referral, admin_user, fake_ocean, http, kind):
    from harbour.ocean.refusals import settle_refusal

    refuse_next(fake_ocean)
    message = (actions.accept(referral, admin_user) if kind == "accept"
               else actions.decline(referral, admin_user, "No"))
    deliver(http)
    message.refresh_from_db()
    assert settle_refusal(message) == "undone"
    assert Event.objects.filter(referral=referral, code="ocean_refused").count() == 1
    assert OutboundMessage.objects.get(pk=message.pk).refusal == "undone"


def test_a_kept_refusal_marked_as_handled_no_longer_leaves_the_referral_not_synced(
        referral, admin_user, staff_client, fake_ocean, http):
    from harbour.audit.models import AuditEntry

    refuse_next(fake_ocean)
    accepted = actions.accept(referral, admin_user)
    actions.book(referral, admin_user, when(), duration=30)
    deliver(http)
    deliver(http)
    accepted.refresh_from_db()
    assert accepted.refusal == "kept"
    url = reverse("referrals:refusal_handled", args=[referral.pk, accepted.pk])
    text = page(staff_client, referral, "fr")
    assert url in text and "Marquer comme réglé" in text
    listed = staff_client.get(reverse("referrals:list") + "?folder=not_synced").content.decode()
    assert f"/referrals/{referral.pk}/" in listed

    response = staff_client.post(url)
    assert response.status_code == 302
    accepted.refresh_from_db()
    assert (accepted.state, accepted.refusal) == ("rejected", "handled")
    assert outbox.referral_sync_state(referral).synced
    assert not accepted.is_unsynced
    assert not OutboundMessage.objects.filter(OutboundMessage.unsynced_q(), referral=referral).exists()
    text = page(staff_client, referral, "fr")
    assert 'id="not-synced"' not in text and url not in text
    listed = staff_client.get(reverse("referrals:list") + "?folder=not_synced").content.decode()
    assert f"/referrals/{referral.pk}/" not in listed
    entry = AuditEntry.objects.get(action="ocean.outbound.refusal_handled")
    assert entry.target == f"outbound:{accepted.pk}" and entry.actor.username == "staff-soleil"
    # Twice: nothing more; nothing was sent to Ocean.
    assert staff_client.post(url).status_code == 302
    assert AuditEntry.objects.filter(action="ocean.outbound.refusal_handled").count() == 1
    assert state(referral)[0] == "booked"


def test_only_a_refusal_harbour_kept_can_be_marked_as_handled(referral, admin_user, staff_client, fake_ocean, http):
    refuse_next(fake_ocean)
    declined = actions.decline(referral, admin_user, "Not our catchment area")
    deliver(http)
    declined.refresh_from_db()
    assert declined.refusal == "undone" and not declined.can_mark_handled
    pending = actions.accept(referral, admin_user)
    for message in (declined, pending):
        staff_client.post(reverse("referrals:refusal_handled", args=[referral.pk, message.pk]))
        message.refresh_from_db()
    assert (declined.refusal, pending.state, pending.refusal) == ("undone", "pending", "")
