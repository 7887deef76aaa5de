"""The endpoint under stress: racing deliveries, a failing database, and random input."""
import json
import threading
from contextlib import contextmanager

import orjson
import pytest
from django.db import OperationalError, connection, connections
from django.test import Client
from hypothesis import HealthCheck, given, settings as hypothesis_settings, strategies as st

from harbour.clinics.models import OceanSettings
from harbour.intake import views
from harbour.intake.models import InboundMessage
from tests.conftest import make_clinic
from tests.intake.intake_client import HOST, KEY_META, REAL_BUNDLE, URL, bundle, give_key, ocean, outcome, post


@pytest.fixture
def key(clinic):
    return give_key(clinic)


# --- Two deliveries of the same bundle at once -------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_racing_deliveries_leave_one_row_and_both_get_200(monkeypatch):
    clinic = make_clinic("Clinique Soleil", HOST)
    key = give_key(clinic)
    # Hold both requests after all their checks, then release them into the insert together:
    # on PostgreSQL both transactions insert at once and the unique index makes one wait and
    # fail; on SQLite the second waits for the write lock and then meets the constraint.
    gate = threading.Barrier(2)
    real_store = views.store_message

    def store_together(**kwargs):
        gate.wait(timeout=10)
        return real_store(**kwargs)

    monkeypatch.setattr(views, "store_message", store_together)
    answers = []

    def deliver():
        try:
            response = post(REAL_BUNDLE, key)
            answers.append((response.status_code, outcome(response)[2]))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    message = InboundMessage.objects.get()
    assert sorted(answers) == [
        (200, f"Already received as message {message.pk}; not stored again."),
        (200, f"Received and stored as message {message.pk}."),
    ]


# --- The database fails -------------------------------------------------------------------------


@contextmanager
def failing_statements(*prefixes):
    """Make the database connection raise OperationalError for statements starting with a prefix."""

    def wrapper(execute, sql, params, many, context):
        if sql.lstrip().upper().startswith(prefixes):
            raise OperationalError("database is unavailable (test)")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield


def assert_unavailable(response):
    assert response.status_code == 503
    assert response["Retry-After"] == "60"
    assert outcome(response) == (
        "error",
        "transient",
        "The message could not be stored right now and was not kept; please retry.",
    )


def test_503_when_the_insert_fails(clinic, key):
    with failing_statements('INSERT INTO "INTAKE_INBOUNDMESSAGE"'):
        response = post(REAL_BUNDLE, key)

    assert_unavailable(response)
    assert InboundMessage.objects.count() == 0
    assert ocean(clinic).last_inbound_at is None
    # Ocean's retry is then stored as usual.
    assert post(REAL_BUNDLE, key).status_code == 200
    assert InboundMessage.objects.count() == 1


def test_message_kept_is_acknowledged_even_if_noting_the_call_fails(clinic, key, caplog):
    # Store first: once the INSERT is committed the answer is 200; the settings page note is extra.
    with failing_statements('UPDATE "CLINICS_OCEANSETTINGS"'):
        response = post(REAL_BUNDLE, key)

    assert response.status_code == 200
    assert InboundMessage.objects.count() == 1
    assert ocean(clinic).last_inbound_at is None
    assert f"last inbound call of clinic {clinic.pk} could not be noted" in caplog.text


def test_503_when_the_database_is_down_not_401(clinic, key):
    with failing_statements("SELECT", "INSERT", "UPDATE"):
        response = post(REAL_BUNDLE, key)
    assert_unavailable(response)
    assert ocean(clinic).rejected_count == 0


def test_rejection_stays_401_when_its_bookkeeping_fails(clinic, key):
    with failing_statements("UPDATE", "INSERT"):
        response = post(REAL_BUNDLE, "wrong")
    assert response.status_code == 401
    assert outcome(response)[1] == "security"


def test_unexpected_error_answers_a_fhir_500_and_keeps_nothing(clinic, key, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(views, "store_message", broken)
    response = post(REAL_BUNDLE, key)

    assert response.status_code == 500
    assert outcome(response) == ("error", "exception", "The message could not be handled and was not kept.")
    assert InboundMessage.objects.count() == 0


# --- Random input never makes it fail ------------------------------------------------------------

METHODS = st.sampled_from(["POST", "POST", "POST", "GET", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "PROPFIND"])
CONTENT_TYPES = st.one_of(
    st.sampled_from(["application/fhir+json", "application/json; charset=latin-1", "", "text/plain", "*/*"]),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40),
)
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


def _mutated_bundle(data) -> bytes:
    value = bundle()
    value[data.draw(st.sampled_from(["id", "type", "entry", "resourceType", "extra"]))] = data.draw(JSONISH)
    return json.dumps(value).encode()


BODIES = st.one_of(
    st.binary(max_size=300),
    JSONISH.map(lambda value: json.dumps(value).encode()),
    st.just(REAL_BUNDLE),
    st.sampled_from([REAL_BUNDLE[:n] for n in (1, 100, 5000)]),
)
ANSWERS = {200, 400, 401, 405, 413, 415, 429}


@hypothesis_settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_no_input_makes_it_fail(clinic, key, settings, data):
    settings.HARBOUR_INTAKE_FAILURE_LIMIT = 10_000  # let every example reach the body checks
    method = data.draw(METHODS)
    body = _mutated_bundle(data) if data.draw(st.booleans()) else data.draw(BODIES)
    headers = {}
    key_choice = data.draw(st.sampled_from(["valid", "valid", "none", "wrong", "random"]))
    if key_choice == "valid":
        headers[KEY_META] = key
    elif key_choice == "wrong":
        headers[KEY_META] = key[::-1]
    elif key_choice == "random":
        headers[KEY_META] = data.draw(st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=60))
    if data.draw(st.booleans()):
        headers["CONTENT_LENGTH"] = data.draw(st.sampled_from(["", "-1", "abc", "0", str(len(body)), "99999999999"]))
    if data.draw(st.booleans()):
        headers["REMOTE_ADDR"] = data.draw(st.sampled_from(["", "unix:", "::1", "not an address", "10.1.2.3"]))

    response = Client(HTTP_HOST=HOST).generic(
        method, URL, body, content_type=data.draw(CONTENT_TYPES), **headers
    )

    assert response.status_code in ANSWERS
    assert response["Content-Type"] == "application/fhir+json"
    if method != "HEAD":
        assert orjson.loads(response.content)["resourceType"] == "OperationOutcome"
    if response.status_code == 200:
        assert InboundMessage.objects.filter(clinic=clinic).exists()
    assert OceanSettings.objects.filter(clinic=clinic).exists()
