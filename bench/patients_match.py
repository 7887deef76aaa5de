"""Cost of one idle pass of the patients matcher (harbour.patients.jobs) with many referrals.

    .venv/bin/python bench/patients_match.py [--referrals 100000]
    DATABASE_URL=postgresql://user@host:port/db .venv/bin/python bench/patients_match.py

A fresh SQLite file (or the given database, whose tables it creates and then leaves) gets N
received referrals, each already matched (a ReferralPatientLink checked at its updated_at), and an
empty match queue: the state of a clinic whose worker is idle. Printed: the time of one idle pass
of the job (run twice a second by an idle worker), next to the two scans the job made before the
queue (referrals without a link; links whose referral changed since checked_at), and the time of
a pass after one referral's patient changed.
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def timed(func, runs: int) -> float:
    values = []
    for _ in range(runs):
        started = time.perf_counter()
        func()
        values.append((time.perf_counter() - started) * 1000)
    return statistics.median(values)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--referrals", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="harbour-bench-")
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{tmp}/bench.sqlite3")
    os.environ.setdefault("HARBOUR_VAR_DIR", tmp)
    os.environ["DJANGO_SETTINGS_MODULE"] = "harbour.settings"
    import django

    django.setup()
    from django.core.management import call_command
    from django.db.models import F
    from django.utils import timezone

    from harbour.clinics.models import Clinic
    from harbour.patients.jobs import match_new_referrals
    from harbour.patients.models import LinkState, MatchQueue, ReferralPatientLink
    from harbour.referrals.models import Direction, Referral

    call_command("migrate", verbosity=0)
    clinic = Clinic.objects.create(name=f"Bench {uuid.uuid4().hex[:6]}")
    now = timezone.now()
    started = time.perf_counter()
    for start in range(0, args.referrals, 5000):
        count = min(5000, args.referrals - start)
        # bulk_create sends no post_save: these referrals are not queued, as if already matched.
        created = Referral.objects.bulk_create([
            Referral(clinic=clinic, ocean_ref=str(uuid.uuid4()), direction=Direction.RECEIVED, last_activity_at=now,
                     patient_family="Tremblay", patient_hcn=f"{start + i:010d}")
            for i in range(count)
        ])
        ReferralPatientLink.objects.bulk_create([
            ReferralPatientLink(referral=r, clinic=clinic, state=LinkState.NO_CANDIDATES, checked_at=r.updated_at)
            for r in created
        ])
    MatchQueue.objects.all().delete()
    print(f"{args.referrals} matched referrals created in {time.perf_counter() - started:.0f} s "
          f"({os.environ['DATABASE_URL'].split(':')[0]})")

    def old_scans():  # the job before the queue: both queries ran on every pass
        list(Referral.objects.filter(direction__in=[Direction.RECEIVED, Direction.SENT], patient_link__isnull=True)
             .order_by("id").values_list("pk", flat=True)[:50])
        list(ReferralPatientLink.objects.filter(referral__updated_at__gt=F("checked_at"))
             .select_related("referral").order_by("referral__updated_at", "id")[:50])
        list(ReferralPatientLink.objects.filter(checked_at__isnull=True).select_related("referral")[:50])

    assert match_new_referrals() == 0
    print(f"idle pass, old scans:  median {timed(old_scans, args.runs):8.2f} ms")
    print(f"idle pass, the queue:  median {timed(match_new_referrals, args.runs):8.2f} ms")
    referral = Referral.objects.order_by("?").first()
    referral.patient_family = "Gagnon"
    referral.save()
    started = time.perf_counter()
    handled = match_new_referrals()
    print(f"a pass after one referral's patient changed: {handled} handled in "
          f"{(time.perf_counter() - started) * 1000:.2f} ms")


if __name__ == "__main__":
    main()
