"""Workloads for the production and fault tests: Ocean bundles made from the real fixture.

`bundle()` gives the real payload (tests/fixtures/bundles) for another referral, event, time
and Bundle.id. `fill_queue()` runs inside a Harbour server's Django (`server.shell(...)`) and
stores many messages at once, as if the intake had just taken them.
"""
from __future__ import annotations

import hashlib
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson

REAL = (Path(__file__).resolve().parents[1] / "fixtures" / "bundles" / "add-service-request.back-pain.json").read_bytes()
REAL_REF = "71db1a5c-89ce-41d5-bc71-8466f6c2f182"
REAL_HEADER = "fdd94a37-22a7-41ce-8140-6604a1f10908"
SITE_NUMBER = "1234"  # any site: the messages' target listing is not this clinic's, which is fine
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)


def timestamp(step: int) -> str:
    return (T0 + timedelta(minutes=step)).isoformat()


def bundle(ref: str, *, event: str = "add-service-request", step: int = 0, bundle_id: str | None = None,
           reason: str = "Initial") -> bytes:
    raw = REAL.replace(REAL_REF.encode(), ref.encode()).replace(REAL_HEADER.encode(), str(uuid.uuid4()).encode())
    data = orjson.loads(raw)
    data["id"] = bundle_id or str(uuid.uuid4())
    data["timestamp"] = data["meta"]["lastUpdated"] = timestamp(step)
    header = data["entry"][0]["resource"]
    header["eventCoding"]["code"] = header["eventCoding"]["display"] = event
    header["reason"]["text"] = reason
    return orjson.dumps(data)


def referral_messages(ref: str, count: int) -> list[bytes]:
    """A referral's life as Ocean sends it: created, then updates, each a minute later."""
    return [bundle(ref, step=0)] + [
        bundle(ref, event="notify-update-service-request", step=k, reason="") for k in range(1, count)
    ]


def fill_queue(referrals: int, per_referral: int, clinic_id: int | None = None, *, interleave: bool = True) -> list[str]:
    """Store referrals x per_referral pending messages for a clinic (a new one unless given).
    Interleaved: message k of every referral, then k+1; otherwise each referral's messages one
    after the other (the hard case for workers sharing the queue). Returns the refs. Runs
    inside a Harbour server's Django."""
    from harbour.clinics.models import Clinic, OceanSettings
    from harbour.intake.models import InboundMessage

    if clinic_id is None:
        clinic = Clinic.objects.create(name="Queue clinic")
        OceanSettings.objects.create(clinic=clinic, site_number=SITE_NUMBER)
    else:
        clinic = Clinic.objects.get(pk=clinic_id)
    refs = [str(uuid.uuid4()) for _ in range(referrals)]
    lives = {ref: referral_messages(ref, per_referral) for ref in refs}
    rows = []
    order = [(k, ref) for k in range(per_referral) for ref in refs] if interleave else [
        (k, ref) for ref in refs for k in range(per_referral)]
    for k, ref in order:
        raw = lives[ref][k]
        data = orjson.loads(raw)
        rows.append(InboundMessage(
            clinic=clinic, raw=raw, sha256=hashlib.sha256(raw).hexdigest(), content_type="application/fhir+json",
            bundle_id=data["id"], header_id=data["entry"][0]["resource"]["id"],
            event_code=data["entry"][0]["resource"]["eventCoding"]["code"], referral_ref=ref,
        ))
    InboundMessage.objects.bulk_create(rows, batch_size=500)
    return refs


def outbox_setup(ocean_url: str, referrals: int) -> list[str]:
    """A clinic whose Ocean is at `ocean_url` (tests/ocean/fake_ocean.py's credentials), with
    `referrals` received referrals, each accepted, booked and sent a message by a staff member:
    three outbound messages per referral, in that order. Runs inside a Harbour server's Django."""
    from harbour.clinics.models import Clinic, ClinicDomain, OceanSettings, User
    from harbour.ocean import actions
    from tests.ocean.conftest import configure, make_referral

    clinic = Clinic.objects.create(name="Outbox clinic")
    ClinicDomain.objects.create(clinic=clinic, domain="outbox.example.org")
    OceanSettings.objects.create(clinic=clinic)
    configure(clinic, ocean_url)
    user = User.objects.create_user(username="outbox-staff", password="x-unused-password-1", clinic=clinic)
    refs = []
    for n in range(referrals):
        ref = str(uuid.uuid4())
        referral = make_referral(clinic, ref)
        actions.accept(referral, user)
        referral.refresh_from_db()
        actions.book(referral, user, T0 + timedelta(days=n + 1), duration=timedelta(minutes=30))
        referral.refresh_from_db()
        actions.send_message(referral, user, f"Rendez-vous confirmé ({n})")
        refs.append(ref)
    return refs
