"""v0.10.0 forms: Type/id references, ext-id-message-header, ServiceRequest.id, old spellings."""

import pytest

from harbour.fhir.read import check_envelope, read_message

REF = "71db1a5c-89ce-41d5-bc71-8466f6c2f182"


def resource(bundle, rtype):
    return next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == rtype)


def test_v010_file_reads_like_the_original(load_bundle):
    m = read_message(load_bundle("add-service-request.back-pain.v0.10.json"), strict=True)
    assert m.payload_version == "0.10.0"
    assert m.referral_ref == REF
    assert m.service_request.ref == REF  # from ServiceRequest.id
    assert m.focus == ("ServiceRequest",)
    assert m.patient.family == "DKTest"
    assert m.referrer.name == "Doug Kavanagh"
    assert m.target.reference == "autorouter_test49721437"
    assert m.target.external_service_id == "AUTOROUTER-EXT-1"
    assert m.target.location_address.city == "Toronto"
    assert m.service_request.reason_text == "Reason for Referral: Back pain with no red flags"
    assert not any("does not match" in w for w in m.warnings)
    assert "the referral ref was taken from ServiceRequest.id" not in m.warnings


def test_v010_envelope_reads_ext_id_message_header(load_bundle):
    assert check_envelope(load_bundle("add-service-request.back-pain.v0.10.json")).referral_ref == REF


@pytest.mark.parametrize("old, canonical", [
    ("add-servicerequest", "add-service-request"),
    ("notify-update-servicerequest", "notify-update-service-request"),
    ("terminate-servicerequest", "revoke-service-request"),
    ("add-communication", "send-communication-from-requester"),
    ("notify-add-servicerequest", "notify-add-service-request"),
])
def test_old_event_spellings(bundle, old, canonical):
    header = bundle["entry"][0]["resource"]
    header["eventCoding"]["code"] = old
    for entry in bundle["entry"]:  # no profile versions left: the spelling is the clue
        entry["resource"].pop("meta", None)
    del header["extension"]
    m = read_message(bundle, strict=True)
    assert (m.event_code, m.event, m.payload_version) == (old, canonical, "0.10.0")
    assert not any("unknown event" in w for w in m.warnings)


def test_unknown_event_is_kept_and_flagged(bundle):
    bundle["entry"][0]["resource"]["eventCoding"]["code"] = "notify-something-new"
    m = read_message(bundle, strict=True)
    assert m.event_code == "notify-something-new" and m.event is None
    assert any(w.startswith("unknown event code") for w in m.warnings)


def test_ext_id_message_header_value_string(bundle):
    header = bundle["entry"][0]["resource"]
    header["extension"] = [{"url": "http://ehealthontario.ca/fhir/StructureDefinition/ext-id-message-header",
                            "valueString": REF}]
    resource(bundle, "ServiceRequest")["identifier"] = []
    assert read_message(bundle, strict=True).referral_ref == REF
    assert check_envelope(bundle).referral_ref == REF


def test_service_request_identifier_when_header_has_none(bundle):
    del bundle["entry"][0]["resource"]["extension"]
    m = read_message(bundle, strict=True)
    assert m.referral_ref == REF and check_envelope(bundle).referral_ref == REF


def test_service_request_id_as_last_resort(bundle):
    del bundle["entry"][0]["resource"]["extension"]
    sr = resource(bundle, "ServiceRequest")
    del sr["identifier"]
    sr["id"] = "old-style-ref"
    m = read_message(bundle, strict=True)
    assert m.referral_ref == "old-style-ref" == m.service_request.ref
    assert "the referral ref was taken from ServiceRequest.id" in m.warnings  # profiles say v0.11.1


def test_missing_referral_ref_is_a_warning(bundle):
    del bundle["entry"][0]["resource"]["extension"]
    del resource(bundle, "ServiceRequest")["identifier"]
    m = read_message(bundle, strict=True)
    assert m.referral_ref is None
    assert "the message carries no referral ref" in m.warnings


def test_header_and_service_request_disagree(bundle):
    resource(bundle, "ServiceRequest")["identifier"][0]["value"] = "another-ref"
    m = read_message(bundle, strict=True)
    assert m.referral_ref == REF and m.service_request.ref == "another-ref"
    assert any("differs" in w for w in m.warnings)


@pytest.mark.parametrize("pipe, expected", [("|1.0.1", "0.11.1"), ("%7C1.0.1", "0.11.1"), ("%7c1.0.0", "0.10.0"),
                                            ("|1.0.0", "0.10.0")])
def test_payload_version_from_profiles(bundle, pipe, expected):
    for entry in bundle["entry"]:
        meta = entry["resource"].get("meta")
        if meta:
            meta["profile"] = [meta["profile"][0].split("|")[0] + pipe]
    assert read_message(bundle, strict=True).payload_version == expected


def test_payload_version_unknown_without_clues(bundle):
    for entry in bundle["entry"]:
        entry["resource"].pop("meta", None)
    del bundle["entry"][0]["resource"]["extension"]
    assert read_message(bundle, strict=True).payload_version is None


def test_payload_version_from_header_extension_alone(bundle):
    for entry in bundle["entry"]:
        entry["resource"].pop("meta", None)
    assert read_message(bundle, strict=True).payload_version == "0.11.1"
