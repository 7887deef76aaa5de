"""Benchmark of the inbound endpoint against two baselines, and of the worker's processing.

    .venv/bin/python bench/intake.py [--requests 2000] [--concurrency 8] [--workers 2] [--threads 4]
    DATABASE_URL=postgresql://user@host:port/any .venv/bin/python bench/intake.py   # adds PostgreSQL

For each engine (a fresh SQLite file each time; PostgreSQL too when DATABASE_URL is given, in
throwaway databases created on that server and dropped afterwards), three real servers are
started on loopback ports, one after the other, each under gunicorn with the same settings
as `harbour serve` (gthread, --workers x --threads, no access log):

  harbour  Harbour's POST /public/ocean/fhir_bundles (migrated database, a clinic with a key)
  django   bench/baseline_django: a minimal Django project whose view only commits the raw body
  bare     bench/baseline_bare.py: a WSGI app with no framework that only commits the raw body

Clients post the real Ocean fixture (16 KB) with a fresh Bundle.id and referral ref per
request, from threads with keep-alive connections, warm-up first. Printed: acknowledged
bundles/s, p50/p99 latency, the ratios, and the worker's processing rate over the bundles
Harbour stored (harbour.core.worker.run_until_idle()), with the targets next to them.
Everything runs on this machine: the clients share the CPUs with the servers.
"""
from __future__ import annotations

import argparse
import http.client
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
FIXTURE = ROOT / "tests" / "fixtures" / "bundles" / "add-service-request.back-pain.json"
BUNDLE_ID = b"7ea1dd78-8b77-4f8b-968b-d6ab36391350"
REFERRAL_REF = b"71db1a5c-89ce-41d5-bc71-8466f6c2f182"
PATH = "/public/ocean/fhir_bundles"
HOST = "soleil.bench.example"
TARGET_INTAKE_RATIO = 0.8
TARGET_PROCESSING_MS = 5.0


@dataclass
class Result:
    name: str
    sent: int
    acked: int
    seconds: float
    latencies: list[float]
    statuses: dict[int, int]

    @property
    def rate(self) -> float:
        return self.acked / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] * 1000


# --- Servers ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(cmd, env, cwd=ROOT, **kwargs):
    result = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=300, **kwargs)
    if result.returncode != 0:
        raise SystemExit(f"failed: {' '.join(map(str, cmd))}\n{result.stdout}\n{result.stderr}")
    return result.stdout


class Server:
    def __init__(self, app: str, env: dict, args, log_path: Path, pythonpath: Path | None = None):
        self.port = free_port()
        cmd = [
            sys.executable, "-m", "gunicorn", app,
            "--bind", f"127.0.0.1:{self.port}",
            "--workers", str(args.workers), "--threads", str(args.threads),
            "--worker-class", "gthread", "--timeout", "60", "--log-level", "warning",
        ]
        if pythonpath:
            cmd += ["--pythonpath", str(pythonpath)]
        self.log = open(log_path, "wb")
        self.process = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"server exited early (see {self.log.name})")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", PATH, headers={"Host": HOST})
                conn.getresponse().read()
                conn.close()
                return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("server did not start")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


# --- Load -----------------------------------------------------------------------------------------


def make_body(template: bytes, fresh_referral: bool) -> bytes:
    body = template.replace(BUNDLE_ID, str(uuid.uuid4()).encode(), 1)
    return body.replace(REFERRAL_REF, str(uuid.uuid4()).encode()) if fresh_referral else body


def load(name, port, headers, template, count, concurrency, max_seconds, fresh_referral) -> Result:
    lock = threading.Lock()
    issued = [0]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.monotonic() + max_seconds

    def next_ticket() -> bool:
        with lock:
            if issued[0] >= count or time.monotonic() > deadline:
                return False
            issued[0] += 1
            return True

    def client():
        conn = None
        mine, codes = [], {}
        while next_ticket():
            body = make_body(template, fresh_referral)
            started = time.perf_counter()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                conn.request("POST", PATH, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = None
            except (OSError, http.client.HTTPException):
                status = 0
                if conn is not None:
                    conn.close()
                conn = None
            elapsed = time.perf_counter() - started
            codes[status] = codes.get(status, 0) + 1
            if status == 200:
                mine.append(elapsed)
        if conn is not None:
            conn.close()
        with lock:
            latencies.extend(mine)
            for status, n in codes.items():
                statuses[status] = statuses.get(status, 0) + n

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    return Result(name, issued[0], len(latencies), seconds, latencies, statuses)


# --- Engines --------------------------------------------------------------------------------------


class Engine:
    """Hands out fresh databases: a new SQLite file, or a new database on a PostgreSQL server."""

    def __init__(self, label: str, tmp: Path, server_url: str | None = None):
        self.label, self.tmp, self.server_url, self.created = label, tmp, server_url, []

    def new_database(self, name: str) -> str:
        if self.server_url is None:
            return f"sqlite:///{self.tmp / (name + '.sqlite3')}"
        import psycopg

        db = f"bench_{name}_{os.getpid()}"
        with psycopg.connect(self._url("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}"')
            conn.execute(f'CREATE DATABASE "{db}"')
        self.created.append(db)
        return self._url(db)

    def _url(self, db: str) -> str:
        parts = urlsplit(self.server_url)
        return urlunsplit(parts._replace(path="/" + db))

    def drop_all(self) -> None:
        if not self.created:
            return
        import psycopg

        with psycopg.connect(self._url("postgres"), autocommit=True) as conn:
            for db in self.created:
                conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def base_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "DJANGO_SETTINGS_MODULE"))}
    env.update(extra)
    return env


SETUP_HARBOUR = f"""
import django
django.setup()
from harbour.clinics.models import Clinic, ClinicDomain, OceanSettings
clinic = Clinic.objects.create(name="Bench clinic")
ClinicDomain.objects.create(clinic=clinic, domain="{HOST}")
settings_row = OceanSettings.objects.create(clinic=clinic)
print(settings_row.generate_inbound_key())
settings_row.save()
"""

PROCESS_STORED = """
import statistics, time, django
django.setup()
from harbour.intake.models import InboundMessage
try:
    from harbour.intake import jobs
    from harbour.core.worker import discover_jobs, run_until_idle
    assert jobs.process_pending in discover_jobs()
except Exception as exc:
    print("unavailable", type(exc).__name__)
    raise SystemExit(0)
durations = []
if hasattr(jobs, "process_one"):  # time each bundle's processing as the worker runs it
    real = jobs.process_one
    def timed(message):
        started = time.perf_counter()
        try:
            return real(message)
        finally:
            durations.append(time.perf_counter() - started)
    jobs.process_one = timed
pending = InboundMessage.objects.filter(state="pending").count()
started = time.perf_counter()
handled = run_until_idle(max_passes=100000)
seconds = time.perf_counter() - started
states = dict((s, InboundMessage.objects.filter(state=s).count()) for s in ("processed", "failed", "unknown_event", "duplicate", "pending"))
median = statistics.median(durations) * 1000 if durations else float("nan")
print("ok", pending, handled, seconds, median, " ".join(f"{k}={v}" for k, v in states.items() if v))
"""


def bench_engine(engine: Engine, args, template: bytes) -> tuple[dict[str, Result], str]:
    results: dict[str, Result] = {}
    logs = engine.tmp / "logs"
    logs.mkdir(exist_ok=True)

    def measure(name, server, headers):
        try:
            server.wait_ready()
            load(name, server.port, headers, template, args.warmup, args.concurrency, 30, args.fresh_referral)
            results[name] = load(
                name, server.port, headers, template, args.requests, args.concurrency, args.max_seconds,
                args.fresh_referral,
            )
        finally:
            server.stop()

    # (a) Harbour
    var_dir = engine.tmp / "harbour-var"
    harbour_env = base_env(
        HARBOUR_VAR_DIR=str(var_dir), DATABASE_URL=engine.new_database("harbour"),
        DJANGO_SETTINGS_MODULE="harbour.settings", HARBOUR_LOG_LEVEL=args.log_level,
    )
    run([sys.executable, "manage.py", "migrate", "--verbosity", "0"], harbour_env)
    key = run([sys.executable, "-c", SETUP_HARBOUR], harbour_env).strip().splitlines()[-1]
    headers = {
        "Host": HOST, "Content-Type": "application/fhir+json", "Referral-Integration-API-Key": key,
    }
    measure("harbour", Server("harbour.wsgi:application", harbour_env, args, logs / "harbour.log"), headers)
    if args.without_middleware:  # the same server and database, minus the site-wide middleware
        lean_env = dict(harbour_env, DJANGO_SETTINGS_MODULE="harbour_without_middleware", PYTHONPATH=str(BENCH))
        lean = Server("harbour.wsgi:application", lean_env, args, logs / "harbour-lean.log", BENCH)
        measure("harbour-lean", lean, headers)

    # (b) Django baseline
    django_env = base_env(BENCH_DATABASE_URL=engine.new_database("django"), PYTHONPATH=str(BENCH))
    run([sys.executable, "-m", "django", "migrate", "--run-syncdb", "--verbosity", "0",
         "--settings", "baseline_django.settings"], django_env)
    django_env["DJANGO_SETTINGS_MODULE"] = "baseline_django.settings"
    plain = {"Host": HOST, "Content-Type": "application/fhir+json"}
    measure("django", Server("baseline_django.wsgi:application", django_env, args, logs / "django.log", BENCH), plain)

    # (c) bare WSGI
    bare_env = base_env(BENCH_DATABASE_URL=engine.new_database("bare"))
    run([sys.executable, str(BENCH / "baseline_bare.py")], bare_env)
    measure("bare", Server("baseline_bare:application", bare_env, args, logs / "bare.log", BENCH), plain)

    processing = run([sys.executable, "-c", PROCESS_STORED], harbour_env).strip().splitlines()[-1]
    return results, processing


def report(engine: Engine, results: dict[str, Result], processing: str, args) -> None:
    print(f"\n== {engine.label}: {args.requests} requests, {args.concurrency} clients, "
          f"gunicorn gthread {args.workers} workers x {args.threads} threads ==")
    print(f"{'server':<36}{'acked/s':>9}{'p50 ms':>9}{'p99 ms':>9}  other answers")
    labels = {
        "harbour": "(a) Harbour endpoint",
        "django": "(b) Django view, raw body only",
        "bare": "(c) bare WSGI (gunicorn), raw only",
        "harbour-lean": "(a') Harbour, tenancy middleware only",
    }
    for name in ("harbour", "harbour-lean", "django", "bare"):
        if name not in results:
            continue
        r = results[name]
        other = {k: v for k, v in r.statuses.items() if k != 200}
        print(f"{labels[name]:<36}{r.rate:>9.0f}{r.percentile(50):>9.1f}{r.percentile(99):>9.1f}  {other or '-'}")
    harbour, django_, bare = results["harbour"].rate, results["django"].rate, results["bare"].rate
    ratio = harbour / django_ if django_ else float("nan")
    verdict = "meets" if ratio >= TARGET_INTAKE_RATIO else "BELOW"
    print(f"Harbour/Django = {ratio:.2f} (target >= {TARGET_INTAKE_RATIO}: {verdict});  "
          f"Harbour/bare = {harbour / bare if bare else float('nan'):.2f}")
    if "harbour-lean" in results and django_:
        print(f"Harbour without the site-wide middleware/Django = {results['harbour-lean'].rate / django_:.2f}")
    fields = processing.split()
    if fields and fields[0] == "ok":
        pending, handled, seconds, median = int(fields[1]), int(fields[2]), float(fields[3]), float(fields[4])
        states = " ".join(fields[5:])
        verdict = "meets" if median <= TARGET_PROCESSING_MS else "ABOVE"
        print(f"processing: {handled} of {pending} stored bundles in {seconds:.1f} s = {handled / seconds:.0f} bundles/s, "
              f"median {median:.2f} ms per bundle (target <= {TARGET_PROCESSING_MS:g} ms: {verdict}); {states}")
    else:
        print("processing: not available" + (f" ({' '.join(fields[1:])})" if len(fields) > 1 else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="measured requests per server (default 2000)")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument("--warmup", type=int, default=100, help="unmeasured requests first (default 100)")
    parser.add_argument("--max-seconds", type=float, default=25, help="stop a measurement after this long")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2, as harbour serve)")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker (default 4, as harbour serve)")
    parser.add_argument("--log-level", default="INFO", help="Harbour's log level (default INFO: one line per call)")
    parser.add_argument("--same-referral", dest="fresh_referral", action="store_false",
                        help="keep the fixture's referral ref (processing then updates one referral)")
    parser.add_argument("--without-middleware", action="store_true",
                        help="also measure Harbour with only the tenancy middleware (what the stack costs)")
    parser.add_argument("--sqlite-only", action="store_true", help="ignore DATABASE_URL")
    args = parser.parse_args()

    template = FIXTURE.read_bytes()
    assert template.count(BUNDLE_ID) >= 1 and REFERRAL_REF in template
    tmp = Path(tempfile.mkdtemp(prefix="harbour-bench-"))
    engines = [Engine("SQLite", tmp / "sqlite")]
    if os.environ.get("DATABASE_URL") and not args.sqlite_only:
        engines.append(Engine("PostgreSQL", tmp / "postgresql", os.environ["DATABASE_URL"]))
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, body {len(template)} bytes, "
          f"{'fresh' if args.fresh_referral else 'one'} referral ref per bundle")
    try:
        for engine in engines:
            engine.tmp.mkdir(parents=True)
            try:
                results, processing = bench_engine(engine, args, template)
            finally:
                engine.drop_all()
            report(engine, results, processing, args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
