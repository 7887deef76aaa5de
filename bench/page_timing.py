"""What the page benchmarks share: a fresh database to fill, a clinic, fast bulk rows, and timing pages
through Django's test client."""
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def setup_django() -> str:
    """Django on a fresh SQLite file in a temporary folder (or DATABASE_URL's database), migrated.

    Returns the temporary folder. Logs at WARNING: the access lines would be the slowest part.
    """
    sys.path.insert(0, str(ROOT))
    tmp = tempfile.mkdtemp(prefix="harbour-bench-")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp}/bench.sqlite3")
    os.environ.setdefault("HARBOUR_VAR_DIR", tmp)
    os.environ["HARBOUR_LOG_LEVEL"] = "WARNING"
    os.environ["DJANGO_SETTINGS_MODULE"] = "harbour.settings"
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("migrate", verbosity=0)
    return tmp


def make_clinic(name: str, suffix: str):
    """A clinic with its domain (`<name>-<suffix>.example.org`, lower case) and Ocean site 1234."""
    from harbour.clinics.models import Clinic, ClinicDomain, OceanSettings

    clinic = Clinic.objects.create(name=f"{name} {suffix}")
    ClinicDomain.objects.create(clinic=clinic, domain=f"{name.lower()}-{suffix}.example.org")
    OceanSettings.objects.create(clinic=clinic, site_number="1234")
    return clinic


def insert_columns(model) -> list:
    """The fields an INSERT of `model` fills (not the id, not generated columns), in `bulk_insert`'s order."""
    return [f for f in model._meta.concrete_fields if not f.primary_key and not getattr(f, "generated", False)]


def bulk_insert(model, rows, batch_size: int) -> float:
    """INSERT `rows` (lists of database values in `insert_columns(model)` order) with executemany,
    `batch_size` rows a transaction; returns the seconds it took. The ORM's bulk_create prepares
    every value in Python and SQLite batches few rows: 100,000 referrals were a minute-long wait."""
    from django.db import connection, transaction

    quote = connection.ops.quote_name
    columns = insert_columns(model)
    sql = (f"INSERT INTO {quote(model._meta.db_table)} ({', '.join(quote(f.column) for f in columns)}) "
           f"VALUES ({', '.join(['%s'] * len(columns))})")
    started = time.perf_counter()
    batch = []

    def flush():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(sql, batch)
        batch.clear()

    for row in rows:
        batch.append(row)
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    return time.perf_counter() - started


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def timed(call, runs) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU ms of each of `runs` calls, after three unmeasured ones.

    The process's CPU time is the steadier figure on a busy machine."""
    for _ in range(3):
        call()
    wall, cpu = [], []
    for _ in range(runs):
        started, cpu_started = time.perf_counter(), time.process_time()
        call()
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - cpu_started) * 1000)
    return wall, cpu


def time_baseline(query, runs) -> float:
    """Prints the bare query's figures; returns its p50, which the pages are compared with."""
    wall, cpu = timed(query, runs)
    p50 = statistics.median(wall)
    print(f"baseline bare SELECT … LIMIT 50: p50 {p50:.2f} ms, p95 {percentile(wall, 0.95):.2f} ms "
          f"(CPU p50 {statistics.median(cpu):.2f} ms)")
    return p50


def time_pages(client, urls: dict, runs: int, base_p50: float, target_ms: float, count_rows=None) -> None:
    """Each URL `runs` times: p50 and p95 (wall and CPU), p50 against the baseline, and the worst p95
    against the target. `count_rows(content)`, if given, adds how many rows the page showed."""
    width = max(len(name) for name in urls) + 2
    print(f"{'URL':{width}} {'p50 ms':>8} {'p95 ms':>8} {'x base':>8} {'CPU p50':>8} {'CPU p95':>8}"
          + (" rows" if count_rows else ""))
    worst = 0.0
    for name, url in urls.items():
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        wall, cpu = timed(lambda: client.get(url), runs)
        p50, p95 = statistics.median(wall), percentile(wall, 0.95)
        worst = max(worst, p95)
        print(f"{name:{width}} {p50:8.1f} {p95:8.1f} {p50 / base_p50:8.0f} {statistics.median(cpu):8.1f} "
              f"{percentile(cpu, 0.95):8.1f}" + (f" {count_rows(response.content.decode())}" if count_rows else ""))
    print(f"worst p95 {worst:.1f} ms (target <= {target_ms:.0f} ms): {'OK' if worst <= target_ms else 'OVER'}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
