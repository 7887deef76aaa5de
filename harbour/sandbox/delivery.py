"""Webhook delivery like Ocean's: a persistent queue, the integration's authentication, retries.

Ocean documents its retries as "several times in the first hour, then hourly, giving up after
96 hours" (contract §2.1). The sandbox reads that as: a first attempt at once, retries 1, 5, 10,
20 and 30 minutes after it, then every hour from the first hour to the 96th; when the attempt
at 96 hours fails, it gives up. SANDBOX_TIME_SCALE divides every delay (3600: an hour per
second), so tests run the whole schedule in seconds. Anything but a 2xx counts as a failure.
"""
import base64
import logging
import time
from datetime import datetime, timedelta

import httpx
from django.db import connection, transaction
from django.utils import timezone

from harbour.sandbox import bundles, conf
from harbour.sandbox.models import Delivery, DeliveryAttempt, Integration, Referral

log = logging.getLogger("harbour.sandbox.delivery")

MINUTE, HOUR = 60, 3600
# Offsets from the first attempt, in unscaled seconds.
RETRY_OFFSETS = [1 * MINUTE, 5 * MINUTE, 10 * MINUTE, 20 * MINUTE, 30 * MINUTE] + [h * HOUR for h in range(1, 97)]
GIVE_UP_AFTER = 96 * HOUR
EXCERPT_CHARS = 500
BATCH = 20
# A claimed delivery is invisible to other workers this long (real seconds), in case one dies.
CLAIM_SECONDS = 120
NO_KEY_ERROR = "Not sent: Ocean Cloud Connect does not hold this site's shared encryption key."


_client: httpx.Client | None = None


def http_client() -> httpx.Client:
    """One connection pool per process (building TLS contexts per attempt is slow)."""
    global _client
    if _client is None:
        _client = httpx.Client(follow_redirects=False)
    return _client


def scaled(seconds: float) -> timedelta:
    return timedelta(seconds=seconds / conf.time_scale())


def next_attempt_after(schedule_start: datetime, attempts_made: int) -> datetime | None:
    """When to try again after `attempts_made` failed attempts, or None once the schedule is spent.

    Every slot of the schedule is used, even by a worker that runs late (it then catches up), so
    an endpoint that never answers sees exactly 1 + 5 + 96 attempts, the last at 96 hours.
    """
    index = attempts_made - 1
    if index >= len(RETRY_OFFSETS):
        return None
    return schedule_start + scaled(RETRY_OFFSETS[index])


# --- Queueing ----------------------------------------------------------------------------------

def enqueue(integration: Integration, referral: Referral | None, event: str, *, reason: str, author: str = "sender",
            focus: str = "service_request", reason_text: str = "") -> Delivery:
    """Build the bundle now (a snapshot, like Ocean's) and queue it for `integration`."""
    bundle = bundles.build_message(
        referral, event, version=integration.payload_version, endpoint=integration.request_url,
        author=author, focus=focus, reason_text=reason_text,
    )
    now = timezone.now()
    held = not integration.site.key_in_cloud_connect
    return Delivery.objects.create(
        integration=integration, referral=referral, event=event, reason=reason,
        bundle_id=bundle["id"], bundle=bundles.to_bytes(bundle),
        state=Delivery.State.HELD if held else Delivery.State.PENDING,
        schedule_start=None if held else now, next_attempt_at=None if held else now,
        last_error=NO_KEY_ERROR if held else "",
    )


# --- The worker job ----------------------------------------------------------------------------

def deliver_due(now: datetime | None = None, limit: int = BATCH) -> int:
    """Attempt every delivery due at `now` (tests pass a clock); returns how many were tried."""
    now = now or timezone.now()
    claimed = _claim(now, limit)
    for delivery in claimed:
        attempt(delivery, now)
    return len(claimed)


def _claim(now: datetime, limit: int) -> list[Delivery]:
    with transaction.atomic():
        due = Delivery.objects.filter(state=Delivery.State.PENDING, next_attempt_at__lte=now).order_by("next_attempt_at", "id")
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True)
        claimed = list(due.select_related("integration", "integration__site")[:limit])
        if claimed:
            lease = timezone.now() + timedelta(seconds=CLAIM_SECONDS)
            Delivery.objects.filter(pk__in=[d.pk for d in claimed]).update(next_attempt_at=lease)
    return claimed


def attempt(delivery: Delivery, now: datetime) -> DeliveryAttempt:
    """One HTTP attempt, recorded in the delivery log; schedules the retry or gives up."""
    integration = delivery.integration
    started = time.monotonic()
    status, error, excerpt = None, "", ""
    if not integration.site.key_in_cloud_connect:
        error = NO_KEY_ERROR
    else:
        try:
            headers = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json, application/json"}
            headers.update(auth_headers(integration))
            response = http_client().post(
                integration.request_url, content=bytes(delivery.bundle), headers=headers, timeout=conf.delivery_timeout_seconds(),
            )
            status = response.status_code
            excerpt = response.text[:EXCERPT_CHARS]
        except AuthError as exc:
            error = str(exc)[:300]
        except ValueError:  # the stored key, password or secret no longer decrypts (keys rotated away)
            error = "The integration's stored credential cannot be read; save the integration again."
        except httpx.TimeoutException:
            error = f"Timed out after {conf.delivery_timeout_seconds():g} seconds."
        except httpx.ConnectError:
            error = "Connection refused or host unreachable."
        except httpx.HTTPError as exc:
            error = f"HTTP error: {exc.__class__.__name__}."
    duration_ms = int((time.monotonic() - started) * 1000)
    ok = status is not None and 200 <= status < 300
    number = delivery.attempts + 1
    record = DeliveryAttempt.objects.create(
        delivery=delivery, number=number, at=now, status_code=status, error=error, excerpt=excerpt, duration_ms=duration_ms,
    )
    delivery.attempts = number
    delivery.last_status_code = status
    delivery.last_error = error
    delivery.excerpt = excerpt
    schedule_start = delivery.schedule_start or now
    if ok:
        delivery.state = Delivery.State.DELIVERED
        delivery.delivered_at = now
        delivery.next_attempt_at = None
    elif error == NO_KEY_ERROR:
        delivery.state = Delivery.State.HELD
        delivery.next_attempt_at = None
    else:
        retry_at = next_attempt_after(schedule_start, number)
        delivery.state = Delivery.State.PENDING if retry_at else Delivery.State.GAVE_UP
        delivery.next_attempt_at = retry_at
    delivery.save(update_fields=[
        "attempts", "last_status_code", "last_error", "excerpt", "state", "delivered_at", "next_attempt_at",
    ])
    _update_health(integration, now, status, error, ok)
    log.info("delivery %s to integration %s attempt %s: %s", delivery.pk, integration.pk, number, status or "error")
    return record


def _update_health(integration: Integration, now: datetime, status: int | None, error: str, ok: bool) -> None:
    fields = {"last_attempt_at": now, "last_status_code": status, "last_error": error}
    if ok:
        fields["failing_since"] = None
        Integration.objects.filter(pk=integration.pk).update(**fields)
    else:
        Integration.objects.filter(pk=integration.pk).update(**fields)
        Integration.objects.filter(pk=integration.pk, failing_since__isnull=True).update(failing_since=now)


# --- Authentication toward the endpoint --------------------------------------------------------

class AuthError(Exception):
    pass


# Tokens from integrations' OAuth2 token endpoints: {integration settings: (token, expiry monotonic)}.
_oauth_tokens: dict[tuple, tuple[str, float]] = {}


def auth_headers(integration: Integration) -> dict:
    kind = integration.auth_type
    if kind == Integration.Auth.API_KEY:
        return {integration.header_name: integration.get_secret()}
    if kind == Integration.Auth.BASIC:
        raw = f"{integration.basic_username}:{integration.get_secret()}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
    if kind == Integration.Auth.OAUTH2:
        return {"Authorization": "Bearer " + _oauth_token(integration)}
    return {}


def _oauth_token(integration: Integration) -> str:
    key = (integration.pk, integration.oauth_token_url, integration.oauth_client_id, integration.secret_encrypted)
    cached = _oauth_tokens.get(key)
    if cached and cached[1] > time.monotonic():
        return cached[0]
    try:
        response = http_client().post(integration.oauth_token_url, timeout=conf.delivery_timeout_seconds(), data={
            "grant_type": "client_credentials",
            "client_id": integration.oauth_client_id,
            "client_secret": integration.get_secret(),
        })
    except httpx.HTTPError as exc:
        raise AuthError(f"OAuth2 token request failed: {exc.__class__.__name__}.") from None
    try:
        body = response.json()
        token = body["access_token"]
    except (ValueError, KeyError, TypeError):
        raise AuthError(f"OAuth2 token request refused (status {response.status_code}).") from None
    expires_in = body.get("expires_in") if isinstance(body.get("expires_in"), (int, float)) else 300
    _oauth_tokens[key] = (token, time.monotonic() + max(expires_in - 30, 1))
    return token


# --- Bulk resend -------------------------------------------------------------------------------

BULK_LIMIT = 1000


def parse_refs(text: str) -> list[str]:
    """Referral refs from a CSV without header: one per line, or separated by commas."""
    refs = []
    for line in (text or "").replace(";", ",").splitlines():
        for cell in line.split(","):
            cell = cell.strip().strip('"').strip()
            if cell and cell not in refs:
                refs.append(cell)
    return refs
