"""On PostgreSQL the intake's INSERT and the worker's plain INSERTs are prepared on the server
after a few runs on a connection (psycopg's prepare_threshold, which Django leaves off unless
told), and never with HARBOUR_DB_PREPARED_STATEMENTS=false (for poolers that do not keep them).

Read from the cluster's own statement log: psycopg names the statements it prepares `_pg3_N`,
where an unprepared one runs as `<unnamed>`. The test starts a PostgreSQL cluster of its own,
so it runs in both passes of the suite.
"""
import re
import uuid

import httpx
import psycopg
import pytest

from tests.faults.helpers import INTAKE, KEY_HEADER, clinic_with_key, report
from tests.faults.postgres import Cluster
from tests.production.workload import bundle
from tests.servers import start_harbour, wait_for

pytestmark = [pytest.mark.servers, pytest.mark.timeout(120)]

# Sequential posts on one keep-alive connection: a server thread runs well over five of each statement.
POSTS = 12


def prepared_and_unnamed(log: str, table: str) -> tuple[int, int]:
    inserts = re.findall(rf'execute (\S+?): INSERT INTO "{table}"', log)
    return sum(name.startswith("_pg3_") for name in inserts), inserts.count("<unnamed>")


@pytest.mark.parametrize("setting", ["true", "false"])
def test_hot_statements_are_prepared_unless_turned_off(tmp_path, request, setting):
    cluster = Cluster()
    try:
        with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET log_statement = 'all'")
            conn.execute("SELECT pg_reload_conf()")
        harbour = start_harbour(tmp_path / "harbour", env={
            "DATABASE_URL": cluster.url(), "HARBOUR_DB_PREPARED_STATEMENTS": setting,
            "HARBOUR_WEB_WORKERS": "1", "HARBOUR_WEB_THREADS": "1",
        })
        try:
            key = clinic_with_key(harbour)
            with httpx.Client(base_url=harbour.base_url, timeout=30) as client:
                for _ in range(POSTS):
                    response = client.post(INTAKE, content=bundle(str(uuid.uuid4()), bundle_id=str(uuid.uuid4())),
                                           headers={KEY_HEADER: key, "Content-Type": "application/fhir+json"})
                    assert response.status_code == 200
            wait_for(lambda: harbour.sql("SELECT count(*) FROM referrals_referral") == [(POSTS,)],
                     what="the worker's referrals")
        finally:
            report(harbour, request)
            harbour.stop()
        log = (cluster.dir / "log").read_text(errors="replace")
    finally:
        cluster.destroy()

    for table in ("intake_inboundmessage", "referrals_referral"):
        prepared, unnamed = prepared_and_unnamed(log, table)
        assert prepared + unnamed >= POSTS, f"{table}: the statement log misses the INSERTs"
        if setting == "true":
            assert prepared > 0, f"{table}: never prepared"
        else:
            assert prepared == 0, f"{table}: prepared although turned off"
