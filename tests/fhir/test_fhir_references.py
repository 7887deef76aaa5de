"""Reference resolution, contract §4.3, one rule at a time."""

from harbour.fhir.read import read_message

PATIENT_UUID = "a5f0e549-754c-4a09-a96f-555e981aa3d1"


def entry(bundle, rtype):
    return next(e for e in bundle["entry"] if e["resource"]["resourceType"] == rtype)


def subject_family(bundle):
    m = read_message(bundle, strict=True)
    return (m.patient.family if m.patient else None), m.warnings


def test_rule1_exact_full_url(bundle):
    entry(bundle, "Patient")["fullUrl"] = "https://emr.example/fhir/anything-goes"
    entry(bundle, "ServiceRequest")["resource"]["subject"] = {"reference": "https://emr.example/fhir/anything-goes"}
    entry(bundle, "Patient")["resource"]["name"][0]["family"] = "Exact"
    family, warnings = subject_family(bundle)
    assert family == "Exact" and not any("subject" in w for w in warnings)


def test_rule2_urn_uuid_reference_to_bare_full_url(bundle):
    # The header itself is the real-world case: bare fullUrl, urn:uuid: elsewhere.
    entry(bundle, "Patient")["fullUrl"] = PATIENT_UUID
    family, warnings = subject_family(bundle)
    assert family == "DKTest" and not any("subject" in w for w in warnings)


def test_rule2_bare_reference_to_urn_uuid_full_url(bundle):
    entry(bundle, "ServiceRequest")["resource"]["subject"] = {"reference": PATIENT_UUID.upper()}
    family, warnings = subject_family(bundle)
    assert family == "DKTest" and not any("subject" in w for w in warnings)


def test_rule3_type_id_against_resource_id(bundle):
    patient = entry(bundle, "Patient")
    patient["fullUrl"] = "urn:uuid:00000000-0000-0000-0000-000000000000"
    patient["resource"]["id"] = "pat-1"
    entry(bundle, "ServiceRequest")["resource"]["subject"] = {"reference": "Patient/pat-1"}
    family, warnings = subject_family(bundle)
    assert family == "DKTest" and not any("subject" in w for w in warnings)


def test_rule3_type_id_against_full_url_tail(bundle):
    entry(bundle, "Patient")["fullUrl"] = "http://localhost:8081/svc/fhir/v1/Patient/pat-2"
    entry(bundle, "ServiceRequest")["resource"]["subject"] = {"reference": "Patient/pat-2"}
    family, warnings = subject_family(bundle)
    assert family == "DKTest" and not any("subject" in w for w in warnings)


def test_rule3_type_id_against_urn_uuid(bundle):
    entry(bundle, "ServiceRequest")["resource"]["subject"] = {"reference": f"Patient/{PATIENT_UUID}"}
    family, warnings = subject_family(bundle)
    assert family == "DKTest" and not any("subject" in w for w in warnings)


def test_rule4_absolute_url_by_type_id_tail(bundle):
    entry(bundle, "Patient")["resource"]["id"] = "pat-3"
    entry(bundle, "ServiceRequest")["resource"]["subject"] = {
        "reference": "https://ocean.cognisantmd.com/svc/fhir/v1/Patient/pat-3/_history/2"}
    family, warnings = subject_family(bundle)
    assert family == "DKTest" and not any("subject" in w for w in warnings)


def test_rule5_identifier_only_reference(bundle):
    sr = entry(bundle, "ServiceRequest")["resource"]
    sr["performer"] = [{"identifier": {
        "system": "https://ocean.cognisantmd.com/svc/fhir/v1/NamingSystem/id-referral-target-reference",
        "value": "autorouter_test49721437"}}]
    bundle["entry"][0]["resource"]["destination"][0].pop("receiver")
    m = read_message(bundle, strict=True)
    assert m.target.site_number == "1234" and m.target.location_address.city == "Toronto"


def test_unresolvable_identifier_reference_still_gives_its_value(bundle):
    entry(bundle, "ServiceRequest")["resource"]["performer"] = [{"identifier": {
        "system": "http://x/NamingSystem/id-referral-target-external-service", "value": "EXT-9"}}]
    bundle["entry"][0]["resource"]["destination"][0].pop("receiver")
    m = read_message(bundle, strict=True)
    assert m.target.external_service_id == "EXT-9" and m.target.site_number is None
    assert "ServiceRequest.performer does not match any entry in the bundle" in m.warnings


def test_unresolved_reference_is_none_plus_warning(bundle):
    entry(bundle, "ServiceRequest")["resource"]["requester"] = {"reference": "urn:uuid:not-there"}
    hdr = bundle["entry"][0]["resource"]
    hdr["author"] = hdr["sender"] = {"reference": "Practitioner/nobody"}
    m = read_message(bundle, strict=True)
    assert m.referrer is None
    assert "ServiceRequest.requester does not match any entry in the bundle" in m.warnings
    assert "MessageHeader.author does not match any entry in the bundle" in m.warnings


def test_reference_to_the_wrong_type(bundle):
    entry(bundle, "ServiceRequest")["resource"]["subject"] = {
        "reference": "urn:uuid:163dd763-3947-442a-82d5-3d0c598142bd"}
    m = read_message(bundle, strict=True)
    assert "ServiceRequest.subject points to a PractitionerRole, expected Patient" in m.warnings
    assert m.patient.family == "DKTest"  # falls back to the bundle's Patient


def test_receiver_when_performer_is_missing(bundle):
    del entry(bundle, "ServiceRequest")["resource"]["performer"]
    assert read_message(bundle, strict=True).target.reference == "autorouter_test49721437"


def test_focus_service_request_via_task_based_on(bundle):
    sr_url = entry(bundle, "ServiceRequest")["fullUrl"]
    bundle["entry"].insert(1, {"fullUrl": "urn:uuid:11111111-2222-3333-4444-555555555555", "resource": {
        "resourceType": "ServiceRequest", "status": "active",
        "identifier": [{"system": "x/id-ereferral-reference", "value": "decoy"}]}})
    bundle["entry"].append({"fullUrl": "urn:uuid:task-1", "resource": {
        "resourceType": "Task", "status": "accepted", "basedOn": [{"reference": sr_url}]}})
    bundle["entry"][0]["resource"]["focus"] = [{"reference": "urn:uuid:task-1"}]
    m = read_message(bundle, strict=True)
    assert m.focus == ("Task",)
    assert m.service_request.ref == "71db1a5c-89ce-41d5-bc71-8466f6c2f182"


def test_focus_falls_back_to_first_service_request(bundle):
    bundle["entry"][0]["resource"]["focus"] = [{"reference": "urn:uuid:gone"}]
    m = read_message(bundle, strict=True)
    assert m.focus == ()
    assert m.service_request.ref == "71db1a5c-89ce-41d5-bc71-8466f6c2f182"
    assert "MessageHeader.focus[0] does not match any entry in the bundle" in m.warnings


def test_replaces_and_based_on_keys(bundle):
    sr = entry(bundle, "ServiceRequest")["resource"]
    bundle["entry"].append({"fullUrl": "urn:uuid:old-sr", "resource": {
        "resourceType": "ServiceRequest",
        "identifier": [{"system": "https://ocean.cognisantmd.com/NamingSystem/id-ereferral-reference",
                        "value": "older-ref"}]}})
    sr["replaces"] = [{"reference": "urn:uuid:old-sr"}]
    sr["basedOn"] = [{"identifier": {"value": "plan-7"}}, {"reference": "ServiceRequest/elsewhere"}]
    m = read_message(bundle, strict=True)
    assert m.service_request.replaces == ("older-ref",)
    assert m.service_request.based_on == ("plan-7", "ServiceRequest/elsewhere")
