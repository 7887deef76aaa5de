"""Per-message processing time of the real Ocean fixture (harbour.referrals.process), in process.

    .venv/bin/python bench/referrals_process.py [--messages 500]
    DATABASE_URL=postgresql://user@host:port/db .venv/bin/python bench/referrals_process.py

A fresh SQLite file (or the given database, whose tables it creates and then leaves) gets one
clinic whose site is the fixture's target; then N bundles are stored: the real fixture as a new
referral (fresh ref each), and the same referral's full update (demographics, task,
appointments, message) as a second message. The worker job processes them; each message's
processing (claim, read, apply, outcome, commit) is timed. Prints median / p90 / p99 per kind.
Target (issue #3): median <= 5 ms for the real fixture ("new"), on either database.
"""
import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=500, help="referrals (two messages each)")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="harbour-bench-")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp}/bench.sqlite3")
    os.environ.setdefault("HARBOUR_VAR_DIR", tmp)
    os.environ["DJANGO_SETTINGS_MODULE"] = "harbour.settings"
    import django

    django.setup()
    import orjson
    from django.core.management import call_command

    from harbour.clinics.models import Clinic, OceanSettings
    from harbour.intake import jobs
    from harbour.intake.models import InboundMessage

    call_command("migrate", verbosity=0)
    clinic = Clinic.objects.create(name=f"Bench {uuid.uuid4().hex[:6]}")
    OceanSettings.objects.create(clinic=clinic, site_number="1234")
    bundles = ROOT / "tests" / "fixtures" / "bundles"
    real = orjson.loads((bundles / "add-service-request.back-pain.json").read_bytes())
    full = orjson.loads((bundles / "notify-update-service-request.full.json").read_bytes())
    ref = "71db1a5c-89ce-41d5-bc71-8466f6c2f182"

    def store(template, new_ref):
        raw = orjson.dumps(template).replace(ref.encode(), new_ref.encode())
        raw = raw.replace(template["id"].encode(), str(uuid.uuid4()).encode())
        InboundMessage.objects.create(clinic=clinic, raw=raw, sha256=hashlib.sha256(raw).hexdigest(),
                                      bundle_id=str(uuid.uuid4()))

    for _ in range(args.messages):
        new_ref = str(uuid.uuid4())
        store(real, new_ref)
        store(full, new_ref)

    timings: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    real_process_one = jobs.process_one

    def timed(message, **kwargs):
        start, start_cpu = time.perf_counter(), time.process_time()
        state = real_process_one(message, **kwargs)
        kind = "update" if b"notify-update-service-request" in bytes(message.raw[:4000]) else "new"
        timings.setdefault(kind, []).append((time.perf_counter() - start) * 1000)
        cpu.setdefault(kind, []).append((time.process_time() - start_cpu) * 1000)
        return state

    jobs.process_one = timed
    started = time.perf_counter()
    total = 0
    while handled := jobs.process_pending():
        total += handled
    seconds = time.perf_counter() - started
    engine = "postgresql" if os.environ["DATABASE_URL"].startswith("postgres") else "sqlite"
    print(f"{engine}: {total} messages in {seconds:.2f} s = {total / seconds:.0f} messages/s (claim + commit included)")
    for kind, values in sorted(timings.items()):
        values.sort()
        pick = lambda q: values[min(len(values) - 1, int(q * len(values)))]  # noqa: E731
        print(f"  {kind:<7} n={len(values)} median {statistics.median(values):.2f} ms  p90 {pick(0.9):.2f} ms  "
              f"p99 {pick(0.99):.2f} ms  (process_one only); CPU median {statistics.median(cpu[kind]):.2f} ms")
    failed = InboundMessage.objects.filter(clinic=clinic).exclude(state="processed").count()
    print(f"  not processed: {failed}; target: median <= 5 ms for the real fixture (new)")
    print(f"  load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (wall times stretch with it)")


if __name__ == "__main__":
    main()
