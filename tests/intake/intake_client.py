"""Helpers for posting to the intake endpoint in tests (shared by the intake test modules)."""
from pathlib import Path

import orjson
from django.test import Client

from harbour.clinics.models import OceanSettings

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "bundles"
REAL_BUNDLE = (FIXTURES / "add-service-request.back-pain.json").read_bytes()
URL = "/public/ocean/fhir_bundles"
HOST = "soleil.example.org"
KEY_META = "HTTP_REFERRAL_INTEGRATION_API_KEY"


def bundle(**changes) -> dict:
    """The real payload as a dict, with top-level changes."""
    data = orjson.loads(REAL_BUNDLE)
    data.update(changes)
    return data


def give_key(clinic) -> str:
    settings_row = clinic.ocean
    key = settings_row.generate_inbound_key()
    settings_row.save()
    return key


def post(body, key=None, *, host=HOST, path=URL, content_type="application/fhir+json", **extra):
    if isinstance(body, dict | list):
        body = orjson.dumps(body)
    if key is not None:
        extra[KEY_META] = key
    return Client(HTTP_HOST=host).generic("POST", path, body, content_type=content_type, **extra)


def outcome(response) -> tuple[str, str, str]:
    """(severity, code, diagnostics) of the single issue, after checking the response is FHIR."""
    assert response["Content-Type"] == "application/fhir+json"
    data = orjson.loads(response.content)
    assert data["resourceType"] == "OperationOutcome"
    [issue] = data["issue"]
    return issue["severity"], issue["code"], issue["diagnostics"]


def ocean(clinic) -> OceanSettings:
    return OceanSettings.objects.get(clinic=clinic)
