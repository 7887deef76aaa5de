"""Ocean unreachable for an hour of scaled time, then back: the outbox delivers everything
afterwards, in order per referral, each message once.

Harbour's worker runs with the outbox's retry schedule scaled by 1/1000 (base 30 s -> 0.03 s,
cap 3600 s -> 3.6 s, through HARBOUR_OUTBOX_BACKOFF_*; attempts stay at the default 10), so
"an hour" is 3.6 s. Ocean is tests/ocean/fake_ocean.py on loopback; "down" is its port closed
(connection refused, token endpoint included), "back" is the same port listening again.
"""
import collections
import json
import threading
import time
from http.server import ThreadingHTTPServer

import pytest

from tests.faults.helpers import report
from tests.ocean.fake_ocean import FakeOcean
from tests.servers import start_harbour, wait_for

pytestmark = [pytest.mark.servers, pytest.mark.timeout(120)]

SCALE = 1000
HOUR = 3600 / SCALE
REFERRALS = 10


def take_down(ocean: FakeOcean) -> None:
    ocean.server.shutdown()
    ocean.server.server_close()


def bring_back(ocean: FakeOcean, port: int, handler) -> None:
    ocean.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    ocean.server.daemon_threads = True
    ocean.thread = threading.Thread(target=ocean.server.serve_forever, daemon=True)
    ocean.thread.start()


@pytest.fixture
def ocean():
    ocean = FakeOcean()
    yield ocean
    ocean.close()


@pytest.fixture
def harbour(tmp_path, request):
    server = start_harbour(tmp_path / "harbour", web=False, worker=False, env={
        "HARBOUR_OUTBOX_BACKOFF_BASE": str(30 / SCALE),
        "HARBOUR_OUTBOX_BACKOFF_CAP": str(3600 / SCALE),
    })
    yield server
    report(server, request)
    server.stop()


def outbound(harbour) -> list[tuple]:
    rows = harbour.sql("SELECT o.id, r.ocean_ref, o.state, o.attempts, o.bundle FROM ocean_outboundmessage o "
                       "JOIN referrals_referral r ON r.id = o.referral_id ORDER BY o.id")
    return [(i, ref, state, attempts, (b if isinstance(b, dict) else json.loads(b))["id"]) for i, ref, state, attempts, b in rows]


def test_after_an_hour_of_ocean_down_everything_is_delivered_once_in_order(harbour, ocean):
    port, handler = ocean.server.server_address[1], ocean.server.RequestHandlerClass
    take_down(ocean)
    harbour.start_process("worker", ["worker"])
    wait_for(lambda: harbour.sql("SELECT count(*) FROM core_workerheartbeat")[0][0], timeout=60, what="the worker loop")
    out = harbour.shell("import json; from tests.production.workload import outbox_setup; "
                        f"print(json.dumps(outbox_setup({ocean.url!r}, {REFERRALS})))")
    refs = json.loads(out.strip().splitlines()[-1])
    assert len(outbound(harbour)) == 3 * REFERRALS
    # The hour starts when every referral's first message has met the closed port once.
    wait_for(lambda: harbour.sql("SELECT count(DISTINCT referral_id) FROM ocean_outboundmessage WHERE attempts > 0")
             == [(REFERRALS,)], timeout=30, interval=0.05, what="the first attempts")
    down_since = time.monotonic()
    time.sleep(HOUR)
    during = outbound(harbour)
    assert not ocean.requests
    assert {state for _, _, state, _, _ in during} <= {"pending", "sending", "failed"}, "a message gave up or claimed success"
    first = {}
    for row in during:
        first.setdefault(row[1], row)
    heads = list(first.values())  # each referral's first message: the only one tried so far
    assert sorted(first) == sorted(refs)
    assert all(row[3] >= 3 for row in heads), f"too few retries in the hour: {[row[3] for row in heads]}"
    assert all(row[3] == 0 for row in during if row not in heads), "a later message was tried before the first"

    bring_back(ocean, port, handler)
    wait_for(lambda: all(row[2] == "delivered" for row in outbound(harbour)), timeout=60, interval=0.2,
             what="the outbox to deliver everything once Ocean is back")
    assert time.monotonic() - down_since >= HOUR

    sent = [call.json["id"] for call in ocean.calls("process")]
    rows = outbound(harbour)
    assert sorted(sent) == sorted(bundle_id for *_, bundle_id in rows), "a message missing or sent twice"
    assert len(set(sent)) == len(sent) == 3 * REFERRALS
    position = {bundle_id: n for n, bundle_id in enumerate(sent)}
    per_referral = collections.defaultdict(list)
    for _, ref, _, _, bundle_id in rows:  # id order: the order the clinic acted in
        per_referral[ref].append(position[bundle_id])
    assert all(order == sorted(order) for order in per_referral.values()), dict(per_referral)
