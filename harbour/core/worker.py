"""The worker loop: everything that happens after a commit (processing, deliveries, fetches).

Each app in settings.HARBOUR_WORKER_APPS may have a `jobs.py` with `WORKER_JOBS`, a list of functions that take no
argument, do one bounded batch of work from the database and return how many items they
handled. The database is the only queue, so any number of workers can run.
"""
import importlib
import logging
import signal
import time

from django.apps import apps
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, close_old_connections, connection

from harbour.core.env import safe_error_line

log = logging.getLogger("harbour.worker")

# While the database cannot be reached the loop waits FIRST, then twice as long each time, up to
# CAP seconds, and says so once per wait (WARNING); the first pass that connects resets it.
BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_CAP_SECONDS = 30.0


def discover_jobs() -> list:
    """The WORKER_JOBS of the apps this server runs (settings.HARBOUR_WORKER_APPS)."""
    jobs = []
    for config in apps.get_app_configs():
        if config.name not in settings.HARBOUR_WORKER_APPS:
            continue
        try:
            module = importlib.import_module(f"{config.name}.jobs")
        except ModuleNotFoundError as exc:
            if exc.name != f"{config.name}.jobs":
                raise
            continue
        jobs.extend(getattr(module, "WORKER_JOBS", []))
    return jobs


def run_once(jobs=None) -> int:
    """One pass over every job; returns how many items were handled. Tests call this directly."""
    handled = 0
    for job in jobs if jobs is not None else discover_jobs():
        try:
            handled += job() or 0
        except Exception:
            # A job's own items record their failures; this guards the loop against the unexpected.
            log.exception("worker job %s failed", getattr(job, "__name__", job))
    return handled


def run_until_idle(max_passes: int = 1000) -> int:
    """Repeat passes until nothing is left to do (for tests and the `--once` flag)."""
    total = 0
    jobs = discover_jobs()
    # A database that cannot be reached stops here (`harbour worker --once` says so in one line)
    # rather than failing every job of every pass.
    connection.ensure_connection()
    for _ in range(max_passes):
        handled = run_once(jobs)
        total += handled
        if not handled:
            break
    return total


def database_problem() -> Exception | None:
    """None when the database can be used, else the error connecting to it. A connection that
    failed is dropped first (close_old_connections), so this really tries to reconnect."""
    try:
        close_old_connections()
        connection.ensure_connection()
    except DatabaseError as exc:
        return exc
    return None


def run_pass(jobs) -> tuple[int, Exception | None]:
    """Like run_once, but a job failing because the database is gone ends the pass: returns
    (handled, the connection error) so the loop waits instead of failing every job."""
    handled = 0
    for job in jobs:
        try:
            handled += job() or 0
        except Exception as exc:
            if isinstance(exc, (OperationalError, InterfaceError)):
                problem = database_problem()
                if problem is not None:
                    return handled, problem
            log.exception("worker job %s failed", getattr(job, "__name__", job))
    return handled, None


class Backoff:
    """How long to wait after each failed attempt to reach the database: FIRST, doubling, CAP."""

    def __init__(self, first: float | None = None, cap: float | None = None):
        self.first = BACKOFF_FIRST_SECONDS if first is None else first
        self.cap = BACKOFF_CAP_SECONDS if cap is None else cap
        self.delay = 0.0

    def failed(self, exc: Exception) -> float:
        self.delay = self.first if not self.delay else min(self.delay * 2, self.cap)
        log.warning("database unavailable (%s); the worker tries again in %g s", safe_error_line(exc), self.delay)
        return self.delay

    def succeeded(self) -> None:
        if self.delay:
            log.info("database reachable again; the worker resumes")
        self.delay = 0.0


def run_forever(idle_seconds: float | None = None) -> None:
    """Loop until SIGTERM/SIGINT: run the jobs, sleep when idle, beat the heartbeat (/readyz).

    A database outage does not stop the loop: it waits (Backoff: 1 s doubling up to 30 s, one
    WARNING per wait), then reconnects (close_old_connections drops a broken connection).
    """
    stopping = False

    def stop(signum, frame):
        nonlocal stopping
        stopping = True

    def sleep(seconds: float) -> None:
        # In slices, so SIGTERM during a long wait stops the worker promptly.
        end = time.monotonic() + seconds
        while not stopping and (left := end - time.monotonic()) > 0:
            time.sleep(min(left, 0.25))

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    idle = settings.HARBOUR_WORKER_IDLE_SECONDS if idle_seconds is None else idle_seconds
    jobs = discover_jobs()
    heartbeat = Heartbeat()
    backoff = Backoff()
    log.info("worker started with %d jobs", len(jobs))
    while not stopping:
        problem = database_problem()
        if problem is None:
            heartbeat.maybe_beat()
            handled, problem = run_pass(jobs)
            heartbeat.handled += handled
        if problem is not None:
            sleep(backoff.failed(problem))
            continue
        backoff.succeeded()
        if not handled:
            sleep(idle)
    heartbeat.remove()
    log.info("worker stopped")


class Heartbeat:
    """This process's WorkerHeartbeat row, written at most every HARBOUR_WORKER_HEARTBEAT_SECONDS."""

    def __init__(self):
        from django.utils import timezone

        from harbour.core.models import WorkerHeartbeat

        self.model = WorkerHeartbeat
        self.started_at = timezone.now()
        self.name = WorkerHeartbeat.process_name(self.started_at)
        self.period = float(getattr(settings, "HARBOUR_WORKER_HEARTBEAT_SECONDS", 10))
        self.last = None
        self.handled = 0

    def maybe_beat(self) -> None:
        now = time.monotonic()
        if self.last is not None and now - self.last < self.period:
            return
        try:
            self.model.beat(self.name, self.started_at, self.handled)
            if self.last is None:
                self._prune()
            self.last = now
        except DatabaseError:
            log.warning("worker heartbeat could not be written (database unavailable?)")
            self.last = now  # try again after a period, not on every pass

    def _prune(self) -> None:
        from datetime import timedelta

        from django.utils import timezone

        # Rows of processes that stopped without saying so (killed, crashed) fade after a day.
        self.model.objects.filter(beat_at__lt=timezone.now() - timedelta(days=1)).delete()

    def remove(self) -> None:
        try:
            self.model.objects.filter(name=self.name).delete()
        except DatabaseError:
            pass
