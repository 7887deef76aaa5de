"""Several worker processes share the inbound queue: each message processed exactly once, and
each referral's messages in order.

Real processes: Harbour's worker loop (probe_worker.py: run_forever plus a log of what each
process committed) on a database of its own, on the suite's engine. PostgreSQL: 4 workers,
claims with SELECT ... FOR UPDATE SKIP LOCKED. SQLite: 2 workers, serialised by SQLite's write
lock (the same code; SQLite has no SKIP LOCKED). 2,000 messages across 200 referrals, queued
before the workers start, each referral's ten messages one after the other: the case where
workers would most often pick two messages of one referral at once.
"""
import collections
import json
import sys

import pytest

from tests.servers import ROOT, start_harbour, wait_for

pytestmark = [pytest.mark.servers, pytest.mark.timeout(240)]

REFERRALS, PER_REFERRAL = 200, 10


def test_many_workers_process_each_message_once_in_per_referral_order(tmp_path):
    server = start_harbour(tmp_path / "harbour", web=False, worker=False)
    try:
        postgres = server.database_url.startswith("postgres")
        workers = 4 if postgres else 2
        out = server.shell(
            "import json; from tests.production.workload import fill_queue; "
            f"print(json.dumps(fill_queue({REFERRALS}, {PER_REFERRAL}, interleave=False)))"
        )
        refs = json.loads(out.strip().splitlines()[-1])
        total = REFERRALS * PER_REFERRAL
        assert server.sql("SELECT count(*) FROM intake_inboundmessage WHERE state = 'pending'") == [(total,)]

        probe_log = tmp_path / "probe.log"
        server.env["HARBOUR_PROBE_LOG"] = str(probe_log)
        for n in range(workers):
            server.start_process(f"worker-{n}", [sys.executable, str(ROOT / "tests/production/probe_worker.py")],
                                 raw=True)

        def done():
            return server.sql("SELECT count(*) FROM intake_inboundmessage WHERE state = 'pending'")[0][0] == 0

        wait_for(done, timeout=200, interval=0.5, what="the workers to empty the queue")
        server.stop_processes()

        # Exactly once: every message committed by exactly one process, one attempt, processed.
        lines = [line.split() for line in probe_log.read_text().splitlines()]
        processed = [int(message_id) for _, what, message_id in lines if what == "processed"]
        assert len(processed) == total and len(set(processed)) == total
        by_process = collections.Counter(pid for pid, what, _ in lines if what == "processed")
        assert len(by_process) == workers, f"not every worker took part: {by_process}"
        rows = server.sql("SELECT state, attempts, count(*) FROM intake_inboundmessage GROUP BY state, attempts")
        assert rows == [("processed", 1, total)]

        # One referral per ref, and each referral's timeline in the order of its messages.
        assert server.sql("SELECT count(*) FROM referrals_referral") == [(REFERRALS,)]
        events = server.sql(
            "SELECT r.ocean_ref, e.inbound_message_id, m.id FROM referrals_event e "
            "JOIN referrals_referral r ON r.id = e.referral_id "
            "JOIN intake_inboundmessage m ON m.id = e.inbound_message_id ORDER BY e.id"
        )
        timelines = collections.defaultdict(list)
        for ref, message_id, _ in events:
            if not timelines[ref] or timelines[ref][-1] != message_id:
                timelines[ref].append(message_id)
        messages = collections.defaultdict(list)
        for ref, message_id in server.sql("SELECT referral_ref, id FROM intake_inboundmessage ORDER BY id"):
            messages[ref].append(message_id)
        assert sorted(timelines) == sorted(refs)
        out_of_order = [ref for ref in refs if timelines[ref] != messages[ref]]
        assert not out_of_order, f"{len(out_of_order)} referrals applied out of order, e.g. {timelines[out_of_order[0]]}"
        # The first message created each referral; the last one's timestamp is its snapshot.
        first_codes = collections.Counter(
            code for (code,) in server.sql(
                "SELECT e.code FROM referrals_event e WHERE e.id IN "
                "(SELECT min(id) FROM referrals_event GROUP BY referral_id)")
        )
        assert first_codes == {"referral_received": REFERRALS}
    finally:
        server.stop()
