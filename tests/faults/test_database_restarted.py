"""PostgreSQL restarts between deliveries: the next deliveries are stored at once, none answered 503.

Each server thread keeps its database connection between calls (CONN_MAX_AGE); a restart kills
them all. Django's health check would notice with a `SELECT 1` before every call's first
statement; the intake skips that round trip and instead runs its statement (the key lookup,
or the INSERT once the key is remembered) once more on a new connection when the kept one is
gone (harbour/core/cursors.py).
This holds it to that. The test starts a PostgreSQL cluster of its own, so it runs in both
passes of the suite.
"""
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.faults.helpers import INTAKE, KEY_HEADER, clinic_with_key, report
from tests.faults.postgres import Cluster
from tests.production.workload import bundle
from tests.servers import start_harbour

pytestmark = [pytest.mark.servers, pytest.mark.timeout(120)]

# More calls at once than the server has threads, so that every thread holds a connection.
AT_ONCE, ROUNDS = 12, 3


@pytest.fixture
def cluster_and_harbour(tmp_path, request):
    cluster = Cluster()
    try:
        server = start_harbour(tmp_path / "harbour", worker=False, env={"DATABASE_URL": cluster.url()})
    except Exception:
        cluster.destroy()
        raise
    yield cluster, server
    report(server, request)
    server.stop()
    cluster.destroy()


def post_many(base_url: str, key: str) -> list[int]:
    def post(_):
        body = bundle(str(uuid.uuid4()), bundle_id=str(uuid.uuid4()))
        with httpx.Client(timeout=30) as client:  # a connection each: the calls spread over the threads
            response = client.post(base_url + INTAKE, content=body,
                                   headers={KEY_HEADER: key, "Content-Type": "application/fhir+json"})
        return response.status_code

    with ThreadPoolExecutor(AT_ONCE) as pool:
        return [status for _ in range(ROUNDS) for status in pool.map(post, range(AT_ONCE))]


def test_deliveries_after_a_database_restart_are_stored_without_a_503(cluster_and_harbour):
    cluster, harbour = cluster_and_harbour
    key = clinic_with_key(harbour)
    assert set(post_many(harbour.base_url, key)) == {200}

    cluster.stop("fast")  # every connection the server kept is closed by the server
    cluster.start()

    after = post_many(harbour.base_url, key)
    assert after.count(200) == len(after), f"answers after the restart: {sorted(after)}"
    stored = harbour.sql("SELECT count(*) FROM intake_inboundmessage")
    assert stored == [(2 * AT_ONCE * ROUNDS,)]
