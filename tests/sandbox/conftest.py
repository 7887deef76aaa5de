"""Fixtures for the sandbox's in-process tests: its URLs and settings, an admin API client, a
recording HTTP endpoint, and a ready pair of sites (a referrer and a clinic with an integration)."""
import orjson
import pytest
from django.test import Client

from harbour.sandbox import sites
from tests.sandbox.receiver import Receiver

ADMIN_TOKEN = "sandbox-test-admin-token"
PUBLIC_URL = "http://sandbox.test:8081"


@pytest.fixture(autouse=True)
def sandbox_settings(settings):
    settings.ROOT_URLCONF = "harbour.sandbox.urls"
    settings.LANGUAGE_CODE = "en"
    settings.LANGUAGES = [("en", "English")]
    # Portal tests sign up and sign in; the production hasher would dominate their time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.SANDBOX_PUBLIC_URL = PUBLIC_URL
    settings.SANDBOX_TIME_SCALE = 1
    settings.SANDBOX_ADMIN_TOKEN = ADMIN_TOKEN
    settings.SANDBOX_TOKEN_LIFETIME_SECONDS = 3600
    settings.SANDBOX_DELIVERY_TIMEOUT_SECONDS = 2
    settings.LOGIN_URL = "sandbox:login"
    settings.LOGIN_REDIRECT_URL = "sandbox:home"
    settings.LOGOUT_REDIRECT_URL = "sandbox:login"
    return settings


class AdminApi:
    """The JSON admin API through Django's test client."""

    def __init__(self, token: str = ADMIN_TOKEN):
        self.client = Client(HTTP_X_SANDBOX_ADMIN_TOKEN=token)

    def post(self, path: str, body: dict | None = None, expect: int | None = None):
        response = self.client.post(f"/sandbox-api/{path}", orjson.dumps(body or {}), content_type="application/json")
        if expect is not None:
            assert response.status_code == expect, response.content
        return response.json() if response.content else None

    def get(self, path: str, expect: int = 200):
        response = self.client.get(f"/sandbox-api/{path}")
        assert response.status_code == expect, response.content
        return response.json()


@pytest.fixture
def api(db):
    return AdminApi()


@pytest.fixture
def receiver():
    endpoint = Receiver()
    yield endpoint
    endpoint.stop()


def ready_site(name: str, number: str):
    """A site with its SEK created and stored in Cloud Connect."""
    site = sites.create_site(None, name, number)
    key = sites.create_encryption_key(site)
    sites.set_cloud_connect(site, True)
    sites.store_key_in_cloud_connect(site, key)
    return site


@pytest.fixture
def pair(db, receiver):
    """Referrer site 2001 (copy integration off) and clinic site 1234 whose listing posts to `receiver`."""
    referrer = ready_site("Referring clinic", "2001")
    clinic = ready_site("Clinique Soleil", "1234")
    integration = sites.register_integration(
        clinic, name="EMR integration", request_url=receiver.url + "/fhir_bundles", auth_type="api_key",
        header_name="Referral-Integration-API-Key", key="inbound-key-123", send_copy=True,
    )
    listing = sites.create_listing(clinic, name="Soleil Physio", integration=integration, external_service_id="SOLEIL-1")
    return {"referrer": referrer, "clinic": clinic, "integration": integration, "listing": listing}


PATIENT = {
    "family": "Tremblay", "given": "Marie Claude", "birth_date": "1980-02-29", "gender": "female",
    "hcn": "1234-567-890", "version_code": "ab", "phone": "416-555-0100", "email": "marie@example.org",
}


def send_referral(pair, **overrides):
    from harbour.sandbox.referrals import create_referral

    values = {
        "patient": PATIENT, "reason": "Back pain with no red flags",
        "answers": [{"link_id": "allergies", "text": "Allergies:", "hidden": True}, {"link_id": "history", "text": "History:", "answer": "Two weeks"}],
        "referrer": {"family": "Kavanagh", "given": "Doug", "cpso": "98765", "billing": "123456", "fax": "416-555-0198"},
    }
    values.update(overrides)
    return create_referral(pair["referrer"], pair["listing"], via="api", **values)
