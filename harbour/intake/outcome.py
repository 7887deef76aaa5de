"""FHIR OperationOutcome answers: every response of the intake endpoint is one (contract §7 #3)."""
import orjson
from django.http import HttpResponse

FHIR_JSON = "application/fhir+json"


def outcome_response(status: int, code: str, diagnostics: str, *, severity: str = "error", headers=None) -> HttpResponse:
    """An OperationOutcome with one issue. `diagnostics` is plain English with no secrets or patient data."""
    body = orjson.dumps(
        {
            "resourceType": "OperationOutcome",
            "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}],
        }
    )
    response = HttpResponse(body, status=status, content_type=FHIR_JSON)
    for name, value in (headers or {}).items():
        response[name] = value
    return response
