"""Repeated rejected calls from one address are throttled; valid calls from elsewhere are not."""
from datetime import timedelta

import orjson
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from harbour.intake import ratelimit
from harbour.intake.models import InboundMessage, RejectedCaller
from tests.intake.intake_client import HOST, REAL_BUNDLE, give_key, ocean, outcome, post

ATTACKER = "203.0.113.7"
ATTACKER_ROW = f"{ATTACKER} {HOST}"  # failures count per caller and host called (ratelimit.throttle_key)
OCEAN = "198.51.100.20"


@pytest.fixture
def key(clinic):
    return give_key(clinic)


@pytest.fixture
def limits(settings):
    settings.HARBOUR_INTAKE_FAILURE_LIMIT = 3
    settings.HARBOUR_INTAKE_FAILURE_WINDOW = 300
    settings.HARBOUR_INTAKE_BLOCK_SECONDS = 120
    return settings


def fresh_bundle(bundle_id: str) -> bytes:
    data = orjson.loads(REAL_BUNDLE)
    data["id"] = bundle_id
    return orjson.dumps(data)


def test_blocked_after_the_limit_then_429_even_with_the_right_key(clinic, key, limits):
    for _ in range(3):
        assert post(REAL_BUNDLE, "guess", REMOTE_ADDR=ATTACKER).status_code == 401

    throttled = post(REAL_BUNDLE, "guess", REMOTE_ADDR=ATTACKER)
    assert throttled.status_code == 429
    assert 119 <= int(throttled["Retry-After"]) <= 120
    severity, code, diagnostics = outcome(throttled)
    assert (severity, code) == ("error", "throttled")
    assert diagnostics.startswith("Too many rejected calls from this address; retry in ")

    # A blocked address is refused before its key is looked at (no yes/no answer to guesses).
    assert post(REAL_BUNDLE, key, REMOTE_ADDR=ATTACKER).status_code == 429
    assert InboundMessage.objects.count() == 0
    # Only the 401s count on the settings page; blocked calls are shed without writes.
    assert ocean(clinic).rejected_count == 3
    assert RejectedCaller.objects.get(address=ATTACKER_ROW).failures == 3


def test_a_remembered_key_does_not_get_a_blocked_address_through(clinic, key, limits):
    # The key passed from this address, so the intake remembers it and skips the lookup next
    # time; the INSERT's own check of the block still refuses the call once the address is blocked.
    assert post(fresh_bundle("before-the-block"), key, REMOTE_ADDR=ATTACKER).status_code == 200
    for _ in range(3):
        assert post(REAL_BUNDLE, "guess", REMOTE_ADDR=ATTACKER).status_code == 401

    throttled = post(fresh_bundle("during-the-block"), key, REMOTE_ADDR=ATTACKER)
    assert throttled.status_code == 429 and outcome(throttled)[1] == "throttled"
    assert post(fresh_bundle("from-ocean"), key, REMOTE_ADDR=OCEAN).status_code == 200
    assert sorted(InboundMessage.objects.values_list("bundle_id", flat=True)) == ["before-the-block", "from-ocean"]


def test_valid_key_from_another_address_is_unaffected(clinic, key, limits):
    for _ in range(5):
        post(REAL_BUNDLE, "guess", REMOTE_ADDR=ATTACKER)
    assert post(REAL_BUNDLE, "guess", REMOTE_ADDR=ATTACKER).status_code == 429

    response = post(REAL_BUNDLE, key, REMOTE_ADDR=OCEAN)
    assert response.status_code == 200
    assert InboundMessage.objects.get().remote_addr == OCEAN


def test_valid_calls_add_no_query_for_the_rate_limit(clinic, key, limits):
    for _ in range(3):
        post(REAL_BUNDLE, "guess", REMOTE_ADDR=ATTACKER)
    with CaptureQueriesContext(connection) as queries:
        assert post(REAL_BUNDLE, key, REMOTE_ADDR=OCEAN).status_code == 200
    statements = [q["sql"] for q in queries.captured_queries]
    # One lookup (key, host clinic and block together), the insert and the settings update.
    assert [s.split()[0] for s in statements if not s.startswith(("SAVEPOINT", "RELEASE"))] == [
        "SELECT",
        "INSERT",
        "UPDATE",
    ]
    # Nothing written to the rate limit's table (the INSERT only reads it, in its guard).
    written = [s.split()[2] if s.startswith("INSERT") else s.split()[1] for s in statements if s.startswith(("INSERT", "UPDATE"))]
    assert written == ['"intake_inboundmessage"', '"clinics_oceansettings"']


def test_block_ends_after_its_duration(clinic, key, limits):
    for _ in range(3):
        post(REAL_BUNDLE, "guess", REMOTE_ADDR=ATTACKER)
    assert post(REAL_BUNDLE, key, REMOTE_ADDR=ATTACKER).status_code == 429

    RejectedCaller.objects.filter(address=ATTACKER_ROW).update(blocked_until=timezone.now() - timedelta(seconds=1))
    assert post(REAL_BUNDLE, key, REMOTE_ADDR=ATTACKER).status_code == 200


def test_failures_outside_the_window_do_not_add_up(clinic, key, limits):
    for _ in range(2):
        post(REAL_BUNDLE, "guess", REMOTE_ADDR=ATTACKER)
    RejectedCaller.objects.filter(address=ATTACKER_ROW).update(window_start=timezone.now() - timedelta(seconds=301))

    assert post(REAL_BUNDLE, "guess", REMOTE_ADDR=ATTACKER).status_code == 401
    assert post(REAL_BUNDLE, "guess", REMOTE_ADDR=ATTACKER).status_code == 401
    row = RejectedCaller.objects.get(address=ATTACKER_ROW)
    assert (row.failures, row.blocked_until) == (2, None)


def test_wrong_requests_after_authentication_do_not_count(clinic, key, limits):
    for _ in range(5):
        assert post(b"not json", key, REMOTE_ADDR=OCEAN).status_code == 400
    assert post(REAL_BUNDLE, key, REMOTE_ADDR=OCEAN).status_code == 200
    assert not RejectedCaller.objects.exists()


def test_default_policy_is_20_failures(clinic, key):
    for _ in range(20):
        assert post(REAL_BUNDLE, "guess", REMOTE_ADDR=ATTACKER).status_code == 401
    assert post(REAL_BUNDLE, "guess", REMOTE_ADDR=ATTACKER).status_code == 429


def test_limit_of_one_blocks_at_the_first_failure(clinic, key, limits):
    limits.HARBOUR_INTAKE_FAILURE_LIMIT = 1
    assert post(REAL_BUNDLE, "guess", REMOTE_ADDR=ATTACKER).status_code == 401
    assert post(REAL_BUNDLE, key, REMOTE_ADDR=ATTACKER).status_code == 429


def test_ipv6_callers_are_counted_per_64(clinic, key, limits):
    for suffix in ("1", "2", "3"):
        post(REAL_BUNDLE, "guess", REMOTE_ADDR=f"2001:db8:1:2::{suffix}")
    assert post(REAL_BUNDLE, key, REMOTE_ADDR="2001:db8:1:2::99").status_code == 429
    assert post(REAL_BUNDLE, key, REMOTE_ADDR="2001:db8:1:3::1").status_code == 200


def test_forwarded_address_counts_behind_a_trusted_proxy(clinic, key, limits):
    limits.HARBOUR_TRUSTED_PROXY_COUNT = 1
    for _ in range(3):
        post(REAL_BUNDLE, "guess", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=f"10.9.9.9, {ATTACKER}")
    assert post(REAL_BUNDLE, key, REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=ATTACKER).status_code == 429

    response = post(fresh_bundle("via-proxy"), key, REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=OCEAN)
    assert response.status_code == 200
    assert InboundMessage.objects.get().remote_addr == OCEAN


def test_forwarded_header_is_ignored_without_a_trusted_proxy(clinic, key, limits):
    for _ in range(3):
        post(REAL_BUNDLE, "guess", REMOTE_ADDR=ATTACKER, HTTP_X_FORWARDED_FOR=OCEAN)
    assert post(REAL_BUNDLE, key, REMOTE_ADDR=ATTACKER, HTTP_X_FORWARDED_FOR=OCEAN).status_code == 429


def test_expired_rows_are_purged_when_a_new_caller_is_counted(clinic, key, limits):
    post(REAL_BUNDLE, "guess", REMOTE_ADDR=ATTACKER)
    long_ago = timezone.now() - timedelta(hours=1)
    RejectedCaller.objects.filter(address=ATTACKER_ROW).update(window_start=long_ago, blocked_until=long_ago)
    post(REAL_BUNDLE, "guess", REMOTE_ADDR="192.0.2.1")

    assert list(RejectedCaller.objects.values_list("address", flat=True)) == [f"192.0.2.1 {HOST}"]


def test_a_current_block_is_not_purged(db, limits):
    now = timezone.now()
    RejectedCaller.objects.create(
        address=ATTACKER, window_start=now - timedelta(hours=1), failures=3, blocked_until=now + timedelta(seconds=5)
    )
    assert ratelimit.purge_expired(now) == 0
    assert ratelimit.blocked_until(ATTACKER, now) is not None


@pytest.mark.parametrize(
    "address, key",
    [
        ("192.0.2.10", "192.0.2.10"),
        ("::ffff:192.0.2.10", "192.0.2.10"),
        ("2001:db8:abcd:12:1:2:3:4", "2001:db8:abcd:12::/64"),
        ("", None),
    ],
)
def test_throttle_keys(address, key, rf):
    request = rf.post("/", REMOTE_ADDR=address)
    assert ratelimit.throttle_key(ratelimit.client_address(request)) == key
    with_host = ratelimit.throttle_key(ratelimit.client_address(request), "clinique.example.org")
    assert with_host == (f"{key} clinique.example.org" if key else None)
