"""The outbox: enqueue a built bundle with the staff action, deliver it later, retry, show failures.

- `enqueue(...)` runs inside the action's transaction: the message exists exactly when the
  action does.
- `deliver_outbox()` (a worker job) claims due rows (PostgreSQL: SKIP LOCKED), sends them, and
  records the outcome: 2xx delivered; timeouts, connection errors, 408, 425, 429 and 5xx retried
  with exponential backoff and jitter; other 4xx rejected for good with Ocean's OperationOutcome
  kept, and the refused action undone here when nothing happened since (ocean.refusals; no
  "retry now" for a refusal); dead after HARBOUR_OUTBOX_MAX_ATTEMPTS. A 401 already got a new token and one retry in
  the client; refused credentials leave the message waiting (never dead) until they are fixed.
- Order per referral: a message waits while an earlier one of its referral is pending,
  sending or failed.
"""
from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Exists, OuterRef
from django.utils import timezone

from harbour.core import logging as log_context
from harbour.fhir.build import OutboundInvalid, ReferralContext, validate_outbound
from harbour.fhir.parse import NotSerialisable, dump_json
from harbour.fhir import codes

from .client import OceanClient, default_timeout
from .errors import CredentialsRejected, OceanRejected, OceanUnreachable
from .models import OutboundMessage

log = logging.getLogger("harbour.ocean")
State = OutboundMessage.State

# The start of `last_error` while the clinic's credentials are refused (the outbox is paused):
# stored in English, shown through ocean.errortext, and what `credentials_rejected` looks for.
CREDENTIALS_REJECTED = "Ocean refused the OAuth credentials"


# --- Settings -----------------------------------------------------------------------


def backoff_base() -> float:
    return float(getattr(settings, "HARBOUR_OUTBOX_BACKOFF_BASE", 30))


def backoff_cap() -> float:
    return float(getattr(settings, "HARBOUR_OUTBOX_BACKOFF_CAP", 3600))


def max_attempts() -> int:
    return int(getattr(settings, "HARBOUR_OUTBOX_MAX_ATTEMPTS", 10))


def batch_size() -> int:
    return int(getattr(settings, "HARBOUR_OUTBOX_BATCH", 20))


def sending_lease() -> timedelta:
    """A row left in 'sending' by a worker that died is claimed again after this."""
    return timedelta(seconds=getattr(settings, "HARBOUR_OUTBOX_LEASE_SECONDS", 300))


def backoff_delay(attempts: int, rng: random.Random | None = None) -> timedelta:
    """Delay before the next try after `attempts` failed ones: base·2^(n-1), capped, times a jitter
    in [0.5, 1) so many clinics' retries do not arrive together."""
    rng = rng or random
    exponent = max(0, min(attempts - 1, 30))
    delay = min(backoff_cap(), backoff_base() * (2 ** exponent))
    return timedelta(seconds=delay * (0.5 + rng.random() / 2))


# --- Context and enqueue ------------------------------------------------------------------


def harbour_public_url(clinic) -> str:
    domain = clinic.domains.order_by("pk").values_list("domain", flat=True).first()
    return f"https://{domain}" if domain else settings.HARBOUR_PUBLIC_URL


def latest_snapshot(referral) -> dict | None:
    """The latest bundle Ocean sent about this referral (its resources are echoed back, §3.2)."""
    from harbour.intake.body import BodyNotJSON, parse_json
    from harbour.intake.models import InboundMessage

    raws = (InboundMessage.objects.filter(clinic_id=referral.clinic_id, referral_ref=referral.ocean_ref)
            .exclude(state=InboundMessage.State.FAILED).order_by("-received_at", "-id")
            .values_list("raw", flat=True)[:3])
    for raw in raws:
        try:
            data = parse_json(bytes(raw))  # the endpoint's parser: a byte order mark is still JSON
        except BodyNotJSON:
            continue
        if isinstance(data, dict):
            return data
    return None


def context_for(referral, ocean=None) -> ReferralContext:
    from harbour.clinics.models import ocean_settings_for

    ocean = ocean or ocean_settings_for(referral.clinic)
    return ReferralContext(
        ocean_base_url=ocean.ocean_base_url,
        referral_ref=referral.ocean_ref,
        harbour_url=harbour_public_url(referral.clinic),
        site_number=referral.site_number or ocean.site_number,
        listing_ref=referral.listing_ref,
        snapshot=latest_snapshot(referral),
        task_code_system=getattr(settings, "HARBOUR_OCEAN_TASK_CODE_SYSTEM", codes.TASK_CODE_SYSTEM),
    )


class CannotSend(ValueError):
    """The built bundle cannot go to Ocean (invalid, or without a strict JSON form); the text is
    plain English without patient data."""


def enqueue(referral, kind: str, bundle: dict, *, user=None, idempotency_key: str = "",
            echo_key: str = "") -> OutboundMessage:
    """Validate and store a message for Ocean (call inside the action's transaction).

    CannotSend, before anything is stored, when the bundle is invalid or cannot be written as
    strict JSON: a message that cannot be delivered is never queued. The stored bundle and the
    HTTP body are the same `dump_json` bytes (the field's encoder), so what is queued is sent."""
    try:
        validate_outbound(bundle)
    except OutboundInvalid as exc:
        raise CannotSend("; ".join(exc.problems[:5])) from None
    try:
        dump_json(bundle)
    except NotSerialisable as exc:
        raise CannotSend(str(exc)) from None
    return OutboundMessage.objects.create(
        clinic_id=referral.clinic_id,
        referral=referral,
        kind=kind,
        event_code=bundle["entry"][0]["resource"]["eventCoding"]["code"],
        bundle=bundle,
        idempotency_key=idempotency_key,
        echo_key=echo_key,
        state=State.PENDING,
        next_attempt_at=timezone.now(),
        created_by=user if getattr(user, "is_authenticated", False) else None,
    )


# --- Delivery --------------------------------------------------------------------------


def _claim(now: datetime, limit: int) -> list[OutboundMessage]:
    earlier_open = OutboundMessage.objects.filter(
        referral_id=OuterRef("referral_id"), id__lt=OuterRef("id"), state__in=OutboundMessage.OPEN_STATES
    )
    with transaction.atomic():
        due = (OutboundMessage.objects
               .filter(state__in=OutboundMessage.OPEN_STATES, next_attempt_at__lte=now)
               .exclude(Exists(earlier_open))
               .order_by("next_attempt_at", "id"))
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True, of=("self",))
        rows = list(due[:limit])
        for row in rows:
            row.state = State.SENDING
            row.attempts += 1
            row.last_attempt_at = now
            row.next_attempt_at = now + sending_lease()
            row.save(update_fields=["state", "attempts", "last_attempt_at", "next_attempt_at"])
    return rows


def deliver_outbox(*, now: datetime | None = None, rng: random.Random | None = None,
                   http: httpx.Client | None = None) -> int:
    """Worker job: send one batch of due messages; returns how many were attempted."""
    now = now or timezone.now()
    rows = _claim(now, batch_size())
    if not rows:
        return 0
    from harbour.clinics.models import ocean_settings_for

    own_http = http is None
    http = http or httpx.Client(timeout=default_timeout(), follow_redirects=False)
    clients: dict[int, OceanClient] = {}
    try:
        for row in rows:
            client = clients.get(row.clinic_id)
            if client is None:
                client = clients[row.clinic_id] = OceanClient(ocean_settings_for(row.clinic), http=http)
            with log_context.scope(clinic_id=row.clinic_id):
                _deliver_one(row, client, now, rng)
    finally:
        if own_http:
            http.close()
    return len(rows)


def _deliver_one(row: OutboundMessage, client: OceanClient, now: datetime, rng) -> None:
    try:
        response = client.process_messages(row.bundle)
    except CredentialsRejected as exc:
        # Paused, not dying: nothing will work until someone fixes the credentials.
        _retry(row, now, rng, None, f"{CREDENTIALS_REJECTED} ({exc.which}).", can_die=False)
    except OceanUnreachable as exc:
        _retry(row, now, rng, None, str(exc))
    except OceanRejected as exc:
        if exc.retryable or exc.status == 401:
            _retry(row, now, rng, exc.status, str(exc))
        else:
            finished = _finish(row, State.REJECTED, exc.status, exc.text or str(exc))
            log.warning("Ocean rejected outbound %s (%s, status %s)", row.pk, row.event_code, exc.status)
            if finished:
                _settle_refusal(row)
    except Exception as exc:  # a bug must not leave the row 'sending' forever
        log.exception("outbound %s failed unexpectedly", row.pk)
        _retry(row, now, rng, None, f"Unexpected error: {type(exc).__name__}")
    else:
        _finish(row, State.DELIVERED, response.status_code, "", delivered_at=timezone.now())
        log.info("outbound %s delivered (%s)", row.pk, row.event_code)


def _retry(row, now, rng, status, error, *, can_die=True) -> None:
    if can_die and row.attempts >= max_attempts():
        _finish(row, State.DEAD, status, error)
        log.warning("outbound %s dead after %s attempts", row.pk, row.attempts)
        return
    OutboundMessage.objects.filter(pk=row.pk, state=State.SENDING).update(
        state=State.FAILED, last_status=status, last_error=error[:2000],
        next_attempt_at=now + backoff_delay(row.attempts, rng),
    )


def _finish(row, state, status, error, delivered_at=None) -> int:
    return OutboundMessage.objects.filter(pk=row.pk, state=State.SENDING).update(
        state=state, last_status=status, last_error=error[:2000], next_attempt_at=None,
        delivered_at=delivered_at,
    )


def _settle_refusal(row) -> None:
    """Undo (or flag) the refused action locally (ocean.refusals); a failure there never stops the batch."""
    from .refusals import settle_refusal

    try:
        settle_refusal(row)
    except Exception:
        log.exception("outbound %s: the refused action could not be settled", row.pk)


# --- Retry now, sync state, summaries ----------------------------------------------------


def retry_now(outbound: OutboundMessage, user=None) -> bool:
    """Send a failed or dead message again at once (with a fresh set of attempts). Not a refused
    one: Ocean would refuse the same bundle again (ocean.refusals; staff redo the action)."""
    updated = OutboundMessage.objects.filter(
        pk=outbound.pk, state__in=OutboundMessage.RETRYABLE_STATES
    ).update(state=State.PENDING, next_attempt_at=timezone.now(), attempts=0)
    if updated:
        from harbour.audit.log import record

        record("ocean.outbound.retry_now", clinic=outbound.clinic, actor=user, target=f"outbound:{outbound.pk}",
               previous_state=outbound.state)
        outbound.refresh_from_db()
    return bool(updated)


def mark_refusal_handled(outbound: OutboundMessage, user=None) -> bool:
    """A person dealt with a refusal Harbour kept (ocean.refusals): the referral is no longer "not
    synced" because of it. Nothing is sent; doing it twice changes nothing."""
    updated = OutboundMessage.objects.filter(pk=outbound.pk, state=State.REJECTED).exclude(
        OutboundMessage.settled_refusal_q()).update(refusal=OutboundMessage.Refusal.HANDLED)
    if updated:
        from harbour.audit.log import record

        record("ocean.outbound.refusal_handled", clinic=outbound.clinic, actor=user, target=f"outbound:{outbound.pk}")
        outbound.refresh_from_db()
    return bool(updated)


@dataclass(frozen=True)
class SyncState:
    """Whether everything Harbour said about a referral has reached Ocean."""

    waiting: int  # pending or being sent
    failed: int  # waiting to retry
    dead: int
    rejected: int

    @property
    def synced(self) -> bool:
        return not (self.waiting or self.failed or self.dead or self.rejected)

    @property
    def needs_attention(self) -> bool:
        return bool(self.dead or self.rejected)


def _sync_state(queryset) -> SyncState:
    """Outbound messages of `queryset` counted by what a person needs to know."""
    counts = dict(queryset.values_list("state").annotate(n=Count("id")).order_by())
    return SyncState(
        waiting=counts.get(State.PENDING, 0) + counts.get(State.SENDING, 0),
        failed=counts.get(State.FAILED, 0),
        dead=counts.get(State.DEAD, 0),
        rejected=counts.get(State.REJECTED, 0),
    )


def referral_sync_state(referral) -> SyncState:
    """A refusal Harbour undid or a person handled does not count (OutboundMessage.unsynced_q)."""
    return _sync_state(OutboundMessage.objects.filter(referral=referral).exclude(OutboundMessage.settled_refusal_q()))


def annotate_unsynced(referrals):
    """Add `ocean_unsynced` (True while any outbound message is not delivered, undone or handled
    refusals aside) to a Referral queryset."""
    return referrals.annotate(ocean_unsynced=Exists(OutboundMessage.objects.filter(
        OutboundMessage.unsynced_q(), referral_id=OuterRef("pk"))))


def credentials_rejected(clinic) -> bool:
    """Whether the clinic's outbox is paused because Ocean refuses its OAuth credentials."""
    return OutboundMessage.objects.filter(clinic=clinic, state=State.FAILED,
                                          last_error__startswith=CREDENTIALS_REJECTED).exists()


def outbox_summary(clinic) -> SyncState:
    return _sync_state(OutboundMessage.objects.filter(clinic=clinic))


def problem_messages(clinic):
    """Failed, dead and rejected messages of a clinic, newest first (the failures page)."""
    return (OutboundMessage.objects.filter(clinic=clinic, state__in=(State.FAILED, State.DEAD, State.REJECTED))
            .select_related("referral", "created_by").order_by("-id"))

