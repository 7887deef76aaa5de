"""Fixtures of the Ocean app's tests: a fake Ocean on loopback and a referral to act on."""
from pathlib import Path

import httpx
import pytest
from django.utils import timezone

from harbour.clinics.models import ocean_settings_for

from tests.ocean.fake_ocean import FakeOcean

BUNDLES = Path(__file__).resolve().parents[1] / "fixtures" / "bundles"
REF = "71db1a5c-89ce-41d5-bc71-8466f6c2f182"


@pytest.fixture
def fake_ocean():
    ocean = FakeOcean()
    yield ocean
    ocean.close()


def configure(clinic, base_url, client_id="harbour-client", secret="s3cret-value", site_number="1234"):
    ocean = ocean_settings_for(clinic)
    ocean.server = "custom"
    ocean.custom_server_url = base_url
    ocean.site_number = site_number
    ocean.oauth_client_id = client_id
    ocean.set_client_secret(secret)
    ocean.save()
    return ocean


@pytest.fixture
def ocean_settings(clinic, fake_ocean):
    return configure(clinic, fake_ocean.url)


@pytest.fixture
def http():
    client = httpx.Client(timeout=httpx.Timeout(2.0, connect=1.0))
    yield client
    client.close()


def make_referral(clinic, ref=REF, *, direction="received", status="new", snapshot=True, **fields):
    from harbour.intake.models import InboundMessage
    from harbour.referrals.models import Referral

    if snapshot:
        raw = (BUNDLES / "add-service-request.back-pain.json").read_bytes()
        InboundMessage.objects.create(clinic=clinic, raw=raw, sha256="x" * 64, bundle_id=f"b-{ref}",
                                      event_code="add-service-request", referral_ref=ref, state="processed")
    return Referral.objects.create(clinic=clinic, ocean_ref=ref, direction=direction, status=status,
                                   site_number="1234", listing_ref="autorouter_test49721437",
                                   last_activity_at=timezone.now(), **fields)


@pytest.fixture
def referral(clinic, ocean_settings):
    return make_referral(clinic)
