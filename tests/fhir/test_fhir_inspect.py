import json
from pathlib import Path

import pytest

from harbour.fhir.inspect import inspect_bytes

RAW = (Path(__file__).resolve().parents[1] / "fixtures" / "bundles" / "add-service-request.back-pain.json").read_bytes()


def test_fixture_summary():
    out = inspect_bytes(RAW, site_number="1234")
    json.dumps(out)  # plain JSON types only
    assert out["accepted"] is True
    assert out["event_code"] == "add-service-request" and out["payload_version"] == "0.11.1"
    assert out["referral_ref"] == "71db1a5c-89ce-41d5-bc71-8466f6c2f182"
    assert out["direction"] == "received"
    assert out["patient"]["family"] == "DKTest" and out["patient"]["hcn"] is None
    assert out["referrer"]["name"] == "Doug Kavanagh"
    assert out["target"]["reference"] == "autorouter_test49721437"
    assert out["target"]["location_address"]["one_line"] == "3080 Yonge St, Toronto, ON M4P 0C6"
    assert out["category"] == {"code": "410223002", "display": "MENTAL_HEALTH_ASSESSMENT_AND_REFERRAL",
                               "label": "Mental health assessment and referral"}
    assert out["reason"] == "Reason for Referral: Back pain with no red flags"
    (form,) = out["forms"]
    assert form["hidden_count"] == 17 and form["item_count"] == 25
    assert form["answers"] == [{"link_id": "rfr", "label": "rfr", "answers": ["back pain with no red flags"],
                                "hidden": False}]
    assert out["attachments"][0]["kind"] == "letter"
    assert out["attachments"][0]["creation"] == "2025-05-27T11:38:00-04:00"
    assert out["appointments"] == out["tasks"] == out["communications"] == []
    assert "health card identifier has no value" in out["warnings"]


@pytest.mark.parametrize("site, direction", [("1234", "received"), (" 1234 ", "received"), ("999", "sent"),
                                             (None, "unknown"), ("", "unknown")])
def test_direction(site, direction):
    assert inspect_bytes(RAW, site)["direction"] == direction


def test_direction_unknown_when_target_has_no_site_number():
    bundle = json.loads(RAW)
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "PractitionerRole" and "identifier" in entry["resource"]:
            entry["resource"]["identifier"] = entry["resource"]["identifier"][:1]
    assert inspect_bytes(json.dumps(bundle).encode(), "1234")["direction"] == "unknown"


@pytest.mark.parametrize("raw, error", [
    (b"\xff\xfe{}", "The body is not valid UTF-8 (invalid byte at offset 0)."),
    (b"{not json", "The body is not valid JSON (line 1, column 2)."),
    (b"", "The body is empty."),
    (b"[]", "The body is not a JSON object."),
    (b'{"resourceType": "Patient", "id": "p"}', 'The body is not a FHIR Bundle: resourceType must be "Bundle".'),
    (b'{"resourceType": "Bundle", "type": "transaction", "entry": []}',
     'The Bundle is not a message: type must be "message".'),
])
def test_rejected_bodies(raw, error):
    assert inspect_bytes(raw) == {"accepted": False, "error": error}


def test_what_the_endpoint_accepts_inspect_reads():
    # A UTF-8 byte order mark is JSON to the endpoint (it answers 200), so inspect reads it too.
    raw = b"\xef\xbb\xbf" + RAW
    assert inspect_bytes(raw)["accepted"] is True


def test_str_input_is_accepted():
    assert inspect_bytes(RAW.decode())["accepted"] is True


@pytest.mark.parametrize("status, dated, cancels", [
    ("booked", True, False),
    ("cancelled", True, True),    # a cancelled status ends a booking, dated or not
    ("noshow", True, True),
    ("proposed", False, True),    # Ocean's signal (§5.2): undated
    ("booked", False, True),      # undated whatever the status, as processing reads it
])
def test_inspect_marks_the_appointments_processing_takes_for_a_cancellation(load_bundle, status, dated, cancels):
    bundle = load_bundle("notify-update-service-request.full.json")
    appointments = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Appointment"]
    appointment = appointments[0]
    appointment["status"] = status
    if not dated:
        for field in ("start", "end", "minutesDuration"):
            appointment.pop(field, None)
    out = inspect_bytes(json.dumps(bundle).encode(), "1234")
    assert out["appointments"][0]["is_cancellation_signal"] is cancels
