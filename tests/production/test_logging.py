"""Structured logs: JSON lines, one access line per request with its request id and clinic id,
the same ids on every record emitted during the request, and no patient data or secret."""
import json
import logging
import runpy

import orjson
import pytest
from django.test import Client

from harbour.clinics.models import ocean_settings_for
from harbour.core import logging as harbour_logging
from harbour.core.worker import run_until_idle
from harbour.intake import views as intake_views
from harbour.intake.models import InboundMessage
from harbour.referrals.models import Referral
from tests.conftest import make_clinic
from tests.intake.intake_client import FIXTURES, HOST, REAL_BUNDLE, give_key, post

pytestmark = pytest.mark.django_db

UPDATE = (FIXTURES / "notify-update-service-request.full.json").read_bytes()
# Patient data in the two fixtures (see tests/fixtures/bundles/README.md), and our secrets.
PATIENT_DATA = ["DKTest", "Dana", "1980-02-29", "1234-567-890", "1234567890", "CHART-0042", "dana@"]
OAUTH_SECRET = "oauth-secret-never-logged-7f3a"


def access_lines(logs) -> list[dict]:
    return [r for r in logs.records() if r["logger"] == "harbour.access"]


def test_every_line_is_json_and_the_access_line_has_ids_path_status_duration(json_logs, admin_client, clinic):
    response = admin_client.get("/referrals/?q=DKTest&page=2")
    assert response.status_code == 200
    [line] = access_lines(json_logs)
    assert line["path"] == "/referrals/"  # no query string: a search may be a patient's name
    assert line["method"] == "GET" and line["status"] == 200 and line["duration_ms"] >= 0
    assert line["request_id"] == response["X-Request-ID"] and len(line["request_id"]) == 32
    assert line["clinic_id"] == clinic.pk
    assert line["level"] == "INFO" and line["time"].endswith("+00:00")
    assert "DKTest" not in json_logs.text


def test_a_proxy_request_id_is_kept_and_a_strange_one_replaced(json_logs):
    assert Client().get("/healthz", HTTP_X_REQUEST_ID="lb-7f2c.91")["X-Request-ID"] == "lb-7f2c.91"
    replaced = Client().get("/healthz", HTTP_X_REQUEST_ID='x" injected\nline')["X-Request-ID"]
    assert replaced != 'x" injected\nline' and len(replaced) == 32
    # Probes are logged at DEBUG, so INFO stays readable; the lines still carry the ids.
    lines = access_lines(json_logs)
    assert [line["request_id"] for line in lines] == ["lb-7f2c.91", replaced]
    assert {line["level"] for line in lines} == {"DEBUG"}


def test_the_intake_and_the_worker_log_ids_only_never_patient_data_or_keys(json_logs):
    clinic = make_clinic("Clinique Soleil", HOST)
    key = give_key(clinic)
    ocean = ocean_settings_for(clinic)
    ocean.oauth_client_id = "client-7"
    ocean.set_client_secret(OAUTH_SECRET)
    ocean.save()
    responses = [post(REAL_BUNDLE, key), post(UPDATE, key), post(REAL_BUNDLE, "wrong-key-value-123")]
    assert [r.status_code for r in responses] == [200, 200, 401]
    assert run_until_idle() >= 2
    assert set(InboundMessage.objects.values_list("state", flat=True)) == {"processed"}
    # The worker did read the patient (so there was something to leak).
    referral = Referral.objects.get()
    assert (referral.patient_family, str(referral.patient_birth_date)) == ("DKTest", "1980-02-29")
    assert referral.patient_hcn.replace("-", "").strip() == "1234567890"

    records = json_logs.records()
    accesses = access_lines(json_logs)
    assert [(a["status"], a["clinic_id"]) for a in accesses] == [(200, clinic.pk), (200, clinic.pk), (401, clinic.pk)]
    # One line per call: the intake's ids and codes ride on the access line, as JSON keys.
    assert not [r for r in records if r["logger"] == "harbour.intake"]
    messages = list(InboundMessage.objects.order_by("pk").values_list("pk", flat=True))
    assert [(a["event"], a["inbound_message"], a["reason"]) for a in accesses] == [
        ("add-service-request", messages[0], "-"), ("notify-update-service-request", messages[1], "-"),
        ("-", "-", "wrong-key"),
    ]
    for access, response in zip(accesses, responses):
        assert response["X-Request-ID"] == access["request_id"]
    text = json_logs.text
    for value in [*PATIENT_DATA, key, "wrong-key-value-123", OAUTH_SECRET]:
        assert value not in text, f"{value!r} reached the logs"


def test_an_exception_is_logged_as_its_type_and_frames_never_its_text(json_logs, monkeypatch):
    clinic = make_clinic("Clinique Soleil", HOST)
    key = give_key(clinic)

    def broken(obj):
        raise ValueError("patient DKTest born 1980-02-29 card 1234-567-890")

    monkeypatch.setattr(intake_views, "check_envelope", broken)
    response = post(REAL_BUNDLE, key)
    assert response.status_code == 500
    error, request_error = [r for r in json_logs.records() if r["level"] == "ERROR"]
    assert error["message"] == "intake failed unexpectedly"
    # Django's own line about the 500 comes after the middleware; it still has the request id.
    assert request_error["logger"] == "django.request" and request_error["status_code"] == 500
    assert request_error["request_id"] == response["X-Request-ID"] and "request" not in request_error
    assert error["exception"]["type"] == "builtins.ValueError"
    assert any("in broken" in frame for frame in error["exception"]["frames"])
    assert error["request_id"] == response["X-Request-ID"]
    for value in PATIENT_DATA:
        assert value not in json_logs.text


def test_a_failed_message_is_logged_without_the_exception_text(json_logs, monkeypatch):
    from harbour.referrals import process

    clinic = make_clinic("Clinique Soleil", HOST)
    assert post(REAL_BUNDLE, give_key(clinic)).status_code == 200

    def broken(obj):
        raise KeyError("DKTest 1234-567-890")

    monkeypatch.setattr(process, "read_message", broken)
    run_until_idle()
    assert InboundMessage.objects.get().state == "failed"
    [failed] = [r for r in json_logs.records() if "failed: KeyError" in r["message"]]
    assert failed["clinic_id"] == clinic.pk  # the worker's lines name the clinic, as a request's do
    assert "DKTest" not in json_logs.text


def test_json_is_the_production_default_and_plain_the_development_one(production_settings, settings):
    assert production_settings["HARBOUR_LOG_FORMAT"] == "json"
    assert production_settings["LOGGING"]["handlers"]["console"]["formatter"] == "json"
    assert settings.HARBOUR_LOG_FORMAT == "plain"  # the suite runs as development


def test_gunicorn_writes_json_in_production(monkeypatch):
    from harbour.core import gunicorn_conf

    monkeypatch.setenv("HARBOUR_ENV", "production")
    monkeypatch.delenv("HARBOUR_LOG_FORMAT", raising=False)
    conf = runpy.run_path(gunicorn_conf.__file__)
    assert conf["logconfig_dict"]["formatters"]["json"]["()"] == "harbour.core.logging.JsonFormatter"
    assert conf["accesslog"] is None  # the middleware's access line replaces gunicorn's
    monkeypatch.setenv("HARBOUR_ENV", "development")
    assert "logconfig_dict" not in runpy.run_path(gunicorn_conf.__file__)


def test_the_formatter_keeps_extra_ids_and_context_outside_requests():
    record = logging.LogRecord("harbour.ocean", logging.INFO, __file__, 1, "outbound %s delivered", (42,), None)
    record.outbound_id = 42
    harbour_logging.ContextFilter().filter(record)
    line = json.loads(harbour_logging.JsonFormatter().format(record))
    assert line["message"] == "outbound 42 delivered" and line["outbound_id"] == 42
    assert "request_id" not in line  # no request: no made-up id
    assert orjson.loads(orjson.dumps(line)) == line


def test_a_path_with_encoded_line_breaks_stays_on_one_line(json_logs):
    Client().get("/nowhere%0Aforged%20line%0D")
    [line] = access_lines(json_logs)
    assert line["path"] == "/nowhere?forged line?" and line["status"] == 404
