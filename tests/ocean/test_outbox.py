"""Outbox delivery against the fake Ocean: outcomes, backoff, dead letters, retry now, ordering."""
import random
from datetime import timedelta

import pytest
from django.utils import timezone

from harbour.ocean import actions, outbox
from harbour.ocean.models import OutboundMessage
from harbour.referrals.models import Referral
from tests.ocean.conftest import configure, make_referral
from tests.ocean.test_client import closed_port_url
from tests.ocean.fake_ocean import Reply, outcome


@pytest.fixture(autouse=True)
def _fast_settings(settings):
    settings.HARBOUR_OUTBOX_BACKOFF_BASE = 30
    settings.HARBOUR_OUTBOX_BACKOFF_CAP = 3600
    settings.HARBOUR_OUTBOX_MAX_ATTEMPTS = 10


def deliver(http, now=None, seed=1):
    return outbox.deliver_outbox(now=now or timezone.now(), rng=random.Random(seed), http=http)


def test_delivered_on_2xx(referral, admin_user, fake_ocean, http):
    message = actions.accept(referral, admin_user)
    assert outbox.referral_sync_state(referral).synced is False
    assert deliver(http) == 1
    message.refresh_from_db()
    assert (message.state, message.attempts, message.last_status) == ("delivered", 1, 200)
    assert message.delivered_at is not None and message.next_attempt_at is None
    [post] = fake_ocean.calls("process")
    assert post.json == message.bundle  # the bundle built at enqueue time, as it was
    assert outbox.referral_sync_state(referral).synced
    assert deliver(http) == 0  # nothing left


def test_backoff_schedule_is_exponential_capped_and_jittered(settings):
    rng = random.Random(7)
    expected_rng = random.Random(7)
    delays = [outbox.backoff_delay(n, rng).total_seconds() for n in range(1, 11)]
    bases = [min(3600, 30 * 2 ** (n - 1)) for n in range(1, 11)]
    assert delays == pytest.approx([b * (0.5 + expected_rng.random() / 2) for b in bases], abs=1e-5)
    assert all(b / 2 <= d < b for d, b in zip(delays, bases))
    assert bases[-1] == 3600 and bases[:3] == [30, 60, 120]
    settings.HARBOUR_OUTBOX_BACKOFF_BASE = 10
    assert outbox.backoff_delay(1, random.Random(0)).total_seconds() < 10


def test_4xx_rejected_with_operation_outcome(referral, admin_user, fake_ocean, http):
    fake_ocean.queue("process", Reply(422, outcome("Referral was forwarded; you are not the current receiver")))
    message = actions.accept(referral, admin_user)
    deliver(http)
    message.refresh_from_db()
    assert (message.state, message.last_status) == ("rejected", 422)
    assert message.last_error == "Referral was forwarded; you are not the current receiver"
    assert message.next_attempt_at is None
    assert deliver(http, now=timezone.now() + timedelta(days=1)) == 0  # never retried by itself
    # Nothing happened since: the acceptance is undone here (tests/ocean/test_refusals.py), so the
    # referral is as Ocean has it; the clinic's summary still counts the refusal.
    assert message.refusal == "undone"
    assert outbox.referral_sync_state(referral).synced
    assert outbox.outbox_summary(referral.clinic).rejected == 1


@pytest.mark.parametrize("reply", [Reply(500, outcome("boom")), Reply(503), Reply(429), Reply(408)])
def test_retryable_answers_are_retried_with_backoff(referral, admin_user, fake_ocean, http, reply):
    fake_ocean.queue("process", reply)
    message = actions.accept(referral, admin_user)
    now = timezone.now()
    deliver(http, now=now, seed=3)
    message.refresh_from_db()
    assert message.state == "failed" and message.last_status == reply.status
    assert message.next_attempt_at == now + outbox.backoff_delay(1, random.Random(3))
    assert deliver(http, now=now + timedelta(seconds=10)) == 0  # not yet due
    assert deliver(http, now=message.next_attempt_at) == 1
    message.refresh_from_db()
    assert (message.state, message.attempts) == ("delivered", 2)


def test_timeout_is_retried(referral, admin_user, fake_ocean):
    import httpx

    fake_ocean.queue("process", Reply(200, delay=0.5))
    message = actions.accept(referral, admin_user)
    with httpx.Client(timeout=httpx.Timeout(0.2)) as quick:
        deliver(quick)
    message.refresh_from_db()
    assert message.state == "failed" and message.last_status is None and "Timeout" in message.last_error


def test_connection_refused_is_retried(clinic, admin_user, http):
    configure(clinic, closed_port_url())
    referral = make_referral(clinic)
    message = actions.accept(referral, admin_user)
    deliver(http)
    message.refresh_from_db()
    assert message.state == "failed" and "could not be reached" in message.last_error


def test_dead_after_max_attempts_then_retry_now(referral, admin_user, fake_ocean, http, settings):
    settings.HARBOUR_OUTBOX_MAX_ATTEMPTS = 3
    fake_ocean.queue("process", *[Reply(500) for _ in range(3)])
    message = actions.accept(referral, admin_user)
    now = timezone.now()
    for _ in range(3):
        assert deliver(http, now=now) == 1
        message.refresh_from_db()
        now = message.next_attempt_at or now
    assert (message.state, message.attempts) == ("dead", 3)
    assert deliver(http, now=now + timedelta(days=2)) == 0
    assert outbox.retry_now(message, admin_user)
    assert (message.state, message.attempts) == ("pending", 0)
    assert deliver(http) == 1
    message.refresh_from_db()
    assert message.state == "delivered"
    assert not outbox.retry_now(message)  # nothing to retry once delivered


def test_no_retry_now_on_rejected(referral, admin_user, fake_ocean, http):
    """A refusal is final (contract §6: no auto-retry): the same bundle would be refused again."""
    fake_ocean.queue("process", Reply(400, outcome("bad")))
    message = actions.accept(referral, admin_user)
    deliver(http)
    message.refresh_from_db()
    assert message.state == "rejected" and not message.can_retry_now
    assert not outbox.retry_now(message)
    assert deliver(http) == 0
    message.refresh_from_db()
    assert message.state == "rejected"
    from harbour.audit.models import AuditEntry

    assert AuditEntry.objects.filter(action="ocean.outbound.retry_now").count() == 0


def test_refused_credentials_pause_but_never_kill(clinic, admin_user, fake_ocean, http, settings):
    settings.HARBOUR_OUTBOX_MAX_ATTEMPTS = 1
    configure(clinic, fake_ocean.url, secret="wrong")
    referral = make_referral(clinic)
    message = actions.accept(referral, admin_user)
    deliver(http)
    message.refresh_from_db()
    assert message.state == "failed" and "credentials" in message.last_error
    assert "wrong" not in message.last_error


def test_per_referral_order(clinic, admin_user, fake_ocean, http):
    configure(clinic, fake_ocean.url)
    first_ref = make_referral(clinic)
    second_ref = make_referral(clinic, "0b0b0b0b-1111-2222-3333-444444444444", snapshot=False)
    fake_ocean.queue("process", Reply(503))  # the first referral's accept fails once
    accept = actions.accept(first_ref, admin_user)
    message = actions.send_message(first_ref, admin_user, "Booking soon")
    other = actions.accept(second_ref, admin_user)
    now = timezone.now()
    deliver(http, now=now)
    states = {m.pk: m.state for m in OutboundMessage.objects.all()}
    # The accept failed; the message after it waits; the other referral is not held back.
    assert states == {accept.pk: "failed", message.pk: "pending", other.pk: "delivered"}
    accept.refresh_from_db()
    assert deliver(http, now=accept.next_attempt_at) == 1  # only the accept
    assert deliver(http, now=accept.next_attempt_at) == 1  # now the message
    sent = [p.json["entry"][0]["resource"]["eventCoding"]["code"] for p in fake_ocean.calls("process")]
    assert sent == ["notify-add-process-request", "notify-add-process-request", "notify-add-process-request",
                    "send-communication-from-provider"]
    assert OutboundMessage.objects.filter(state="delivered").count() == 3


def test_rejected_does_not_block_later_messages(referral, admin_user, fake_ocean, http):
    fake_ocean.queue("process", Reply(400, outcome("no")))
    actions.accept(referral, admin_user)
    later = actions.send_message(referral, admin_user, "hello")
    deliver(http)
    deliver(http)
    later.refresh_from_db()
    assert later.state == "delivered"


def test_stale_sending_row_is_claimed_again(referral, admin_user, http):
    message = actions.accept(referral, admin_user)
    now = timezone.now()
    OutboundMessage.objects.filter(pk=message.pk).update(state="sending", next_attempt_at=now + timedelta(minutes=5))
    assert deliver(http, now=now) == 0  # another worker holds it
    assert deliver(http, now=now + timedelta(minutes=6)) == 1  # its lease ran out: that worker died
    message.refresh_from_db()
    assert message.state == "delivered"


def test_sync_annotation_and_summary(clinic, referral, admin_user, fake_ocean, http):
    other = make_referral(clinic, "0b0b0b0b-1111-2222-3333-444444444444", snapshot=False)
    actions.accept(referral, admin_user)
    rows = {r.pk: r.ocean_unsynced for r in outbox.annotate_unsynced(Referral.objects.all())}
    assert rows == {referral.pk: True, other.pk: False}
    summary = outbox.outbox_summary(clinic)
    assert (summary.waiting, summary.failed, summary.dead, summary.rejected) == (1, 0, 0, 0)
    deliver(http)
    assert outbox.outbox_summary(clinic).synced
    rows = {r.pk: r.ocean_unsynced for r in outbox.annotate_unsynced(Referral.objects.all())}
    assert rows == {referral.pk: False, other.pk: False}


def test_worker_runs_the_jobs(referral, admin_user, fake_ocean, settings):
    from harbour.core.worker import discover_jobs

    assert outbox.deliver_outbox in discover_jobs()
    settings.HARBOUR_OCEAN_CONNECT_TIMEOUT = 1.0
    actions.accept(referral, admin_user)
    assert outbox.deliver_outbox() == 1
    assert OutboundMessage.objects.get().state == "delivered"
