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
request over keep-alive connections, warm-up first: `wrk` (Debian's package, installed with
apt-get when missing and we are root) with bench/intake_wrk.lua, else Python threads with
http.client (`--client python`). Everything runs on this machine, so the client's CPU share
is printed too (wrk needs a fraction of what Python threads need, which leaves more CPU to
the servers: ratios are only comparable within one client).

Printed: acknowledged bundles/s, p50/p99 latency, the servers' CPU per acknowledged request
(user + system time of gunicorn's workers: steadier than rates when other work shares the
CPUs), the ratios (targets: Harbour >= 0.8 x the Django view, >= 0.5 x the bare app), the web
workers' memory (RSS summed over gunicorn's workers) before and after the load and around a
burst of 25 MB deliveries (`--big`, default 16 posts, 4 at a time), and the worker's processing
rate over the bundles Harbour stored (harbour.core.worker.run_until_idle(); target median
<= 5 ms per bundle).

Rounds (`--rounds`) interleave the servers. Each round also shows the busiest gunicorn worker's
share of the server's CPU: a worker that accepted most of wrk's keep-alive connections serves
them on about one core, which halves a server's rate in that round whichever server it is. Such a
round is measured again with new connections (`--reconnect`, at most twice by default; every server
alike), and the last attempt is kept. The Harbour/Django verdict is the median over the rounds where
both servers shared their load (busiest worker <= 65 %), and the ratio of the median rounds when no
round did.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
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
TARGET_BARE_RATIO = 0.5
TARGET_PROCESSING_MS = 5.0
TARGET_BIG_RSS_GROWTH_MB = 100
WRK_SCRIPT = BENCH / "intake_wrk.lua"
# gunicorn's workers accept wrk's keep-alive connections as they come: in some rounds one worker
# holds most of them and serves at about one core, whichever server it is. Rounds where both
# Harbour's and Django's busiest worker used at most this share of the CPU compare like with like.
EVEN_SHARE = 0.65


@dataclass
class Result:
    name: str
    sent: int
    acked: int
    seconds: float
    latencies: list[float]
    statuses: dict[int, int]
    client_cpu: float = 0.0  # CPU seconds the client used
    p50_ms: float | None = None  # from wrk's own histogram
    p99_ms: float | None = None
    server_cpu: float = 0.0  # CPU seconds the server's workers used
    rss_before: int = 0  # web workers' RSS, bytes
    rss_after: int = 0
    busiest_worker: float = 0.0  # the busiest worker's share of the server's CPU (0.5: even over two)

    @property
    def rate(self) -> float:
        return self.acked / self.seconds if self.seconds else 0.0

    @property
    def client_share(self) -> float:
        """The client's share of the machine's CPUs while it ran."""
        return self.client_cpu / (self.seconds * (os.cpu_count() or 1)) if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if p == 50 and self.p50_ms is not None:
            return self.p50_ms
        if p == 99 and self.p99_ms is not None:
            return self.p99_ms
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
    def __init__(self, app: str, env: dict, args, log_path: Path, pythonpath: Path | None = None, cwd: Path = ROOT):
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
        self.process = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=self.log, stderr=subprocess.STDOUT)

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

    def worker_pids(self) -> list[int]:
        try:
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        except OSError:
            return []
        return [int(pid) for pid in children]

    def rss(self) -> int:
        """Resident memory of gunicorn's workers (the master does not serve), in bytes."""
        total = 0
        for pid in self.worker_pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
            except OSError:
                pass
        return total

    def cpu_by_worker(self) -> dict[int, float]:
        """User + system CPU time of each of gunicorn's workers so far."""
        seconds = {}
        for pid in self.worker_pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                seconds[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
            except (OSError, IndexError, ValueError):
                pass
        return seconds

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


def find_wrk() -> str | None:
    """wrk from PATH; installed from Debian's packages when missing and we are root."""
    found = shutil.which("wrk")
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], env=env, capture_output=True, timeout=300)
    if not shutil.which("wrk"):  # the package lists may be missing on a fresh machine
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=300)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], env=env, capture_output=True, timeout=300)
    return shutil.which("wrk")


def load_wrk(wrk, name, port, headers, template_path, seconds, concurrency, fresh_referral) -> Result:
    env = dict(
        os.environ, BENCH_BODY=str(template_path), BENCH_PATH=PATH,
        BENCH_HEADERS="\n".join(f"{k}\t{v}" for k, v in headers.items()),
        BENCH_BUNDLE_ID=BUNDLE_ID.decode(), BENCH_REFERRAL_REF=REFERRAL_REF.decode(),
        BENCH_FRESH_REFERRAL="1" if fresh_referral else "0", BENCH_NONCE=str(uuid.uuid4().int % 2**32),
    )
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    threads = max(1, min(2, concurrency))
    out = run([wrk, "-t", str(threads), "-c", str(concurrency), "-d", f"{max(1, round(seconds))}s", "--timeout", "30s",
               "-s", str(WRK_SCRIPT), f"http://127.0.0.1:{port}{PATH}"], env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    data = json.loads(out.strip().splitlines()[-1])
    failed = data["non_2xx"] + data["connect"] + data["read"] + data["write"] + data["timeout"]
    acked = data["requests"] - data["non_2xx"]
    statuses = {200: acked}
    if failed:
        statuses["non-2xx or errors"] = failed
    return Result(
        name, data["requests"], acked, data["duration_us"] / 1e6, [], statuses,
        client_cpu=(after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        p50_ms=data["p50_us"] / 1000, p99_ms=data["p99_us"] / 1000,
    )


def big_body(template: bytes, size: int) -> bytes:
    """The fixture grown to `size` bytes by a padding primitive extension (a valid message Bundle)."""
    padding = size - len(template) - len(b',"_padding":""')
    body = template.replace(BUNDLE_ID, str(uuid.uuid4()).encode(), 1).rstrip()
    assert body.endswith(b"}")
    return body[:-1] + b',"_padding":"' + b"A" * padding + b'"}'


def burst_big(server: Server, headers: dict, template: bytes, size: int, count: int, concurrency: int) -> dict:
    """Post `count` bodies of `size` bytes, `concurrency` at a time; sample the workers' RSS meanwhile."""
    samples = [server.rss()]
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    remaining = [count]
    stop = threading.Event()

    def sampler():
        while not stop.wait(0.05):
            samples.append(server.rss())

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
        while True:
            with lock:
                if remaining[0] <= 0:
                    break
                remaining[0] -= 1
            body = big_body(template, size)
            try:
                conn.request("POST", PATH, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException):
                status = 0
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=120)
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
        conn.close()

    watcher = threading.Thread(target=sampler)
    watcher.start()
    clients = [threading.Thread(target=client) for _ in range(concurrency)]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join()
    time.sleep(1)  # let the workers finish their bookkeeping
    stop.set()
    watcher.join()
    after = server.rss()
    return {"before": samples[0], "peak": max(samples + [after]), "after": after, "statuses": statuses}


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
import statistics, sys, time, django
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
    def timed(message, **kwargs):
        started = time.perf_counter()
        try:
            return real(message, **kwargs)
        finally:
            durations.append(time.perf_counter() - started)
    jobs.process_one = timed
pending = InboundMessage.objects.filter(state="pending").count()
started = time.perf_counter()
handled = run_until_idle(max_passes=int(sys.argv[1]))
seconds = time.perf_counter() - started
states = dict((s, InboundMessage.objects.filter(state=s).count()) for s in ("processed", "failed", "unknown_event", "duplicate", "pending"))
median = statistics.median(durations) * 1000 if durations else float("nan")
print("ok", pending, handled, seconds, median, " ".join(f"{k}={v}" for k, v in states.items() if v))
"""


def worker_cpu(server, cpu_before: dict[int, float]) -> list[float]:
    """CPU seconds each of the server's workers used since `cpu_before`."""
    return [seconds - cpu_before.get(pid, 0.0) for pid, seconds in server.cpu_by_worker().items()]


def busiest_share(used: list[float]) -> float:
    return max(used) / sum(used) if used and sum(used) else 0.0


def even_ratios(rounds: list[dict[str, Result]]) -> list[float]:
    """Harbour/Django in the rounds where neither server had one worker doing most of the work."""
    return sorted(
        one["harbour"].rate / one["django"].rate for one in rounds
        if "django" in one and one["django"].rate
        and max(one["harbour"].busiest_worker, one["django"].busiest_worker) <= EVEN_SHARE
    )


def median_result(results: list[Result]) -> Result:
    """The round with the median rate (its latencies and memory come with it)."""
    return sorted(results, key=lambda r: r.rate)[len(results) // 2]


def bench_engine(engine: Engine, args, template: bytes) -> tuple[dict[str, Result], str]:
    results: dict[str, Result] = {}
    logs = engine.tmp / "logs"
    logs.mkdir(exist_ok=True)

    template_path = engine.tmp / "fixture.json"
    template_path.write_bytes(template)

    def measure(name, server, headers, big=False):
        nonlocal results
        try:
            server.wait_ready()
            if args.wrk:
                load_wrk(args.wrk, name, server.port, headers, template_path, args.warmup_seconds, args.concurrency,
                         args.fresh_referral)
                for attempt in range(1 + args.reconnect):
                    rss_before, cpu_before = server.rss(), server.cpu_by_worker()
                    result = load_wrk(args.wrk, name, server.port, headers, template_path, args.seconds,
                                      args.concurrency, args.fresh_referral)
                    used = worker_cpu(server, cpu_before)
                    share = busiest_share(used)
                    if share <= EVEN_SHARE or attempt == args.reconnect:
                        break
                    # One worker accepted most of wrk's connections (gunicorn's accept race): that
                    # round measures one core. Measured again, with new connections.
                    print(f"  {name}: one worker did {share:.0%} of the work; measured again with new connections",
                          flush=True)
            else:
                load(name, server.port, headers, template, args.warmup, args.concurrency, 30, args.fresh_referral)
                rss_before, cpu_before = server.rss(), server.cpu_by_worker()
                cpu = time.process_time()
                result = load(
                    name, server.port, headers, template, args.requests, args.concurrency, args.max_seconds,
                    args.fresh_referral,
                )
                result.client_cpu = time.process_time() - cpu
                used = worker_cpu(server, cpu_before)
            result.rss_before, result.rss_after = rss_before, server.rss()
            # Per worker: gunicorn's workers accept connections as they come, and a worker holding
            # more of the client's keep-alive connections than the others does more of the work.
            result.server_cpu, result.busiest_worker = sum(used), busiest_share(used)
            results[name] = result
            if big and args.big:
                results["big"] = burst_big(server, headers, template, args.big_mb * 1024 * 1024 - 1024, args.big,
                                           args.big_concurrency)
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
    servers = {"harbour": ("harbour.wsgi:application", harbour_env, headers, None, ROOT)}
    if args.compare:  # another checkout of Harbour (e.g. an older commit), measured in the same rounds
        other = Path(args.compare).resolve()
        other_env = base_env(
            HARBOUR_VAR_DIR=str(engine.tmp / "other-var"), DATABASE_URL=engine.new_database("other"),
            DJANGO_SETTINGS_MODULE="harbour.settings", HARBOUR_LOG_LEVEL=args.log_level,
        )
        run([sys.executable, "manage.py", "migrate", "--verbosity", "0"], other_env, cwd=other)
        other_key = run([sys.executable, "-c", SETUP_HARBOUR], other_env, cwd=other).strip().splitlines()[-1]
        servers["compare"] = ("harbour.wsgi:application", other_env,
                              dict(headers, **{"Referral-Integration-API-Key": other_key}), None, other)
    if args.without_middleware:  # the same server and database, minus the site-wide middleware
        lean_env = dict(harbour_env, DJANGO_SETTINGS_MODULE="harbour_without_middleware", PYTHONPATH=str(BENCH))
        servers["harbour-lean"] = ("harbour.wsgi:application", lean_env, headers, BENCH, ROOT)

    # (b) Django baseline
    plain = {"Host": HOST, "Content-Type": "application/fhir+json"}
    if "django" in args.only:
        django_env = base_env(BENCH_DATABASE_URL=engine.new_database("django"), PYTHONPATH=str(BENCH))
        run([sys.executable, "-m", "django", "migrate", "--run-syncdb", "--verbosity", "0",
             "--settings", "baseline_django.settings"], django_env)
        django_env["DJANGO_SETTINGS_MODULE"] = "baseline_django.settings"
        servers["django"] = ("baseline_django.wsgi:application", django_env, plain, BENCH, ROOT)

    # (c) bare WSGI
    if "bare" in args.only:
        bare_env = base_env(BENCH_DATABASE_URL=engine.new_database("bare"))
        run([sys.executable, str(BENCH / "baseline_bare.py")], bare_env)
        servers["bare"] = ("baseline_bare:application", bare_env, plain, BENCH, ROOT)

    # Rounds interleave the servers, so a burst of other work on the machine hits all of them.
    rounds: list[dict[str, Result]] = []
    for number in range(args.rounds):
        results = {}
        for name, (app, env, server_headers, pythonpath, cwd) in servers.items():
            server = Server(app, env, args, logs / f"{name}.log", pythonpath, cwd)
            measure(name, server, server_headers, big=name == "harbour" and number == 0)
        rounds.append(results)
    big = rounds[0].pop("big", None)
    results = {name: median_result([r[name] for r in rounds]) for name in servers}
    if big:
        results["big"] = big
    results["rounds"] = rounds

    passes = str(-(-args.process // 50))  # the intake job handles 50 messages a pass
    processing = run([sys.executable, "-c", PROCESS_STORED, passes], harbour_env).strip().splitlines()[-1]
    return results, processing


def report(engine: Engine, results: dict[str, Result], processing: str, args) -> None:
    amount = f"{args.seconds:g} s" if args.wrk else f"{args.requests} requests"
    print(f"\n== {engine.label}: {amount}, {args.concurrency} clients, "
          f"gunicorn gthread {args.workers} workers x {args.threads} threads ==")
    client = f"wrk, {args.concurrency} connections" if args.wrk else f"Python http.client, {args.concurrency} threads"
    print(f"client: {client}")
    print(f"{'server':<36}{'acked/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'CPU ms/req':>11}{'client CPU':>11}{'RSS MB':>14}"
          "  other answers")
    labels = {
        "harbour": "(a) Harbour endpoint",
        "django": "(b) Django view, raw body only",
        "bare": "(c) bare WSGI (gunicorn), raw only",
        "harbour-lean": "(a') Harbour, tenancy middleware only",
        "compare": f"(a0) Harbour at {Path(args.compare).name if args.compare else ''}"[:35],
    }
    for name in ("harbour", "harbour-lean", "compare", "django", "bare"):
        if name not in results:
            continue
        r = results[name]
        other = {k: v for k, v in r.statuses.items() if k != 200}
        rss = f"{r.rss_before / 2**20:.0f}->{r.rss_after / 2**20:.0f}"
        per_request = r.server_cpu / r.acked * 1000 if r.acked else float("nan")
        print(f"{labels[name]:<36}{r.rate:>9.0f}{r.percentile(50):>9.1f}{r.percentile(99):>9.1f}{per_request:>11.2f}"
              f"{r.client_share:>10.0%} {rss:>14}  {other or '-'}")
    if len(results.get("rounds", [])) > 1:
        for number, one in enumerate(results["rounds"], 1):
            rates = "  ".join(f"{name} {r.rate:.0f}/s ({r.busiest_worker:.0%})" for name, r in one.items())
            ratios = ""
            if "django" in one and "bare" in one:
                ratios = (f"  Harbour/Django {one['harbour'].rate / one['django'].rate:.2f}, "
                          f"Harbour/bare {one['harbour'].rate / one['bare'].rate:.2f}")
            print(f"  round {number}: {rates}{ratios}")
        print("  (table: the median round of each server; in brackets, the busiest worker's share of its CPU)")
    even = even_ratios(results.get("rounds", []))
    if even:
        print(f"  rounds where both Harbour's and Django's workers shared the load (busiest <= {EVEN_SHARE:.0%}): "
              f"{len(even)}, Harbour/Django {', '.join(f'{r:.2f}' for r in even)}")
    if "django" not in results or "bare" not in results:
        return report_rest(results, processing, args)
    harbour, django_, bare = results["harbour"].rate, results["django"].rate, results["bare"].rate
    ratio = harbour / django_ if django_ else float("nan")
    basis = "median rounds"
    if even:  # like with like, when some rounds had it
        ratio, basis = statistics.median(even), f"median of the {len(even)} shared-load rounds"
    bare_ratio = harbour / bare if bare else float("nan")
    verdict = "meets" if ratio >= TARGET_INTAKE_RATIO else "BELOW"
    bare_verdict = "meets" if bare_ratio >= TARGET_BARE_RATIO else "BELOW"
    print(f"Harbour/Django = {ratio:.2f}, {basis} (target >= {TARGET_INTAKE_RATIO}: {verdict});  "
          f"Harbour/bare = {bare_ratio:.2f} (target >= {TARGET_BARE_RATIO}: {bare_verdict})")
    report_rest(results, processing, args)


def report_rest(results, processing: str, args) -> None:
    if "big" in results:
        big = results["big"]
        growth = (big["after"] - big["before"]) / 2**20
        verdict = "meets" if growth < TARGET_BIG_RSS_GROWTH_MB else "ABOVE"
        print(f"{args.big} posts of {args.big_mb} MB ({args.big_concurrency} at a time), answers {big['statuses']}: "
              f"web workers' RSS {big['before'] / 2**20:.0f} MB before, peak {big['peak'] / 2**20:.0f} MB, "
              f"{big['after'] / 2**20:.0f} MB after (growth {growth:+.0f} MB; target < +{TARGET_BIG_RSS_GROWTH_MB} MB: {verdict})")
    if "compare" in results and "django" in results and "bare" in results:
        other = results["compare"].rate
        print(f"{args.compare}: Harbour/Django = {other / results['django'].rate:.2f}, "
              f"Harbour/bare = {other / results['bare'].rate:.2f}")
    if "harbour-lean" in results and "django" in results:
        django_ = results["django"].rate
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
    parser.add_argument("--client", choices=["wrk", "python"], default="wrk",
                        help="load generator (default wrk, falling back to python when it cannot be had)")
    parser.add_argument("--seconds", type=float, default=10, help="wrk: measured seconds per server (default 10)")
    parser.add_argument("--warmup-seconds", type=float, default=2, help="wrk: unmeasured seconds first (default 2)")
    parser.add_argument("--big", type=int, default=16, help="25 MB posts to Harbour after its load (default 16; 0: none)")
    parser.add_argument("--big-mb", type=int, default=25, help="size of those posts in MB (default 25, the limit)")
    parser.add_argument("--big-concurrency", type=int, default=4, help="of those posts at a time (default 4)")
    parser.add_argument("--process", type=int, default=3000,
                        help="the worker processes about this many of the stored bundles (default 3000)")
    parser.add_argument("--requests", type=int, default=2000, help="python client: measured requests (default 2000)")
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
    parser.add_argument("--compare", metavar="CHECKOUT",
                        help="also measure the Harbour of another checkout (e.g. `git archive OLD | tar -x -C DIR`)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds over the servers (default 3)")
    parser.add_argument("--reconnect", type=int, default=2,
                        help="wrk: measure a server's round again (at most this many times) when one of its workers "
                             "did more than 65%% of the work (default 2; 0: never)")
    parser.add_argument("--only", default="harbour,django,bare", help="servers to run (harbour is always run)")
    parser.add_argument("--sqlite-only", action="store_true", help="ignore DATABASE_URL")
    args = parser.parse_args()
    args.wrk = find_wrk() if args.client == "wrk" else None
    if args.client == "wrk" and not args.wrk:
        print("wrk is not available: falling back to the Python client")

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
