"""The inbound messages page (« Messages reçus ») over a long history, through Django's test client.

    .venv/bin/python bench/inbound_list.py [--messages 20000] [--runs 20]
    DATABASE_URL=postgresql://user@host:port/db .venv/bin/python bench/inbound_list.py

A fresh SQLite file in a temporary folder (or the given database: its tables are migrated, a new
clinic is added and left there) gets one clinic with N inbound messages of the real fixture's size
(16.7 KB), as they are after processing: most processed, 2 % failed, a few not understood or
duplicates. Then the page is requested `--runs` times per outcome filter after warm-up. Printed
per URL: p50 and p95 in ms (wall clock, and the process's CPU time), and p50 against the
baseline: the bare `SELECT … ORDER BY received_at DESC, id DESC LIMIT 50` of the unfiltered page
through the same connection. Target, as for the referral list: p95 <= 150 ms for every URL.

What it shows on SQLite: a filter by outcome has to read each message's `state`, and so the
pages that hold it. Where the raw bytes came before that column, each message cost its body's
overflow pages too (intake migration 0005 moved them last; docs/performance.md has both figures).
"""
import argparse
import hashlib
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FIXTURE = ROOT / "tests" / "fixtures" / "bundles" / "add-service-request.back-pain.json"
STATES = [("processed", 96), ("failed", 2), ("unknown_event", 1), ("duplicate", 1)]


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="harbour-bench-")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp}/bench.sqlite3")
    os.environ.setdefault("HARBOUR_VAR_DIR", tmp)
    os.environ["HARBOUR_LOG_LEVEL"] = "WARNING"
    os.environ["DJANGO_SETTINGS_MODULE"] = "harbour.settings"
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.test import Client
    from django.utils import timezone

    from harbour.clinics.models import Clinic, ClinicDomain, OceanSettings, User
    from harbour.intake.models import InboundMessage

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("migrate", verbosity=0)
    rng = random.Random(7)
    now = timezone.now()
    suffix = uuid.uuid4().hex[:8]
    clinic = Clinic.objects.create(name=f"Bench {suffix}")
    ClinicDomain.objects.create(clinic=clinic, domain=f"bench-{suffix}.example.org")
    OceanSettings.objects.create(clinic=clinic, site_number="1234")

    # executemany, as bench/referral_list.py: the ORM would spend minutes preparing the rows.
    template = FIXTURE.read_bytes()
    template_id = orjson.loads(template)["id"].encode()
    columns = [f for f in InboundMessage._meta.concrete_fields if not f.primary_key]
    sql = (f"INSERT INTO {connection.ops.quote_name(InboundMessage._meta.db_table)} "
           f"({', '.join(connection.ops.quote_name(f.column) for f in columns)}) "
           f"VALUES ({', '.join(['%s'] * len(columns))})")
    states, weights = zip(*STATES)
    started = time.perf_counter()
    batch = []

    def flush():
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(sql, batch)
        batch.clear()

    for n in range(args.messages):
        bundle_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        raw = template.replace(template_id, bundle_id.encode(), 1)
        state = rng.choices(states, weights)[0]
        values = {
            "clinic": clinic.pk, "received_at": now - timedelta(minutes=args.messages - n), "raw": raw,
            "sha256": hashlib.sha256(raw).hexdigest(), "content_type": "application/fhir+json",
            "remote_addr": "127.0.0.1", "bundle_id": bundle_id, "header_id": bundle_id,
            "event_code": "add-service-request", "referral_ref": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "state": state, "attempts": 1, "error": "ValueError: bench" if state == "failed" else "",
            "warnings": [], "processed_at": now,
        }
        batch.append([f.get_db_prep_save(values[f.name], connection) for f in columns])
        if len(batch) == 1000:
            flush()
    if batch:
        flush()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"{connection.vendor}: {args.messages} inbound messages created in {time.perf_counter() - started:.1f} s")

    user = User.objects.create_user(username=f"bench-{suffix}", password="x", clinic=clinic)
    client = Client(HTTP_HOST=f"bench-{suffix}.example.org", HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    urls = {"all": "/referrals/inbound/", **{state: f"/referrals/inbound/?state={state}" for state in states},
            "page 20": "/referrals/inbound/?page=20"}

    cpu_samples: list[float] = []

    def timed(call, runs):
        """Wall-clock ms per call; the process's CPU ms go to cpu_samples (steady on a busy machine)."""
        for _ in range(3):
            call()
        samples = []
        cpu_samples.clear()
        for _ in range(runs):
            started, cpu = time.perf_counter(), time.process_time()
            call()
            samples.append((time.perf_counter() - started) * 1000)
            cpu_samples.append((time.process_time() - cpu) * 1000)
        return samples

    def baseline():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, received_at, event_code, state, referral_ref, error FROM intake_inboundmessage "
                "WHERE clinic_id = %s ORDER BY received_at DESC, id DESC LIMIT 50", [clinic.pk])
            cursor.fetchall()

    base = timed(baseline, args.runs * 5)
    base_p50 = statistics.median(base)
    print(f"baseline bare SELECT … LIMIT 50: p50 {base_p50:.2f} ms, p95 {percentile(base, 0.95):.2f} ms "
          f"(CPU p50 {statistics.median(cpu_samples):.2f} ms)")
    print(f"{'URL':16} {'p50 ms':>8} {'p95 ms':>8} {'x base':>8} {'CPU p50':>8} {'CPU p95':>8}")
    worst = 0.0
    for name, url in urls.items():
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        samples = timed(lambda: client.get(url), args.runs)
        p50, p95 = statistics.median(samples), percentile(samples, 0.95)
        worst = max(worst, p95)
        print(f"{name:16} {p50:8.1f} {p95:8.1f} {p50 / base_p50:8.0f} {statistics.median(cpu_samples):8.1f} "
              f"{percentile(cpu_samples, 0.95):8.1f}")
    print(f"worst p95 {worst:.1f} ms (target <= 150 ms): {'OK' if worst <= 150 else 'OVER'}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
