"""The intake endpoint over real HTTP through harbour.wsgi, whose lean handler serves it.

The other intake tests use Django's test client, which runs the site's full handler; these post
to a real WSGI server (wsgiref, in a thread) running harbour.wsgi.application, and check that
every answer is the one the full handler gives, status, OperationOutcome and headers alike.
"""
import logging

import httpx
import orjson
import pytest

from harbour.core.logging import SecurityEventFilter
from harbour.intake.models import InboundMessage
from harbour.wsgi import application
from tests.intake.intake_client import HOST, REAL_BUNDLE, URL, bundle, give_key, ocean, post
from tests.intake.live_http import base_url  # noqa: F401 (a fixture)

# Set by the WSGI server or differing per call; Content-Language and Vary come from the site's
# LocaleMiddleware, which the lean handler leaves out (harbour/wsgi.py says why).
PER_CALL_HEADERS = {"date", "server", "content-length"}
SITE_ONLY_HEADERS = {"content-language", "vary"}


@pytest.fixture
def key(clinic):
    return give_key(clinic)


def send(base_url, body, key=None, *, path=URL, content_type="application/fhir+json", method="POST", **headers):
    if isinstance(body, dict):
        body = orjson.dumps(body)
    headers = {"Host": HOST, "Content-Type": content_type, **headers}
    if key is not None:
        headers["Referral-Integration-API-Key"] = key
    return httpx.request(method, base_url + path, content=body, headers=headers, timeout=30)


def issue(response) -> dict:
    assert response.headers["content-type"] == "application/fhir+json"
    data = orjson.loads(response.content)
    assert data["resourceType"] == "OperationOutcome"
    [only] = data["issue"]
    return only


def same_as_full_handler(lean, full) -> None:
    """The lean answer is the full handler's: status, OperationOutcome, headers."""
    assert lean.status_code == full.status_code
    lean_issue, full_issue = issue(lean), orjson.loads(full.content)["issue"][0]
    assert (lean_issue["severity"], lean_issue["code"]) == (full_issue["severity"], full_issue["code"])
    lean_names = {name.lower() for name in lean.headers} - PER_CALL_HEADERS
    full_names = {name.lower() for name in full.headers} - PER_CALL_HEADERS - SITE_ONLY_HEADERS
    assert lean_names == full_names
    for name in full_names - {"x-request-id"}:
        assert lean.headers[name] == full[name], name


def test_the_endpoint_paths_take_the_lean_handler_and_the_rest_the_site(settings):
    assert application.intake_paths == {URL, URL + "/"}
    assert application.intake is not application.site
    lean = application.intake.middleware
    assert lean == [path for path in settings.MIDDLEWARE if path in lean]  # same order as the site's
    assert "django.contrib.sessions.middleware.SessionMiddleware" not in lean
    assert "django.middleware.csrf.CsrfViewMiddleware" not in lean
    assert "django.middleware.common.CommonMiddleware" in lean  # ALLOWED_HOSTS, Content-Length


def test_stored_and_acknowledged_like_the_full_handler(base_url, clinic, key, caplog):
    caplog.set_level(logging.INFO, logger="harbour.access")
    lean = send(base_url, REAL_BUNDLE, key)

    assert lean.status_code == 200
    message = InboundMessage.objects.get()
    assert issue(lean)["diagnostics"] == f"Received and stored as message {message.pk}."
    assert bytes(message.raw) == REAL_BUNDLE
    assert (message.clinic_id, message.event_code, message.remote_addr) == (clinic.pk, "add-service-request", "127.0.0.1")
    assert ocean(clinic).last_inbound_result == "200 add-service-request"
    assert any(r.name == "harbour.access" and r.clinic_id == clinic.pk
               and " 200 " in r.getMessage() and f"event=add-service-request inbound_message={message.pk} " in r.getMessage()
               for r in caplog.records)
    same_as_full_handler(lean, post(bundle(id="through-the-full-handler"), key))


def test_duplicate_is_acknowledged_once_stored(base_url, clinic, key):
    first = send(base_url, REAL_BUNDLE, key)
    again = send(base_url, REAL_BUNDLE, key, path=URL + "/")

    message = InboundMessage.objects.get()
    assert (first.status_code, again.status_code) == (200, 200)
    assert issue(again)["diagnostics"] == f"Already received as message {message.pk}; not stored again."
    assert ocean(clinic).last_inbound_result == "200 add-service-request (duplicate)"
    same_as_full_handler(again, post(REAL_BUNDLE, key))


@pytest.mark.parametrize("wrong", [None, "not-the-key"])
def test_missing_or_wrong_key_is_401(base_url, clinic, key, wrong):
    lean = send(base_url, REAL_BUNDLE, wrong)

    assert lean.status_code == 401
    assert issue(lean)["code"] == "security"
    assert not InboundMessage.objects.exists()
    assert ocean(clinic).rejected_count == 1
    same_as_full_handler(lean, post(REAL_BUNDLE, wrong))


def test_not_json_is_400(base_url, clinic, key):
    lean = send(base_url, b"{not json", key)

    assert lean.status_code == 400
    assert issue(lean)["code"] == "invalid"
    same_as_full_handler(lean, post(b"{not json", key))
    assert not InboundMessage.objects.exists()


def test_too_large_is_413(base_url, clinic, key, settings):
    settings.HARBOUR_MAX_BUNDLE_BYTES = 1000
    lean = send(base_url, REAL_BUNDLE, key)

    assert lean.status_code == 413
    assert issue(lean)["diagnostics"] == "The body is larger than the limit of 1000 bytes."
    same_as_full_handler(lean, post(REAL_BUNDLE, key))
    assert not InboundMessage.objects.exists()


def test_other_methods_and_content_types_as_the_full_handler(base_url, clinic, key):
    get = send(base_url, b"", key, method="GET")
    assert (get.status_code, get.headers["allow"]) == (405, "POST")
    text = send(base_url, REAL_BUNDLE, key, content_type="text/plain")
    assert text.status_code == 415
    same_as_full_handler(text, post(REAL_BUNDLE, key, content_type="text/plain"))


def test_other_paths_still_reach_the_site(base_url, clinic):
    response = httpx.get(base_url + "/accounts/login/", headers={"Host": HOST}, timeout=30)
    assert response.status_code == 200
    assert response.headers.get("content-language")  # the site's LocaleMiddleware ran


@pytest.mark.parametrize("host", ["elsewhere.example", "not a host!"])
def test_a_host_header_refused_by_django_is_a_400_operation_outcome(base_url, clinic, key, settings, host, caplog):
    # Django's CommonMiddleware refuses these before the view: ALLOWED_HOSTS, or not a host name at all.
    settings.ALLOWED_HOSTS = [HOST]
    lean = send(base_url, REAL_BUNDLE, key, Host=host)

    assert lean.status_code == 400
    assert issue(lean)["code"] == "invalid"
    assert "Host header" in issue(lean)["diagnostics"] and host not in lean.text
    same_as_full_handler(lean, post(REAL_BUNDLE, key, host=host))
    assert not InboundMessage.objects.exists()
    # What the log handler writes: a warning naming the check, not the sender's Host text, no traceback.
    [console] = [h for h in logging.getLogger().handlers if any(isinstance(f, SecurityEventFilter) for f in h.filters)]
    written = [console.format(r) for r in caplog.records if r.name.startswith("django.security") and console.filter(r)]
    assert len(written) == 2  # the lean handler's call and the full handler's
    assert all("WARNING" in line and line.endswith("request refused: DisallowedHost") for line in written)
    assert not any(host in line or "Traceback" in line for line in written)
