"""Health endpoints for load balancers, orchestrators and monitoring.

- /healthz, liveness: the process answers; it touches nothing else. A load balancer may route
  on it: the intake answers 503 by itself when the database is down, so Ocean retries.
- /readyz, readiness: the database answers a query, has every migration of this code applied,
  and a worker beat within HARBOUR_WORKER_STALE_SECONDS. 503 with the failing check named
  otherwise. Use it for monitoring and deploy gates; routing web traffic on it would also turn
  intake away while only the worker is down, and storing bundles needs no worker.

Both answer whatever the Host header (ProbeMiddleware): load balancers and orchestrators probe
by IP address, which ALLOWED_HOSTS (rightly) refuses for every other page.
"""
import threading

from django.conf import settings
from django.db import DatabaseError, InterfaceError, connection
from django.db.migrations.executor import MigrationExecutor
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache

from harbour.core.models import WorkerHeartbeat

# Once a process has seen every migration applied, it stays so for its code: not checked again
# (loading the migration graph reads every migration file).
_migrated = threading.Event()


@never_cache
def healthz(request):
    return JsonResponse({"status": "ok"})


@never_cache
def readyz(request):
    checks: dict[str, str] = {}
    body: dict = {"checks": checks}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        latest = WorkerHeartbeat.latest()
        migrations = "ok" if _all_migrations_applied() else "pending"
    except (DatabaseError, InterfaceError):
        checks["database"] = "unavailable"
        checks["worker"] = "unknown"
    else:
        checks["database"] = "ok"
        checks["migrations"] = migrations  # pending: run `harbour migrate` before serving this code
        if latest is None:
            checks["worker"] = "missing"
        else:
            age = max(0.0, (timezone.now() - latest).total_seconds())
            body["worker_last_beat_seconds"] = round(age, 1)
            checks["worker"] = "ok" if age <= settings.HARBOUR_WORKER_STALE_SECONDS else "stale"
    ready = all(value == "ok" for value in checks.values())
    body = {"status": "ok" if ready else "unavailable", **body}
    return JsonResponse(body, status=200 if ready else 503)


def _all_migrations_applied() -> bool:
    if not _migrated.is_set():
        executor = MigrationExecutor(connection)
        if not executor.migration_plan(executor.loader.graph.leaf_nodes()):
            _migrated.set()
    return _migrated.is_set()


PROBES = {"/healthz": healthz, "/readyz": readyz}


class ProbeMiddleware:
    """Answers the probes before Django checks the Host header (CommonMiddleware): a load
    balancer's probe by IP address is not a request for a clinic's pages."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        probe = PROBES.get(request.path_info)
        if probe is not None and request.method in ("GET", "HEAD"):
            return probe(request)
        return self.get_response(request)
