"""The referral list (« Consultations ») with 100,000 referrals in one clinic, through Django's test client.

    .venv/bin/python bench/referral_list.py [--referrals 100000] [--runs 40]
    DATABASE_URL=postgresql://user@host:port/db .venv/bin/python bench/referral_list.py

A fresh SQLite file in a temporary folder (or the given database: its tables are migrated, a new
clinic is added and left there) gets one clinic with N referrals (executemany; received, sent and
a few of unknown direction; every Ocean folder; names with accents; health card numbers), a
second clinic with N/10, a signed-in user who joined before all of them and has opened a fifth
of them, and outbound messages (mostly delivered, a few hundred waiting or failed).

Then each list URL (default tab, the other tabs, each folder filter, dates, patient name, health
card, reference, a deep page) is requested `--runs` times after warm-up, with the navigation's
unread count computed as on every page. Printed per URL: p50 and p95 in ms (wall clock, and the
process's CPU time, which a busy machine disturbs less), and p50 against the
baseline: the bare `SELECT … ORDER BY last_activity_at DESC, id DESC LIMIT 50` of the default
tab through the same connection (what the database alone costs for a page).
Target: p95 <= 150 ms for every URL.
"""
import argparse
import random
import uuid
from datetime import timedelta

from page_timing import bulk_insert, insert_columns, make_clinic, setup_django, time_baseline, time_pages

FAMILY = ["Tremblay", "Gagnon", "Roy", "Côté", "Bouchard", "Gauthier", "Morin", "Lavoie", "Fortin", "Gagné",
          "Ouellet", "Pelletier", "Bélanger", "Lévesque", "Bergeron", "Leblanc", "Paquette", "Girard", "Simard",
          "Boucher", "Caron", "Beaulieu", "Cloutier", "Dubé", "Poirier", "Smith", "Brown", "Wilson", "Martin",
          "Nguyen", "Singh", "Patel", "Li", "Wong", "Campbell", "Stewart", "MacDonald", "Thompson", "Anderson"]
GIVEN = ["Marie", "Jean", "Émilie", "François", "Chloé", "Louis", "Léa", "Gabriel", "Zoé", "Noah", "Olivia",
         "Liam", "Amélie", "Hélène", "André", "Sophie", "Thomas", "Camille", "Nathan", "Alice"]
FOLDERS = [("new", 25), ("pending_booking", 15), ("booking_unconfirmed", 8), ("booking_confirmed", 12),
           ("awaiting_response", 5), ("declined", 5), ("cancelled", 3), ("completed", 27)]
STATUS_OF = {"new": "new", "pending_booking": "accepted", "booking_unconfirmed": "booked",
             "booking_confirmed": "booked", "awaiting_response": "awaiting_reply", "declined": "declined",
             "cancelled": "cancelled", "completed": "completed", "sent": "new"}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--referrals", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    setup_django()
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from harbour.clinics.models import User
    from harbour.ocean.models import OutboundMessage
    from harbour.referrals.models import Referral, ReferralRead

    rng = random.Random(7)
    now = timezone.now()
    suffix = uuid.uuid4().hex[:8]

    columns = insert_columns(Referral)
    template = Referral(clinic_id=0, last_activity_at=now)
    template.created_at = template.updated_at = now
    defaults = {f.attname: f.get_db_prep_save(getattr(template, f.attname), connection) for f in columns}
    when = connection.ops.adapt_datetimefield_value

    def fill(clinic, count):
        folders, weights = zip(*FOLDERS)
        for _ in range(count):
            roll = rng.random()
            direction = "received" if roll < 0.85 else "sent" if roll < 0.98 else "unknown"
            folder = "sent" if direction == "sent" and rng.random() < 0.5 else rng.choices(folders, weights)[0]
            activity = now - timedelta(minutes=rng.randrange(0, 2 * 365 * 24 * 60))
            row = dict(defaults, clinic_id=clinic.pk, ocean_ref=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                       direction=direction, status=STATUS_OF[folder], ocean_folder=folder, site_number="1234",
                       patient_family=rng.choice(FAMILY), patient_given=rng.choice(GIVEN),
                       patient_hcn=f"{rng.randrange(10**9, 10**10)}", patient_hcn_version="AB",
                       referrer_name=f"Dr {rng.choice(FAMILY)}", category_display="Physiotherapy",
                       authored_at=when(activity - timedelta(days=rng.randrange(0, 30))),
                       last_activity_at=when(activity))
            yield [row[f.attname] for f in columns]

    clinic, other = make_clinic("Bench", suffix), make_clinic("Other", suffix)
    took = bulk_insert(Referral, fill(clinic, args.referrals), batch_size=5000)
    bulk_insert(Referral, fill(other, args.referrals // 10), batch_size=5000)
    user = User.objects.create_user(username=f"bench-{suffix}", password="x", clinic=clinic)
    user.date_joined = now - timedelta(days=3 * 365)
    user.save()
    ids = list(Referral.objects.filter(clinic=clinic).values_list("id", flat=True))
    opened = rng.sample(ids, len(ids) // 5)
    ReferralRead.objects.bulk_create([ReferralRead(user=user, referral_id=i, seen_at=now) for i in opened],
                                     batch_size=5000)
    outbound = []
    for i in rng.sample(ids, min(len(ids), 5300)):
        state = "delivered" if len(outbound) < 5000 else rng.choice(["pending", "failed", "dead", "rejected"])
        outbound.append(OutboundMessage(clinic=clinic, referral_id=i, kind="accept", event_code="x", bundle={},
                                        state=state))
    OutboundMessage.objects.bulk_create(outbound, batch_size=5000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    sample = Referral.objects.filter(clinic=clinic, direction="received").order_by("?").first()
    print(f"{connection.vendor}: {args.referrals} referrals created in {took:.1f} s (+{args.referrals // 10} "
          f"in another clinic, {len(opened)} opened by the user, {len(outbound)} outbound messages)")

    client = Client(HTTP_HOST=f"bench-{suffix}.example.org", HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    today = timezone.localdate()
    urls = {
        "default (Received)": "/referrals/",
        "Sent tab": "/referrals/?direction=sent",
        "Direction unknown tab": "/referrals/?direction=unknown",
        **{f"folder {key}": f"/referrals/?folder={key}" for key in (
            "new", "pending_booking", "booked", "awaiting_reply", "declined", "cancelled", "completed",
            "not_synced")},
        "last activity, last 30 days": f"/referrals/?date_from={today - timedelta(days=30)}",
        "written, a month a year ago": (f"/referrals/?date_field=authored&date_from={today - timedelta(days=395)}"
                                        f"&date_to={today - timedelta(days=365)}"),
        "patient name (common)": "/referrals/?patient=tremblay",
        "patient given + family": "/referrals/?patient=marie+roy",
        "patient name (no match)": "/referrals/?patient=zzzyx",
        "health card number": f"/referrals/?patient={sample.patient_hcn}",
        "referral reference (prefix)": f"/referrals/?ref={sample.ocean_ref[:8]}",
        "folder + name": "/referrals/?folder=completed&patient=gagnon",
        "page 20": "/referrals/?page=20",
    }

    def baseline():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, ocean_ref, direction, status, ocean_folder, attention, last_activity_at, authored_at, "
                "patient_family, patient_given, referrer_name, category_display FROM referrals_referral "
                "WHERE clinic_id = %s AND direction = %s ORDER BY last_activity_at DESC, id DESC LIMIT 50",
                [clinic.pk, "received"])
            cursor.fetchall()

    base_p50 = time_baseline(baseline, args.runs * 5)
    time_pages(client, urls, args.runs, base_p50, target_ms=150,
               count_rows=lambda html: html.count('<tr id="referral-'))

if __name__ == "__main__":
    main()
