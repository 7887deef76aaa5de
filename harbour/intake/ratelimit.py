"""Rate limit of rejected calls, shared by every server process through the database.

Policy (settings, with these defaults):
- HARBOUR_INTAKE_FAILURE_LIMIT = 20 rejected calls (401) from one address to one host within
  HARBOUR_INTAKE_FAILURE_WINDOW = 300 s block that address on that host for
  HARBOUR_INTAKE_BLOCK_SECONDS = 300 s.
- Per host: Ocean delivers every clinic's messages from the same few addresses, so one clinic's
  mistyped key must not hold up the others' deliveries (each clinic has its own host). With a
  wildcard in ALLOWED_HOSTS a guesser could spread calls over hosts; the keys are 256-bit
  random values, so the limit is there to shed load, not to make guessing possible.
- A blocked caller gets 429 before its key is looked at, even a valid key: otherwise the
  block would still answer "right"/"wrong" to key guesses. Ocean retries 429 like any non-2xx,
  so nothing is lost, only delayed.
- Valid calls from addresses that are not blocked cost nothing extra: the block check rides
  on the key lookup query and on the INSERT's guard (lookup.py, store.py), and rows are
  written only on rejections.
- IPv6 callers are counted per /64, the block a single host usually owns.
- HARBOUR_TRUSTED_PROXY_COUNT (default 0): behind N reverse proxies, the caller is the Nth
  address from the right of X-Forwarded-For. Left at 0 behind a proxy, every caller shares the
  proxy's address and one bad caller could block Ocean: set it in such deployments.
"""
import functools
import ipaddress
import math
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Case, F, Q, Value, When

from harbour.intake.models import RejectedCaller


def failure_limit() -> int:
    return max(1, int(getattr(settings, "HARBOUR_INTAKE_FAILURE_LIMIT", 20)))


def failure_window() -> timedelta:
    return timedelta(seconds=int(getattr(settings, "HARBOUR_INTAKE_FAILURE_WINDOW", 300)))


def block_duration() -> timedelta:
    return timedelta(seconds=int(getattr(settings, "HARBOUR_INTAKE_BLOCK_SECONDS", 300)))


def client_address(request) -> str | None:
    """The caller's IP address as text, or None when it is not an IP address (a Unix socket)."""
    address = request.META.get("REMOTE_ADDR", "")
    proxies = int(getattr(settings, "HARBOUR_TRUSTED_PROXY_COUNT", 0))
    if proxies > 0:
        hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
        if len(hops) >= proxies:
            address = hops[-proxies]
    return _canonical(address.strip())


# Both below run on every delivery, and Ocean calls from a handful of addresses: each process
# keeps the answers for the addresses it saw last instead of parsing them again.
@functools.lru_cache(maxsize=1024)
def _canonical(address: str) -> str | None:
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


@functools.lru_cache(maxsize=1024)
def throttle_key(address: str | None, domain: str | None = None) -> str | None:
    """What failures are counted under: the IPv4 address or the IPv6 /64, then the host the call
    was made to ("203.0.113.7 clinique.example.org"). None: not limited."""
    if address is None:
        return None
    ip = ipaddress.ip_address(address)
    if ip.version == 6:
        caller = str(ip.ipv4_mapped) if ip.ipv4_mapped is not None else str(
            ipaddress.ip_network(f"{ip}/64", strict=False))
    else:
        caller = str(ip)
    return f"{caller} {domain}" if domain else caller


def blocked_until(key: str | None, now: datetime) -> datetime | None:
    if key is None:
        return None
    return (
        RejectedCaller.objects.filter(address=key, blocked_until__gt=now)
        .values_list("blocked_until", flat=True)
        .first()
    )


def retry_after_seconds(until: datetime, now: datetime) -> int:
    return max(1, math.ceil((until - now).total_seconds()))


def record_failure(key: str | None, now: datetime) -> None:
    """Count one rejected call; the call that reaches the limit starts the block.

    One UPDATE decides everything in the database (no read-modify-write), so concurrent
    processes never lose a count.
    """
    if key is None:
        return
    limit, window, block = failure_limit(), failure_window(), block_duration()
    in_window = Q(window_start__gt=now - window)
    reaches_limit = in_window & Q(failures__gte=limit - 1) if limit > 1 else Q(pk__isnull=False)
    changes = {
        "failures": Case(When(in_window, then=F("failures") + 1), default=Value(1)),
        "window_start": Case(When(in_window, then=F("window_start")), default=Value(now)),
        "blocked_until": Case(When(reaches_limit, then=Value(now + block)), default=F("blocked_until")),
    }
    if RejectedCaller.objects.filter(address=key).update(**changes):
        return
    try:
        with transaction.atomic():
            RejectedCaller.objects.create(
                address=key, window_start=now, failures=1, blocked_until=now + block if limit == 1 else None
            )
    except IntegrityError:  # another process added it a moment ago
        RejectedCaller.objects.filter(address=key).update(**changes)
        return
    purge_expired(now)


def purge_expired(now: datetime) -> int:
    """Delete rows whose window and block are both over. Runs when the table grows."""
    deleted, _ = (
        RejectedCaller.objects.filter(window_start__lte=now - failure_window())
        .filter(Q(blocked_until__isnull=True) | Q(blocked_until__lte=now))
        .delete()
    )
    return deleted
