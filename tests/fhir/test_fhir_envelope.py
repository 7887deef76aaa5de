"""check_envelope raises EnvelopeError and nothing else; when it passes, read_message reads."""

import pytest
from hypothesis import given, settings, strategies as st

from harbour.fhir import read
from harbour.fhir.read import EnvelopeError, check_envelope, read_message

FAST = settings(max_examples=200, deadline=None)

leaves = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
json_values = st.recursive(
    leaves,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)

# FHIR-ish keys and values, so random bundles reach deep into the reader.
FHIR_KEYS = ["resourceType", "id", "fullUrl", "resource", "reference", "identifier", "system", "value",
             "extension", "url", "valueString", "valueIdentifier", "eventCoding", "code", "focus", "subject",
             "requester", "performer", "destination", "receiver", "name", "family", "given", "birthDate",
             "item", "linkId", "answer", "text", "content", "attachment", "basedOn", "start", "status",
             "participant", "actor", "payload", "contentString", "meta", "profile", "location", "address"]
FHIR_STRINGS = ["Patient", "ServiceRequest", "PractitionerRole", "Practitioner", "Location", "Task",
                "Appointment", "Communication", "DocumentReference", "QuestionnaireResponse",
                "urn:uuid:a", "a", "Patient/a", "http://h/Patient/a", "x/id-ereferral-reference",
                "x/ca-on-patient-hcn", "x/id-site-number", "x/ext-referral-identifier", "hidden",
                "x/ext-ocean-eform-item-visibility", "2025-01-01", "2025-01-01T00:00:00Z", "proposed",
                "p|1.0.1", "<b>x</b>&nbsp;"]
fhirish = st.recursive(
    leaves | st.sampled_from(FHIR_STRINGS),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.sampled_from(FHIR_KEYS), children, max_size=6),
    max_leaves=30,
)


def message_bundle(header, entries):
    return {"resourceType": "Bundle", "type": "message",
            "entry": [{"fullUrl": "h", "resource": {**header, "resourceType": "MessageHeader"}}, *entries]}


@pytest.mark.parametrize("obj, message", [
    ([], "The body is not a JSON object."),
    ("Bundle", "The body is not a JSON object."),
    (None, "The body is not a JSON object."),
    ({"resourceType": "Patient"}, 'The body is not a FHIR Bundle: resourceType must be "Bundle".'),
    ({"resourceType": ["Bundle"]}, 'The body is not a FHIR Bundle: resourceType must be "Bundle".'),
    ({"resourceType": "Bundle", "type": "transaction"}, 'The Bundle is not a message: type must be "message".'),
    ({"resourceType": "Bundle", "type": "message"}, "The Bundle has no entries."),
    ({"resourceType": "Bundle", "type": "message", "entry": {}}, "The Bundle has no entries."),
    ({"resourceType": "Bundle", "type": "message", "entry": [1]},
     "The first entry of the Bundle is not a MessageHeader."),
    ({"resourceType": "Bundle", "type": "message", "entry": [{"resource": {"resourceType": "Patient"}}]},
     "The first entry of the Bundle is not a MessageHeader."),
])
def test_envelope_errors_are_plain_sentences(obj, message):
    with pytest.raises(EnvelopeError) as info:
        check_envelope(obj)
    assert info.value.message == message == str(info.value)


def test_minimal_envelope_has_all_fields_none():
    env = check_envelope(message_bundle({}, []))
    assert (env.bundle_id, env.header_id, env.event_code, env.referral_ref) == (None, None, None, None)


def test_envelope_fields_of_wrong_type_are_none():
    env = check_envelope({"resourceType": "Bundle", "type": "message", "id": ["x"],
                          "entry": [{"resource": {"resourceType": "MessageHeader", "id": {},
                                                  "eventCoding": "add-service-request", "extension": 5}}]})
    assert env == type(env)(None, None, None, None)


@FAST
@given(json_values)
def test_any_json_value(obj):
    try:
        read._check_envelope(obj)  # without the safety net, so real bugs surface
    except EnvelopeError:
        return
    read_message(obj, strict=True)


@FAST
@given(fhirish, st.lists(fhirish, max_size=6), st.one_of(st.none(), json_values))
def test_fhirish_bundles(header, entries, bundle_id):
    header = header if isinstance(header, dict) else {}
    entries = [e if not isinstance(e, dict) or "resource" in e else {"resource": e} for e in entries]
    obj = message_bundle(header, entries)
    obj["id"] = bundle_id
    check_envelope(obj)
    message = read_message(obj, strict=True)
    assert all(isinstance(w, str) for w in message.warnings)
