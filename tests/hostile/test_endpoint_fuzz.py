"""Schemathesis against docs/openapi/intake.yaml, over real HTTP, on an in-process live server.

Requests generated from the OpenAPI description (conforming and, in the negative mode,
violating it: wrong types, missing fields, odd headers) are sent to pytest-django's
in-thread server (tests/hostile/liveserver.py); each answer must be one of the documented codes, never a 500, with the documented
content type, headers and OperationOutcome body. Half of the calls carry the clinic's real key,
so the body checks behind authentication are reached too. Bounded: a fixed number of examples
and a time budget (the long run is bench/fuzz_intake.py).
"""
import time
from pathlib import Path

import orjson
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, reject, settings as hypothesis_settings, strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from harbour.intake.models import InboundMessage
from tests.conftest import make_clinic
from tests.hostile.liveserver import serve_harbour
from tests.intake.intake_client import REAL_BUNDLE, give_key

SPEC = Path(__file__).resolve().parents[2] / "docs" / "openapi" / "intake.yaml"
KEY_HEADER = "Referral-Integration-API-Key"
DOCUMENTED = {200, 400, 401, 405, 413, 415, 429, 503}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
BUDGET_SECONDS = 25
ROUNDS = 3  # of 50 examples


def load_schema():
    return schemathesis.openapi.from_path(SPEC)


def test_the_description_documents_every_answer_of_the_endpoint():
    schema = load_schema()
    raw = schema.raw_schema
    operations = raw["paths"]["/public/ocean/fhir_bundles"]
    assert set(operations) == {"post", "get", "put", "patch", "delete"}
    assert {int(code) for code in operations["post"]["responses"]} == DOCUMENTED
    assert raw["components"]["securitySchemes"]["inboundKey"]["name"] == KEY_HEADER


@pytest.fixture
def endpoint(transactional_db, settings):
    settings.HARBOUR_INTAKE_FAILURE_LIMIT = 100_000  # examples must reach the checks behind the rate limit
    settings.HARBOUR_MAX_BUNDLE_BYTES = 64 * 1024  # so 413 is reachable with small bodies
    clinic = make_clinic("Clinique Soleil", "soleil.example.org")
    with serve_harbour() as base_url:
        yield base_url, give_key(clinic)


def check(case, response):
    assert response.status_code in DOCUMENTED, (case.method, response.status_code, response.text[:300])
    case.validate_response(response, checks=CHECKS)
    outcome = orjson.loads(response.content)
    assert outcome["resourceType"] == "OperationOutcome"


def test_the_real_bundle_and_a_few_known_refusals_conform(endpoint):
    """The live server answers as documented for the cases fuzzing rarely builds by chance."""
    base, key = endpoint
    operation = load_schema()["/public/ocean/fhir_bundles"]["POST"]
    url = base + "/public/ocean/fhir_bundles"
    cases = [
        (REAL_BUNDLE, key, "application/fhir+json", 200),
        (REAL_BUNDLE, "wrong", "application/fhir+json", 401),
        (b"x" * (70 * 1024), key, "application/fhir+json", 413),
        (REAL_BUNDLE, key, "text/plain", 415),
        (b"{", key, "application/json", 400),
    ]
    session = requests.Session()
    for body, sent_key, content_type, expected in cases:
        response = session.post(url, data=body, headers={KEY_HEADER: sent_key, "Content-Type": content_type},
                                timeout=10)
        assert response.status_code == expected, (expected, response.text)
        case = operation.Case(headers={KEY_HEADER: sent_key}, body=orjson.loads(REAL_BUNDLE),
                              media_type="application/fhir+json")
        check(case, response)
    session.close()
    assert InboundMessage.objects.count() == 1


@pytest.mark.timeout(120)
def test_fuzz_the_endpoint_from_its_openapi_description(endpoint):
    base, key = endpoint
    schema = load_schema()
    strategies = [
        operation.as_strategy(generation_mode=mode)
        for result in schema.get_all_operations()
        for operation in [result.ok()]
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    ]
    deadline = time.monotonic() + BUDGET_SECONDS
    session = requests.Session()
    seen = set()
    calls = []

    # Rounds of 50 examples (each a fresh hypothesis run), the time budget checked between rounds:
    # an example cut short at a deadline would make hypothesis report flaky generation.
    @hypothesis_settings(max_examples=50, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def fuzz(data):
        case = data.draw(st.one_of(strategies))
        headers = dict(case.headers or {})
        if data.draw(st.booleans()):
            headers[KEY_HEADER] = key  # authenticated: the body checks come next
        case.headers = headers
        try:
            response = case.call(base_url=base, session=session, timeout=10)
        except (requests.exceptions.InvalidHeader, UnicodeEncodeError):
            reject()  # the client could not even send it (an illegal header value): not the server's concern
        seen.add(response.status_code)
        calls.append(time.monotonic())
        check(case, response)

    try:
        for _round in range(ROUNDS):
            if time.monotonic() > deadline:
                break
            fuzz()
    finally:
        session.close()
    # The run explored refusals of several kinds, not one answer over and over.
    assert len(calls) >= 50, len(calls)
    assert {400, 401, 405} <= seen, seen
