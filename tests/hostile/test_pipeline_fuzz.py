"""Any JSON shape through the reader, and through the whole pipeline: endpoint, store, worker.

tests/fhir/test_fhir_robustness.py mutates bundles whose envelope passes; here the reader also
gets any JSON value at all (strict, so its internal fallback cannot hide a crash), and every
example is posted to the endpoint with the clinic's key and then processed by the worker's
jobs (intake, then patient matching). The outcome is always clear: a 400 that keeps nothing,
or a stored message that the worker leaves processed, unknown_event, duplicate or failed with
a safe error. Nothing escapes the worker, no message stays pending, none is lost.
"""
import copy
import json
import re
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

from harbour.clinics.models import ocean_settings_for
from harbour.fhir.read import read_message
from harbour.intake.jobs import process_pending
from harbour.intake.models import InboundMessage
from harbour.patients.jobs import match_new_referrals
from harbour.referrals.models import Referral
from tests.intake.intake_client import give_key, outcome, post

BUNDLES = Path(__file__).resolve().parents[1] / "fixtures" / "bundles"
REAL = json.loads((BUNDLES / "add-service-request.back-pain.json").read_text())
FULL = json.loads((BUNDLES / "notify-update-service-request.full.json").read_text())
# Patient data of the FULL fixture that an error text must never carry.
PATIENT_DATA = ("1234567890", "Dana", "DKTest", "CHART-0042", "dana@example.org", "1980-02-29")
FINAL_STATES = {InboundMessage.State.PROCESSED, InboundMessage.State.UNKNOWN_EVENT,
                InboundMessage.State.DUPLICATE, InboundMessage.State.FAILED}
SAFE_ERROR = re.compile(r"^(ProcessingError: .+|\w+( at [\w.]+:\d+ in [\w<>]+)? \(details withheld: they may contain patient data\))$")

scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=30))
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=25,
)
# Values a FHIR reader meets by mistake: the right key names with the wrong kinds of values.
FHIR_KEYS = st.sampled_from(["resourceType", "id", "type", "entry", "resource", "fullUrl", "reference", "identifier",
                             "system", "value", "code", "coding", "display", "name", "family", "given", "birthDate",
                             "status", "focus", "eventCoding", "subject", "period", "start", "extension", "url"])
fhirish = st.recursive(
    scalars | st.sampled_from(["Bundle", "message", "MessageHeader", "ServiceRequest", "Patient", "Task",
                               "urn:uuid:71db1a5c-89ce-41d5-bc71-8466f6c2f182", "add-service-request"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(FHIR_KEYS, children, max_size=5),
    max_leaves=30,
)


def paths(value, prefix=()):
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        yield prefix + (key,)
        yield from paths(child, prefix + (key,))


PATHS = {"real": list(paths(REAL)), "full": list(paths(FULL))}
SOURCES = {"real": REAL, "full": FULL}


@st.composite
def mutated_bundles(draw):
    """A real bundle with a few elements replaced, removed, or given extra entries."""
    name = draw(st.sampled_from(["real", "full"]))
    bundle = copy.deepcopy(SOURCES[name])
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        path = draw(st.sampled_from(PATHS[name]))
        parent = bundle
        try:
            for key in path[:-1]:
                parent = parent[key]
            if draw(st.booleans()):
                parent[path[-1]] = draw(fhirish)
            else:
                del parent[path[-1]]
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed that path
    if isinstance(bundle.get("entry"), list) and draw(st.booleans()):
        bundle["entry"].append({"fullUrl": draw(st.text(max_size=20)), "resource": draw(fhirish)})
    bundle["id"] = draw(st.uuids()).hex  # every example is a new delivery
    return bundle


ANY_SHAPE = st.one_of(json_values, fhirish, mutated_bundles())


@hypothesis_settings(max_examples=200, deadline=None)
@given(ANY_SHAPE)
def test_read_message_takes_any_json_without_raising(value):
    message = read_message(value, strict=True)
    assert all(isinstance(w, str) for w in message.warnings)


def utf8_json(value) -> bytes:
    # orjson stops at 64-bit integers (2**64 is drawn on purpose): the standard library writes the rest.
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


@pytest.fixture
def key(clinic):
    row = ocean_settings_for(clinic)
    row.site_number = "1234"  # the fixtures' target site: referrals are "received" and fully applied
    row.save()
    return give_key(clinic)


@hypothesis_settings(max_examples=80, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(value=ANY_SHAPE, encode=st.sampled_from(["orjson", "json-ascii", "bom"]))
def test_any_json_through_the_endpoint_and_the_worker(clinic, key, settings, value, encode):
    settings.HARBOUR_INTAKE_FAILURE_LIMIT = 100_000
    if encode == "orjson":
        raw = utf8_json(value)
    elif encode == "json-ascii":
        raw = json.dumps(value).encode()
    else:  # a UTF-8 byte order mark: JSON all the same, accepted by the endpoint
        raw = b"\xef\xbb\xbf" + utf8_json(value)
    before = set(InboundMessage.objects.values_list("pk", flat=True))
    response = post(raw, key)
    assert response.status_code in (200, 400), response.status_code
    outcome(response)  # an OperationOutcome either way
    new = InboundMessage.objects.exclude(pk__in=before)
    if response.status_code == 400:
        assert not new.exists()
        return
    if not new.exists():  # the same bytes again (hypothesis repeats itself): a duplicate delivery
        stored = int(re.fullmatch(r"Already received as message (\d+); not stored again\.", outcome(response)[2])[1])
        new = InboundMessage.objects.filter(pk=stored)
    [message] = new
    # The worker's jobs, as `harbour worker` runs them; nothing may escape them.
    while process_pending() or match_new_referrals():
        pass
    message.refresh_from_db()
    assert message.state in FINAL_STATES, message.state
    assert message.raw == raw  # kept as received, whatever happened
    if message.state == InboundMessage.State.FAILED:
        assert SAFE_ERROR.match(message.error), message.error
        assert not any(data in message.error for data in PATIENT_DATA), message.error
    for warning in message.warnings:
        assert isinstance(warning, str)
        assert not any(data in warning for data in PATIENT_DATA), warning
    assert not InboundMessage.objects.filter(state=InboundMessage.State.PENDING).exists()


def test_a_real_bundle_with_a_byte_order_mark_is_processed_not_failed(clinic, key):
    """The endpoint acknowledges a BOM-prefixed bundle (it is JSON), so the worker must read it too:
    Ocean never resends what got a 200."""
    raw = b"\xef\xbb\xbf" + (BUNDLES / "add-service-request.back-pain.json").read_bytes()
    assert post(raw, key).status_code == 200
    process_pending()
    message = InboundMessage.objects.get()
    assert (message.state, message.error) == (InboundMessage.State.PROCESSED, "")
    assert Referral.objects.filter(clinic=clinic, ocean_ref=message.referral_ref).exists()


def test_numbers_beyond_a_double_are_processed_not_failed(clinic, key):
    bundle = copy.deepcopy(REAL)
    bundle["meta"] = {"versionId": 10**400}  # valid JSON that orjson refuses
    raw = json.dumps(bundle).encode()
    assert post(raw, key).status_code == 200
    process_pending()
    message = InboundMessage.objects.get()
    assert (message.state, message.error) == (InboundMessage.State.PROCESSED, "")


def test_the_outbox_echoes_a_snapshot_that_had_a_byte_order_mark(clinic, key):
    from harbour.ocean.outbox import latest_snapshot

    raw = b"\xef\xbb\xbf" + (BUNDLES / "add-service-request.back-pain.json").read_bytes()
    assert post(raw, key).status_code == 200
    process_pending()
    referral = Referral.objects.get(clinic=clinic)
    assert latest_snapshot(referral)["id"] == REAL["id"]
