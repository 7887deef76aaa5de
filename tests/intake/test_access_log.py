"""The access line carries ids and event codes only: an event code Harbour's catalogue does not
know, or a MessageHeader.id that is not a FHIR id, is sender text (it may hold a name or a
health card number) and is logged as "unrecognised" / "invalid", never as sent."""
import logging

import orjson
import pytest
from django.test import RequestFactory

from harbour.fhir import codes
from harbour.intake import views
from harbour.intake.models import InboundMessage
from tests.intake.intake_client import HOST, KEY_META, URL, bundle, give_key, post

FREE_TEXT = "Zqxwvfamily 9876543217"


@pytest.fixture
def key(clinic):
    return give_key(clinic)


def with_header(event=None, header_id=None) -> dict:
    data = bundle()
    header = data["entry"][0]["resource"]
    if event is not None:
        header["eventCoding"]["code"] = event
    if header_id is not None:
        header["id"] = header_id
    return data


def access_line(caplog):
    [record] = [r for r in caplog.records if r.name == "harbour.access"]
    return record


@pytest.mark.parametrize("event", [FREE_TEXT, "Zqxwvfamily", "9876543217", "add-service-request-9876543217"])
def test_an_event_code_harbour_does_not_know_is_logged_as_unrecognised(clinic, key, caplog, event):
    caplog.set_level(logging.INFO)
    response = post(with_header(event=event), key)

    assert response.status_code == 200  # kept for the worker, which decides what to do with it
    record = access_line(caplog)
    assert record.event == "unrecognised"
    assert " event=unrecognised " in record.getMessage()
    text = caplog.text
    for part in event.split():
        assert part not in text


@pytest.mark.parametrize("event, logged", [
    ("add-service-request", "add-service-request"),
    ("notify-update-servicerequest", "notify-update-servicerequest"),  # an older spelling it maps
    (" Revoke-Service-Request ", "revoke-service-request"),  # as the catalogue spells it
])
def test_an_event_code_of_the_catalogue_is_logged(clinic, key, caplog, event, logged):
    assert logged in codes.EVENT_ALIASES
    caplog.set_level(logging.INFO)
    assert post(with_header(event=event), key).status_code == 200
    assert access_line(caplog).event == logged


@pytest.mark.parametrize("header_id", [FREE_TEXT, "Zqxwvfamily_9876543217", "a" * 65, "é1234", "id/9876543217"])
def test_a_header_id_that_is_not_a_fhir_id_is_logged_as_invalid(clinic, key, caplog, header_id):
    caplog.set_level(logging.INFO)
    assert post(with_header(header_id=header_id), key).status_code == 200

    record = access_line(caplog)
    assert record.header_id == "invalid"
    assert " header_id=invalid " in record.getMessage()
    assert "9876543217" not in caplog.text and "Zqxwvfamily" not in caplog.text
    assert InboundMessage.objects.get().header_id  # stored as sent (trimmed), only the log leaves it out


@pytest.mark.parametrize("header_id", ["fdd94a37-22a7-41ce-8140-6604a1f10908", "A.b-9", "x" * 64])
def test_a_fhir_id_is_logged_as_it_is(clinic, key, caplog, header_id):
    caplog.set_level(logging.INFO)
    assert post(with_header(header_id=header_id), key).status_code == 200
    assert access_line(caplog).header_id == header_id


def test_the_views_own_line_follows_the_same_rules(clinic, key, caplog):
    # Without RequestContextMiddleware the view writes the line itself (test_endpoint.py).
    caplog.set_level(logging.INFO, logger="harbour.intake")
    request = RequestFactory(HTTP_HOST=HOST).generic(
        "POST", URL, orjson.dumps(with_header(event=FREE_TEXT, header_id=FREE_TEXT)),
        content_type="application/fhir+json", **{KEY_META: key})
    assert views.fhir_bundles(request).status_code == 200
    [line] = [r.getMessage() for r in caplog.records if r.name == "harbour.intake"]
    assert " event=unrecognised " in line and " header_id=invalid " in line
    assert "9876543217" not in line and "Zqxwvfamily" not in line
