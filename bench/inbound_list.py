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
import random
import uuid
from datetime import timedelta

import orjson
from page_timing import ROOT, bulk_insert, insert_columns, make_clinic, setup_django, time_baseline, time_pages

FIXTURE = ROOT / "tests" / "fixtures" / "bundles" / "add-service-request.back-pain.json"
STATES = [("processed", 96), ("failed", 2), ("unknown_event", 1), ("duplicate", 1)]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    setup_django()
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from harbour.clinics.models import User
    from harbour.intake.models import InboundMessage

    rng = random.Random(7)
    now = timezone.now()
    suffix = uuid.uuid4().hex[:8]
    clinic = make_clinic("Bench", suffix)
    template = FIXTURE.read_bytes()
    template_id = orjson.loads(template)["id"].encode()
    columns = insert_columns(InboundMessage)
    states, weights = zip(*STATES)

    def rows():
        for n in range(args.messages):
            bundle_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            raw = template.replace(template_id, bundle_id.encode(), 1)
            state = rng.choices(states, weights)[0]
            values = {
                "clinic": clinic.pk, "received_at": now - timedelta(minutes=args.messages - n), "raw": raw,
                "sha256": hashlib.sha256(raw).hexdigest(), "content_type": "application/fhir+json",
                "remote_addr": "127.0.0.1", "bundle_id": bundle_id, "header_id": bundle_id,
                "event_code": "add-service-request",
                "referral_ref": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "state": state, "attempts": 1, "error": "ValueError: bench" if state == "failed" else "",
                "warnings": [], "processed_at": now,
            }
            yield [f.get_db_prep_save(values[f.name], connection) for f in columns]

    took = bulk_insert(InboundMessage, rows(), batch_size=1000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    print(f"{connection.vendor}: {args.messages} inbound messages created in {took:.1f} s")

    user = User.objects.create_user(username=f"bench-{suffix}", password="x", clinic=clinic)
    client = Client(HTTP_HOST=f"bench-{suffix}.example.org", HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    urls = {"all": "/referrals/inbound/", **{state: f"/referrals/inbound/?state={state}" for state in states},
            "page 20": "/referrals/inbound/?page=20"}

    def baseline():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, received_at, event_code, state, referral_ref, error FROM intake_inboundmessage "
                "WHERE clinic_id = %s ORDER BY received_at DESC, id DESC LIMIT 50", [clinic.pk])
            cursor.fetchall()

    base_p50 = time_baseline(baseline, args.runs * 5)
    time_pages(client, urls, args.runs, base_p50, target_ms=150)

if __name__ == "__main__":
    main()
