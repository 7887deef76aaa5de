"""The sandbox's message bundles have the shape of Ocean's real payload."""
import json
from pathlib import Path

import pytest

from harbour.sandbox.bundles import build_message
from harbour.sandbox.delivery import enqueue
from tests.sandbox.conftest import PUBLIC_URL, send_referral

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bundles"
REAL = json.loads((FIXTURES / "add-service-request.back-pain.json").read_text())


def systems(node, found=None):
    """Every `system` and extension `url` anywhere in a resource tree."""
    found = [] if found is None else found
    if isinstance(node, dict):
        for key, value in node.items():
            if key in {"system", "url"} and isinstance(value, str):
                found.append(value)
            systems(value, found)
    elif isinstance(node, list):
        for value in node:
            systems(value, found)
    return found


def by_type(bundle, rtype):
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == rtype]


@pytest.fixture
def bundle(pair):
    referral = send_referral(pair)
    return referral, build_message(referral, "add-service-request", reason_text="Initial")


def test_v0_11_1_bundle_has_the_real_payloads_skeleton(bundle):
    referral, built = bundle
    assert [e["resource"]["resourceType"] for e in built["entry"]] == [e["resource"]["resourceType"] for e in REAL["entry"]]
    assert built["type"] == "message" and built["id"] != REAL["id"]
    header, real_header = built["entry"][0], REAL["entry"][0]
    assert set(header["resource"]) == set(real_header["resource"])
    # Bare UUID for the header's fullUrl, urn:uuid: everywhere else, as in the real payload.
    assert header["fullUrl"] == header["resource"]["id"] and ":" not in header["fullUrl"]
    assert all(e["fullUrl"].startswith("urn:uuid:") for e in built["entry"][1:])
    assert all("id" not in e["resource"] for e in built["entry"][1:])
    ext = header["resource"]["extension"][0]
    assert ext["url"] == real_header["resource"]["extension"][0]["url"]
    assert ext["valueIdentifier"] == {"system": f"{PUBLIC_URL}/svc/fhir/v1/NamingSystem/id-ereferral-reference", "value": str(referral.ref)}
    assert header["resource"]["eventCoding"] == real_header["resource"]["eventCoding"]
    assert header["resource"]["source"] == {"name": "Ocean", "endpoint": f"{PUBLIC_URL}/svc/fhir/v1/$process-messages"}
    assert header["resource"]["focus"] == [{"reference": f"urn:uuid:{referral.ref}"}]
    assert header["resource"]["reason"] == {"text": "Initial"}


def test_every_reference_resolves_and_profiles_match(bundle):
    _, built = bundle
    urls = {e["fullUrl"] for e in built["entry"]}
    refs = []

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("reference"), str):
                refs.append(node["reference"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(built)
    assert refs and all(ref.startswith("urn:uuid:") and ref in urls for ref in refs)
    real_profiles = {e["resource"]["resourceType"]: e["resource"]["meta"]["profile"] for e in REAL["entry"]}
    for entry in built["entry"]:
        assert entry["resource"]["meta"]["profile"] == real_profiles[entry["resource"]["resourceType"]]


def test_systems_are_rooted_at_the_sandbox_and_known_ones_match_the_real_payload(bundle):
    _, built = bundle
    ocean_systems = {s for s in systems(built) if "/svc/fhir/v1/" in s}
    assert ocean_systems and all(s.startswith(PUBLIC_URL + "/svc/fhir/v1/") for s in ocean_systems)
    real_suffixes = {s.replace("http://localhost:8081", "") for s in systems(REAL) if "localhost:8081" in s}
    ours = {s.replace(PUBLIC_URL, "") for s in ocean_systems}
    # Everything the real payload roots at Ocean's host, we root at ours (plus what it lacked).
    assert real_suffixes - {"/svc/fhir/v1/ServiceRequest/71db1a5c-89ce-41d5-bc71-8466f6c2f182/$letter"} <= ours


def test_content_patient_letter_note_and_form(bundle):
    referral, built = bundle
    patient = by_type(built, "Patient")[0]
    hcn = patient["identifier"][0]
    assert hcn["system"] == "https://fhir.infoway-inforoute.ca/NamingSystem/ca-on-patient-hcn"
    assert hcn["value"] == "1234567890"
    assert hcn["extension"] == [{"url": "http://ehealthontario.ca/fhir/StructureDefinition/ext-id-health-card-version-code", "valueString": "AB"}]
    assert patient["name"][0]["family"] == "Tremblay" and patient["name"][0]["given"] == ["Marie", "Claude"]
    assert patient["birthDate"] == "1980-02-29"
    letter = by_type(built, "DocumentReference")[0]
    assert letter["content"][0]["attachment"]["url"] == f"{PUBLIC_URL}/svc/fhir/v1/ServiceRequest/{referral.ref}/$letter"
    assert letter["content"][0]["attachment"]["contentType"] == "application/pdf"
    service_request = by_type(built, "ServiceRequest")[0]
    assert service_request["status"] == "active" and service_request["intent"] == "proposal"
    assert service_request["note"][0]["text"] == "<b>Reason for Referral:</b> Back pain with no red flags&nbsp;"
    assert service_request["category"][0]["coding"][0]["display"] == "MENTAL_HEALTH_ASSESSMENT_AND_REFERRAL"
    form = by_type(built, "QuestionnaireResponse")[0]
    assert form["identifier"]["value"] == "quickReferral"
    items = {item["linkId"]: item for item in form["item"]}
    assert items["allergies"]["extension"][0] == {"url": f"{PUBLIC_URL}/svc/fhir/v1/StructureDefinition/ext-ocean-eform-item-visibility", "valueString": "hidden"}
    assert "answer" not in items["allergies"]
    assert items["history"]["answer"] == [{"valueString": "Two weeks"}]
    assert items["rfr"]["answer"] == [{"valueString": "Back pain with no red flags"}]
    target = by_type(built, "PractitionerRole")[0]
    assert {i["system"].rsplit("/", 1)[1]: i["value"] for i in target["identifier"]} == {
        "id-referral-target-reference": referral.target_listing.ref, "id-site-number": "1234", "id-referral-target-external-service": "SOLEIL-1",
    }


def test_html_in_the_reason_is_escaped(pair):
    referral = send_referral(pair, reason="<script>alert(1)</script> & co")
    note = by_type(build_message(referral, "add-service-request"), "ServiceRequest")[0]["note"][0]["text"]
    assert "<script>" not in note and "&lt;script&gt;" in note and "&amp; co" in note


def test_resource_ids_are_stable_across_bundles_of_one_referral(bundle):
    referral, first = bundle
    second = build_message(referral, "notify-update-service-request")
    assert [e["fullUrl"] for e in first["entry"][1:]] == [e["fullUrl"] for e in second["entry"][1:]]
    assert first["id"] != second["id"] and first["entry"][0]["fullUrl"] != second["entry"][0]["fullUrl"]
    assert "reason" not in second["entry"][0]["resource"]


def test_v0_10_0_bundle_uses_type_id_references_and_the_old_header_extension(pair):
    referral = send_referral(pair)
    built = build_message(referral, "add-service-request", version="0.10.0")
    header = built["entry"][0]
    assert header["fullUrl"] == f"{PUBLIC_URL}/svc/fhir/v1/MessageHeader/{header['resource']['id']}"
    assert header["resource"]["extension"] == [{"url": "http://ehealthontario.ca/fhir/StructureDefinition/ext-id-message-header", "valueString": str(referral.ref)}]
    assert header["resource"]["meta"]["profile"][0].endswith("MessageHeader|1.0.0")
    assert header["resource"]["destination"][0]["receiver"] == {"identifier": {
        "system": f"{PUBLIC_URL}/svc/fhir/v1/NamingSystem/id-referral-target-external-service", "value": "SOLEIL-1"}}
    assert header["resource"]["focus"] == [{"reference": f"ServiceRequest/{referral.ref}"}]
    for entry in built["entry"][1:]:
        resource = entry["resource"]
        assert entry["fullUrl"] == f"{PUBLIC_URL}/svc/fhir/v1/{resource['resourceType']}/{resource['id']}"
        assert resource["meta"]["profile"][0].endswith("|1.0.0")
    service_request = by_type(built, "ServiceRequest")[0]
    assert service_request["id"] == str(referral.ref)
    assert service_request["subject"]["reference"].startswith("Patient/")


def test_integration_payload_type_chooses_the_version(pair):
    from harbour.sandbox import sites

    referral = send_referral(pair)
    old = sites.register_integration(pair["clinic"], name="Old EMR", request_url="http://127.0.0.1:9/x", payload_version="0.10.0")
    delivery = enqueue(old, referral, "notify-update-service-request", reason="resend")
    sent = json.loads(bytes(delivery.bundle))
    assert sent["entry"][0]["resource"]["extension"][0]["url"].endswith("ext-id-message-header")
    assert sent["entry"][0]["resource"]["destination"][0]["endpoint"] == "http://127.0.0.1:9/x"


@pytest.mark.parametrize("version", ["0.11.1", "0.10.0"])
def test_harbours_reader_reads_sandbox_bundles_without_warnings(pair, version):
    """Cross-check with Harbour's own lenient reader (harbour.fhir): nothing odd, all found."""
    from harbour.fhir.inspect import inspect_bytes
    from harbour.sandbox.bundles import to_bytes
    from harbour.sandbox.models import Appointment, Message

    referral = send_referral(pair, attachments=[{"title": "x.pdf", "content_type": "application/pdf", "data": "JVBERi0="}])
    referral.task_status, referral.status_reason = "accepted", "Will book"
    referral.save()
    Appointment.objects.create(referral=referral, start=referral.authored_on, end=referral.authored_on, confirmed=True)
    Message.objects.create(referral=referral, side="sender", site=pair["referrer"], text="Any news?")
    summary = inspect_bytes(to_bytes(build_message(referral, "notify-update-service-request", version=version)), "1234")
    assert summary["accepted"] and summary["warnings"] == []
    assert (summary["event_code"], summary["referral_ref"], summary["direction"]) == ("notify-update-service-request", str(referral.ref), "received")
    assert summary["payload_version"] == version
    patient = summary["patient"]
    assert "1234567890" in str(patient) and "'AB'" in str(patient) and "Tremblay" in str(patient)
    assert "Back pain with no red flags" in summary["reason"]
    assert [t["status"] for t in summary["tasks"]] == ["accepted"]
    assert len(summary["appointments"]) == 1 and len(summary["communications"]) == 1 and [a["title"] for a in summary["attachments"]][1:] == ["x.pdf"]
