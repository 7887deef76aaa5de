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
from django.db import close_old_connections

log = logging.getLogger("harbour.worker")


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
    for _ in range(max_passes):
        handled = run_once(jobs)
        total += handled
        if not handled:
            break
    return total


def run_forever(idle_seconds: float | None = None) -> None:
    stopping = False

    def stop(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    idle = settings.HARBOUR_WORKER_IDLE_SECONDS if idle_seconds is None else idle_seconds
    jobs = discover_jobs()
    log.info("worker started with %d jobs", len(jobs))
    while not stopping:
        close_old_connections()
        if not run_once(jobs):
            time.sleep(idle)
    log.info("worker stopped")
