"""/healthz (liveness) and /readyz (database and the workers' heartbeat)."""
import os
import signal
from datetime import timedelta

import pytest
from django.db import OperationalError, connection
from django.test import Client
from django.utils import timezone

from harbour.core import worker
from harbour.core.models import WorkerHeartbeat

pytestmark = pytest.mark.django_db


def get(path):
    response = Client().get(path)
    return response.status_code, response.json(), response


def test_healthz_answers_without_touching_the_database(django_assert_num_queries):
    with django_assert_num_queries(0):
        status, body, response = get("/healthz")
    assert (status, body) == (200, {"status": "ok"})
    assert "no-cache" in response["Cache-Control"]


def test_readyz_is_503_until_a_worker_has_beaten():
    status, body, _ = get("/readyz")
    assert status == 503
    assert body["checks"] == {"database": "ok", "migrations": "ok", "worker": "missing"}


def test_readyz_is_200_with_a_recent_heartbeat():
    started = timezone.now()
    WorkerHeartbeat.beat("host:1:1", started, handled=3)
    status, body, _ = get("/readyz")
    assert status == 200
    assert body["status"] == "ok" and body["checks"] == {"database": "ok", "migrations": "ok", "worker": "ok"}
    assert 0 <= body["worker_last_beat_seconds"] < 60


def test_readyz_is_503_when_the_newest_heartbeat_is_stale(settings):
    settings.HARBOUR_WORKER_STALE_SECONDS = 30
    WorkerHeartbeat.objects.create(name="old", hostname="h", pid=1, started_at=timezone.now(),
                                   beat_at=timezone.now() - timedelta(seconds=31))
    status, body, _ = get("/readyz")
    assert (status, body["checks"]["worker"]) == (503, "stale")
    WorkerHeartbeat.beat("fresh", timezone.now(), handled=0)  # another worker is alive: ready
    assert get("/readyz")[0] == 200


def test_readyz_is_503_when_the_database_fails():
    WorkerHeartbeat.beat("host:1:1", timezone.now(), handled=0)

    def refuse(execute, sql, params, many, context):
        raise OperationalError("connection refused")

    with connection.execute_wrapper(refuse):
        status, body, _ = get("/readyz")
    assert status == 503
    assert body == {"status": "unavailable", "checks": {"database": "unavailable", "worker": "unknown"}}


@pytest.mark.django_db(transaction=True)  # autocommit, as the worker runs (its loop closes stale connections)
def test_the_worker_loop_beats_while_it_runs_and_removes_its_row_when_stopped(monkeypatch):
    seen = []

    def job():
        # The loop beats before its first pass; stop after looking, whatever happens.
        try:
            seen.append(list(WorkerHeartbeat.objects.values_list("pid", flat=True)))
        finally:
            os.kill(os.getpid(), signal.SIGTERM)
        return 0

    monkeypatch.setattr(worker, "discover_jobs", lambda: [job])
    handlers = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    try:
        worker.run_forever(idle_seconds=0)
    finally:
        signal.signal(signal.SIGTERM, handlers[0])
        signal.signal(signal.SIGINT, handlers[1])
    assert seen == [[os.getpid()]]
    assert not WorkerHeartbeat.objects.exists()


def test_the_heartbeat_prunes_rows_of_processes_gone_for_a_day():
    long_ago = timezone.now() - timedelta(days=2)
    WorkerHeartbeat.objects.create(name="killed", hostname="h", pid=9, started_at=long_ago, beat_at=long_ago)
    heartbeat = worker.Heartbeat()
    heartbeat.maybe_beat()
    assert list(WorkerHeartbeat.objects.values_list("name", flat=True)) == [heartbeat.name]
    heartbeat.maybe_beat()  # within the period: no second write
    assert WorkerHeartbeat.objects.get().beat_at <= timezone.now()


@pytest.mark.django_db(transaction=True)  # autocommit, as the worker runs
def test_a_database_outage_does_not_stop_the_heartbeat(caplog):
    heartbeat = worker.Heartbeat()

    def refuse(execute, sql, params, many, context):
        raise OperationalError("server closed the connection")

    with connection.execute_wrapper(refuse):
        heartbeat.maybe_beat()
    assert "heartbeat could not be written" in caplog.text
    heartbeat.last = None  # the period has passed
    heartbeat.maybe_beat()
    assert WorkerHeartbeat.objects.filter(name=heartbeat.name).exists()


def test_readyz_is_503_while_a_migration_of_this_code_is_not_applied(monkeypatch):
    """A deploy gate: new code started before `harbour migrate` served 500s on some pages."""
    from django.db.migrations.recorder import MigrationRecorder

    from harbour.core import health

    monkeypatch.setattr(health, "_migrated", health.threading.Event())  # this process has not seen it yet
    WorkerHeartbeat.beat("host:1:1", timezone.now(), handled=0)
    from django.db import connection
    from django.db.migrations.loader import MigrationLoader

    (_, latest), = MigrationLoader(connection).graph.leaf_nodes("referrals")  # this code's newest
    MigrationRecorder.Migration.objects.filter(app="referrals", name=latest).delete()
    status, body, _ = get("/readyz")
    assert (status, body["checks"]["migrations"]) == (503, "pending")
    MigrationRecorder.Migration.objects.create(app="referrals", name=latest)
    assert get("/readyz")[0] == 200


@pytest.mark.parametrize("host", ["10.0.0.5", "10.0.0.5:8000"])
def test_probes_answer_whatever_the_host_header(settings, host):
    """Load balancers probe by IP address; every other page keeps refusing a host not allowed."""
    settings.ALLOWED_HOSTS = ["clinique.example.org"]
    WorkerHeartbeat.beat("host:1:1", timezone.now(), handled=0)
    client = Client(HTTP_HOST=host)
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.get("/accounts/login/").status_code == 400
    assert client.post("/healthz").status_code == 400  # only GET and HEAD skip the host check
