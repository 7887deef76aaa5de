"""The web process killed with SIGKILL while 50 clients post.

Every bundle that got a 2xx is in the database; the others get no answer (or a 5xx), are posted
again by their client, and end stored exactly once. gunicorn's master and its worker are killed
together (the whole process group), then `harbour serve` starts again on the same port.
"""
import json
import time
import uuid

import pytest

from tests.faults.helpers import INTAKE, Poster, clinic_with_key, report
from tests.production.workload import bundle
from tests.servers import start_harbour, wait_for

pytestmark = [pytest.mark.servers, pytest.mark.timeout(120)]

CLIENTS, PER_CLIENT = 50, 8


@pytest.fixture
def harbour(tmp_path, request):
    server = start_harbour(tmp_path / "harbour", worker=False, env={"HARBOUR_LOG_FORMAT": "json"})
    yield server
    report(server, request)
    server.stop()


def test_sigkill_of_the_web_process_loses_no_acknowledged_bundle(harbour):
    key = clinic_with_key(harbour)
    batches = [[(bid := str(uuid.uuid4()), bundle(str(uuid.uuid4()), bundle_id=bid)) for _ in range(PER_CLIENT)]
               for _ in range(CLIENTS)]
    total = CLIENTS * PER_CLIENT
    poster = Poster(harbour.base_url, key, deadline=time.monotonic() + 60)
    poster.run(batches)

    wait_for(lambda: poster.count() >= total // 4, timeout=30, interval=0.01, what="a quarter of the bundles acknowledged")
    harbour.kill("serve")  # SIGKILL to gunicorn's master and worker, mid-load
    acked_at_kill = dict(poster.acked)
    killed_at = time.monotonic()
    time.sleep(0.3)  # clients meet a closed port meanwhile
    harbour.start_web()
    harbour.wait_ready()
    poster.join()

    assert len(poster.acked) == total, f"{total - len(poster.acked)} bundles never acknowledged"
    assert len(acked_at_kill) < total, "the kill came after the load: nothing was tested"
    failed = [a for a in poster.attempts if a.status is None or a.status >= 300]
    assert failed and any(a.started >= killed_at for a in failed), "no client saw the outage"
    assert all(a.status in (None, 200) for a in poster.attempts), {a.status for a in poster.attempts}

    rows = dict(harbour.sql("SELECT bundle_id, count(*) FROM intake_inboundmessage GROUP BY bundle_id"))
    assert set(acked_at_kill) <= set(rows), "a bundle acknowledged before the kill is missing"
    assert set(rows) == set(poster.acked), "stored and acknowledged bundles differ"
    assert set(rows.values()) == {1}, "a bundle was stored twice"

    # The server's log (gunicorn's lines and Django's, before and after the kill) is JSON lines;
    # each acknowledged post has its access line with a request id and the clinic's id.
    lines = [json.loads(line) for line in (harbour.var_dir / "logs" / "serve.log").read_text().splitlines() if line.strip()]
    assert any(line["logger"] == "gunicorn.error" for line in lines)
    accesses = [line for line in lines if line["logger"] == "harbour.access" and line["path"] == INTAKE]
    assert sum(1 for line in accesses if line["status"] == 200) >= total
    assert all(len(line["request_id"]) == 32 and isinstance(line["clinic_id"], int) for line in accesses)
