import os
import sys

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the web server (gunicorn) for Harbour, or for the sandbox with --sandbox."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HARBOUR_HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--workers", type=int, default=int(os.environ.get("HARBOUR_WEB_WORKERS", "2")))
        parser.add_argument("--threads", type=int, default=int(os.environ.get("HARBOUR_WEB_THREADS", "4")))
        parser.add_argument("--migrate", action="store_true", help="Apply migrations first.")

    def handle(self, *args, host, port, workers, threads, migrate, **options):
        from django.core.management import call_command

        if migrate:
            call_command("migrate", interactive=False, verbosity=0)
        argv = [
            sys.executable, "-m", "gunicorn", "harbour.wsgi:application",
            "--bind", f"{host}:{port}",
            "--workers", str(workers),
            "--threads", str(threads),
            "--worker-class", "gthread",
            "--timeout", "60",
            "--graceful-timeout", "10",
            "--access-logfile", "-",
            # No query strings or bodies in access logs.
            "--access-logformat", '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(L)ss',
        ]
        os.execv(sys.executable, argv)
