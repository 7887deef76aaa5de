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


def test_a_listing_without_site_number_is_a_sent_copy_as_processing_reads_it(bundle):
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "PractitionerRole" and "identifier" in resource:
            resource["identifier"] = [i for i in resource["identifier"] if not i.get("system", "").endswith("id-site-number")]
    out = inspect_bytes(json.dumps(bundle).encode(), "1234")
    assert out["target"]["site_number"] is None and out["target"]["reference"]
    assert out["direction"] == "sent"


@pytest.mark.parametrize("change, expected", [
    (None, {"outcome": "processed", "needs_attention": False}),  # the real payload's usual gaps call no one
    ("no-reference", {"outcome": "failed", "error": "the message names no referral reference",
                      "needs_attention": False}),
    ("unknown-event", {"outcome": "unknown_event", "needs_attention": False}),
    ("no-patient", {"outcome": "processed", "needs_attention": True}),
])
def test_inspect_says_what_the_worker_would_make_of_the_message(bundle, change, expected):
    header = bundle["entry"][0]["resource"]
    if change == "no-reference":
        header.pop("extension")
        for entry in bundle["entry"]:
            if entry["resource"]["resourceType"] == "ServiceRequest":
                entry["resource"].pop("identifier")
    elif change == "unknown-event":
        header["eventCoding"]["code"] = "frobnicate-service-request"
    elif change == "no-patient":
        bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "Patient"]
    assert inspect_bytes(json.dumps(bundle).encode(), "1234")["processing"] == expected


def test_a_body_past_the_endpoint_limit_is_refused_as_the_endpoint_refuses_it():
    assert inspect_bytes(RAW, max_bytes=len(RAW))["accepted"] is True
    assert inspect_bytes(RAW, max_bytes=len(RAW) - 1) == {
        "accepted": False, "error": f"The body is larger than the limit of {len(RAW) - 1} bytes."}
