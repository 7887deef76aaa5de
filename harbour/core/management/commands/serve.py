"""`harbour serve`: the production web server.

gunicorn with gthread workers, chosen over granian (and over gunicorn's sync or async
workers) because Harbour is a plain WSGI Django app whose requests mostly wait on the database:
threads overlap those waits at low memory, processes use the cores, gunicorn is in Debian and
every PaaS, and its master restarts a worker that dies (the fault tests kill them). Granian's
Rust server is faster on a bare "hello world", but the intake's cost is the database commit, not
the HTTP parsing (README, Performance), so speed would not pay for a second, younger server.

Defaults: workers = 2 x CPU cores + 1, at most 8 (HARBOUR_WEB_WORKERS overrides), 4 threads
each (HARBOUR_WEB_THREADS). On PostgreSQL each thread may hold a connection: workers x threads
+ the worker processes must stay below the server's max_connections. Workers are recycled
after about 1000 requests (with jitter, so they do not all restart together) to bound any
slow memory growth.
"""
import os
import sys

from django.core.management.base import BaseCommand

MAX_DEFAULT_WORKERS = 8


def default_workers() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(2 * cores + 1, MAX_DEFAULT_WORKERS)


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


class Command(BaseCommand):
    help = "Run the web server (gunicorn, gthread); `harbour sandbox serve` runs the sandbox's."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HARBOUR_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--workers", type=int, default=_env_int("HARBOUR_WEB_WORKERS", 0),
                            help=f"Worker processes (default: 2 x cores + 1, at most {MAX_DEFAULT_WORKERS}).")
        parser.add_argument("--threads", type=int, default=_env_int("HARBOUR_WEB_THREADS", 4))
        parser.add_argument("--max-requests", type=int, default=_env_int("HARBOUR_WEB_MAX_REQUESTS", 1000),
                            help="Recycle a worker after about this many requests (0: never).")
        parser.add_argument("--migrate", action="store_true", help="Apply migrations first.")

    def handle(self, *args, host, port, workers, threads, max_requests, migrate, **options):
        from django.core.management import call_command

        if migrate:
            call_command("migrate", interactive=False, verbosity=0)
        argv = [
            sys.executable, "-m", "gunicorn", "harbour.wsgi:application",
            "--config", "python:harbour.core.gunicorn_conf",
            "--bind", f"{host}:{port}",
            "--workers", str(workers or default_workers()),
            "--threads", str(max(1, threads)),
        ]
        if max_requests > 0:
            argv += ["--max-requests", str(max_requests), "--max-requests-jitter", str(max(1, max_requests // 10))]
        os.execv(sys.executable, argv)
