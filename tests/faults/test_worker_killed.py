"""A worker killed (SIGKILL) in the middle of a message: its transaction dies with it, the
message is still pending, and after a restart it is processed once, with one set of effects.

The first worker is Harbour's loop with a probe (tests/production/probe_worker.py) that stops
inside the chosen message's transaction, after the claim; the second is `harbour worker`.
"""
import json
import sys
import time

import pytest

from tests.faults.helpers import report
from tests.servers import ROOT, start_harbour, wait_for

pytestmark = [pytest.mark.servers, pytest.mark.timeout(120)]


@pytest.fixture
def harbour(tmp_path, request):
    server = start_harbour(tmp_path / "harbour", web=False, worker=False)
    yield server
    report(server, request)
    server.stop()


def test_a_message_interrupted_by_sigkill_is_processed_once_after_restart(harbour, tmp_path):
    out = harbour.shell("import json; from tests.production.workload import fill_queue; print(json.dumps(fill_queue(5, 3)))")
    refs = json.loads(out.strip().splitlines()[-1])
    held_ref = refs[2]
    [(held_id,)] = harbour.sql("SELECT min(id) FROM intake_inboundmessage WHERE referral_ref = %s", (held_ref,))

    probe_log = tmp_path / "probe.log"
    harbour.env.update(HARBOUR_PROBE_LOG=str(probe_log), HARBOUR_PROBE_HOLD_REF=held_ref)
    harbour.start_process("probe", [sys.executable, str(ROOT / "tests/production/probe_worker.py")], raw=True)
    wait_for(lambda: probe_log.exists() and f"holding {held_id}" in probe_log.read_text(), timeout=60,
             what="the probe worker to stop inside the message")
    time.sleep(0.2)  # still inside: the probe never leaves
    harbour.kill("probe")
    done_before = [int(line.split()[2]) for line in probe_log.read_text().splitlines() if " processed " in line]
    assert held_id not in done_before and len(done_before) == 2  # refs[0] and refs[1]'s first messages

    # Nothing of the interrupted work survived: the message waits, untouched.
    assert harbour.sql("SELECT state, attempts FROM intake_inboundmessage WHERE id = %s", (held_id,)) == [("pending", 0)]
    assert harbour.sql("SELECT count(*) FROM referrals_referral WHERE ocean_ref = %s", (held_ref,)) == [(0,)]

    harbour.start_process("worker", ["worker"])
    wait_for(lambda: harbour.sql("SELECT count(*) FROM intake_inboundmessage WHERE state = 'pending'") == [(0,)],
             timeout=60, interval=0.2, what="the restarted worker to empty the queue")
    assert harbour.sql("SELECT state, attempts, count(*) FROM intake_inboundmessage GROUP BY state, attempts") == [
        ("processed", 1, 15)
    ]
    assert harbour.sql("SELECT count(*) FROM referrals_referral") == [(5,)]
    # The interrupted message has its effects once: the same timeline entries as the first
    # message of a referral no one interrupted (refs[0]), no more.
    def first_message_entries(ref):
        return harbour.sql(
            "SELECT e.code FROM referrals_event e JOIN referrals_referral r ON r.id = e.referral_id "
            "WHERE r.ocean_ref = %s AND e.inbound_message_id = "
            "(SELECT min(id) FROM intake_inboundmessage WHERE referral_ref = %s) ORDER BY e.code", (ref, ref)
        )

    held_entries = first_message_entries(held_ref)
    assert ("referral_received",) in held_entries
    assert held_entries == first_message_entries(refs[0])
