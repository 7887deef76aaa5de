"""Health endpoints for load balancers, orchestrators and monitoring.

- /healthz, liveness: the process answers; it touches nothing else. A load balancer may route
  on it: the intake answers 503 by itself when the database is down, so Ocean retries.
- /readyz, readiness: the database answers a query, and a worker beat within
  HARBOUR_WORKER_STALE_SECONDS. 503 with the failing check named otherwise. Use it for
  monitoring and deploy gates; routing web traffic on it would also turn intake away while
  only the worker is down, and storing bundles needs no worker.
"""
from django.conf import settings
from django.db import DatabaseError, InterfaceError, connection
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache

from harbour.core.models import WorkerHeartbeat


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
    except (DatabaseError, InterfaceError):
        checks["database"] = "unavailable"
        checks["worker"] = "unknown"
    else:
        checks["database"] = "ok"
        if latest is None:
            checks["worker"] = "missing"
        else:
            age = max(0.0, (timezone.now() - latest).total_seconds())
            body["worker_last_beat_seconds"] = round(age, 1)
            checks["worker"] = "ok" if age <= settings.HARBOUR_WORKER_STALE_SECONDS else "stale"
    ready = all(value == "ok" for value in checks.values())
    body = {"status": "ok" if ready else "unavailable", **body}
    return JsonResponse(body, status=200 if ready else 503)
