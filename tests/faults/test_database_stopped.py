"""The database becomes unavailable while Ocean posts: the intake answers 503 (never a 2xx for
a bundle it did not keep), and once the database is back everything is stored exactly once and
processed; the web process and the worker recover by themselves.

PostgreSQL (the suite's PostgreSQL run): a cluster of the test's own, stopped with
`pg_ctl -m immediate` (as a crash would) for four seconds, then started again: the real case.
SQLite (the suite's SQLite run): an embedded file cannot be "stopped"; what SQLite can do is
refuse writes while another process holds its write lock. The test holds it (BEGIN EXCLUSIVE)
for four seconds with the server's busy timeout at 0.5 s (HARBOUR_SQLITE_TIMEOUT_SECONDS; 20 s by
default, where a four-second lock would only slow answers down).
"""
import os
import sqlite3
import time
import uuid

import httpx
import pytest

from tests.faults.helpers import Poster, clinic_with_key, report
from tests.faults.postgres import Cluster
from tests.production.workload import bundle
from tests.servers import start_harbour, wait_for

pytestmark = [pytest.mark.servers, pytest.mark.timeout(150)]

ENGINE = "postgresql" if os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")) else "sqlite"
# Few clients: on SQLite, calls waiting for the lock are answered one after the other (about
# 0.5 s each), so more clients would only queue.
CLIENTS, PER_CLIENT = 4, 50
OUTAGE_SECONDS = 4.0


class PostgresOutage:
    def __init__(self, tmp_path):
        self.cluster = Cluster()
        self.env = {"DATABASE_URL": self.cluster.url()}

    def begin(self):
        self.cluster.stop("immediate")

    def end(self):
        self.cluster.start()

    def close(self):
        self.cluster.destroy()


class SqliteOutage:
    def __init__(self, tmp_path):
        self.env = {"HARBOUR_SQLITE_TIMEOUT_SECONDS": "0.5"}
        self.holder = None

    def begin(self):
        self.holder = sqlite3.connect(self.path, isolation_level=None, timeout=10)
        self.holder.execute("BEGIN EXCLUSIVE")

    def end(self):
        self.holder.execute("ROLLBACK")
        self.holder.close()

    def close(self):
        if self.holder is not None:
            self.holder.close()


@pytest.fixture
def outage_and_harbour(tmp_path, request):
    outage = (PostgresOutage if ENGINE == "postgresql" else SqliteOutage)(tmp_path)
    try:
        server = start_harbour(tmp_path / "harbour", env=outage.env)
    except Exception:
        outage.close()
        raise
    outage.path = server.database_url.removeprefix("sqlite:///")
    yield outage, server
    report(server, request)
    server.stop()
    outage.close()


@pytest.mark.parametrize("engine", [ENGINE])  # the test's id names the variant that ran
def test_database_outage_during_intake_answers_503_and_loses_nothing(outage_and_harbour, engine):
    outage, harbour = outage_and_harbour
    key = clinic_with_key(harbour)
    batches = [[(bid := str(uuid.uuid4()), bundle(str(uuid.uuid4()), bundle_id=bid)) for _ in range(PER_CLIENT)]
               for _ in range(CLIENTS)]
    total = CLIENTS * PER_CLIENT
    poster = Poster(harbour.base_url, key, deadline=time.monotonic() + 90)
    poster.run(batches)

    wait_for(lambda: poster.count() >= total // 4, timeout=30, interval=0.01, what="a quarter acknowledged")
    outage.begin()
    down_at = time.monotonic()
    time.sleep(OUTAGE_SECONDS / 2)
    readiness = httpx.get(harbour.base_url + "/readyz", timeout=10)
    time.sleep(OUTAGE_SECONDS / 2)
    up_at = time.monotonic()
    outage.end()
    poster.join()

    during = [a for a in poster.attempts if a.started >= down_at and a.ended <= up_at]
    assert len(during) >= CLIENTS, "too few calls fell inside the outage to say anything"
    assert {a.status for a in during} == {503}, f"answers during the outage: {sorted({a.status for a in during}, key=str)}"
    assert all(a.status in (200, 503) for a in poster.attempts), {a.status for a in poster.attempts}
    if engine == "postgresql":
        assert readiness.status_code == 503 and readiness.json()["checks"]["database"] == "unavailable"

    assert len(poster.acked) == total, f"{total - len(poster.acked)} bundles never acknowledged after the outage"
    rows = dict(harbour.sql("SELECT bundle_id, count(*) FROM intake_inboundmessage GROUP BY bundle_id"))
    assert set(rows) == set(poster.acked) and set(rows.values()) == {1}

    # The worker lived through it: everything is processed, each message once.
    wait_for(lambda: harbour.sql("SELECT count(*) FROM intake_inboundmessage WHERE state = 'processed'") == [(total,)],
             timeout=60, interval=0.25, what="the worker to process everything after the outage")
    assert harbour.sql("SELECT max(attempts) FROM intake_inboundmessage") == [(1,)]
    assert httpx.get(harbour.base_url + "/readyz", timeout=10).status_code in (200, 503)
