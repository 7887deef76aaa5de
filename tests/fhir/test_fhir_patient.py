"""Patient identifiers, other hosts, dates and HTML."""

import pytest

from harbour.fhir.read import read_message

HCN_EXT = "http://ehealthontario.ca/fhir/StructureDefinition/ext-id-health-card-version-code"


def patient(bundle):
    return next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")


def service_request(bundle):
    return next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "ServiceRequest")


@pytest.mark.parametrize("raw", ["1234-567-890", " 1234 567 890 ", "1234567890"])
def test_hcn_is_digits_only(bundle, raw):
    patient(bundle)["identifier"][0]["value"] = raw
    m = read_message(bundle, strict=True)
    assert m.patient.hcn == "1234567890"
    assert not any("health card" in w for w in m.warnings)


def test_hcn_warnings_never_hold_the_value(bundle):
    patient(bundle)["identifier"][0]["value"] = "98-76"
    m = read_message(bundle, strict=True)
    assert m.patient.hcn == "9876"
    assert "health card number is not 10 digits long" in m.warnings
    assert not any("98" in w for w in m.warnings)


def test_hcn_version_on_identifier_wins(bundle):
    p = patient(bundle)
    p["identifier"][0].update(value="1234567890", extension=[{"url": HCN_EXT, "valueString": " ab "}])
    p["extension"] = [{"url": HCN_EXT, "valueString": "zz"}]
    assert read_message(bundle, strict=True).patient.hcn_version == "AB"


def test_hcn_version_on_patient(bundle):
    p = patient(bundle)
    p["identifier"][0]["value"] = "1234567890"
    p["extension"] = [{"url": HCN_EXT, "valueString": "cd"}]
    assert read_message(bundle, strict=True).patient.hcn_version == "CD"


def test_hcn_system_on_another_host_and_jhn_fallback(bundle):
    ident = patient(bundle)["identifier"][0]
    ident.update(system="http://infoway-inforoute.ca/fhir/NamingSystem/ca-on-patient-hcn", value="1111111111")
    assert read_message(bundle, strict=True).patient.hcn == "1111111111"
    del ident["system"]  # type JHN alone still marks it
    assert read_message(bundle, strict=True).patient.hcn == "1111111111"


def test_no_hcn_identifier(bundle):
    patient(bundle)["identifier"] = patient(bundle)["identifier"][1:]
    m = read_message(bundle, strict=True)
    assert m.patient.hcn is None and not m.patient.has_hcn_identifier
    assert "the patient has no health card identifier" in m.warnings


def test_ocean_systems_on_production_host(bundle):
    prod = "https://ocean.cognisantmd.com/svc/fhir/v1/NamingSystem/"
    patient(bundle)["identifier"][1].update(system=prod + "id-external-patient-reference", value="MRN-1")
    for entry in bundle["entry"]:
        res = entry["resource"]
        for ident in res.get("identifier", []) if isinstance(res.get("identifier"), list) else []:
            ident["system"] = ident.get("system", "").replace("http://localhost:8081/svc/fhir/v1/NamingSystem/", prod)
    bundle["entry"][0]["resource"]["extension"][0]["valueIdentifier"]["system"] = prod + "id-ereferral-reference"
    m = read_message(bundle, strict=True)
    assert m.patient.mrn == "MRN-1"
    assert m.target.site_number == "1234" and m.target.reference == "autorouter_test49721437"
    assert m.attachments[0].kind == "letter"


def test_birth_date_and_bad_dates(bundle):
    patient(bundle)["birthDate"] = "1975-13-40"
    service_request(bundle)["authoredOn"] = "yesterday"
    bundle["timestamp"] = "2025-05-27T11:45:06"  # no zone
    m = read_message(bundle, strict=True)
    assert m.patient.birth_date is None
    assert "Patient.birthDate is not a valid date" in m.warnings
    assert m.service_request.authored_on is None
    assert "ServiceRequest.authoredOn is not a valid date and time" in m.warnings
    assert m.timestamp.tzinfo is not None and "Bundle.timestamp has no time zone; read as Ontario time" in m.warnings


def test_partial_birth_date(bundle):
    patient(bundle)["birthDate"] = "1975-06"
    m = read_message(bundle, strict=True)
    assert m.patient.birth_date is None and "Patient.birthDate is only a partial date" in m.warnings


def test_reason_from_reason_code_when_no_note(bundle):
    sr = service_request(bundle)
    del sr["note"]
    sr["reasonCode"] = [{"text": "Knee&nbsp;pain <i>chronic</i>"}]
    assert read_message(bundle, strict=True).service_request.reason_text == "Knee pain chronic"


def test_answers_of_every_type(bundle):
    qr = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "QuestionnaireResponse")
    qr["item"] = [{"linkId": "a", "answer": [
        {"valueString": "s"}, {"valueBoolean": True}, {"valueInteger": 3}, {"valueDecimal": 1.5},
        {"valueDate": "2025-01-02"}, {"valueDateTime": "2025-01-02T03:04:05Z"},
        {"valueCoding": {"code": "c", "display": "Coded"}}, {"valueCoding": {"code": "c2"}},
        {"valueQuantity": {"value": 5, "unit": "mg"}}]},
        {"linkId": "group", "item": [{"linkId": "child", "text": "Child", "answer": [{"valueString": "x"}]}]}]
    form = read_message(bundle, strict=True).form
    assert form.items[0].answers == ("s", "true", "3", "1.5", "2025-01-02", "2025-01-02T03:04:05Z",
                                     "Coded", "c2", "5 mg")
    assert [i.link_id for i in form.items] == ["a", "group", "child"]
