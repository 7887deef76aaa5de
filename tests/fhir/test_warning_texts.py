"""The reader's warnings are English sentences that keep their template, and every template is
listed for translation (harbour.referrals.attention.WARNING_TEMPLATES: the reader is pure Python,
outside any app's catalogue; tests/core/test_translations.py checks the French of that list)."""
import ast
import copy
import json
import pickle
import re
from pathlib import Path

import pytest

from harbour.fhir.inspect import inspect_bytes
from harbour.fhir.read import read_message
from harbour.fhir.warning_text import WarningText, stored_templates

HARBOUR = Path(__file__).resolve().parents[2] / "harbour"
SOURCES = sorted((HARBOUR / "fhir").glob("*.py")) + [HARBOUR / "referrals" / "process.py"]
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def warning_calls():
    """(file:line, first argument, keyword names) of every warn(...) and WarningText(...) call."""
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            if name in ("warn", "WarningText") and node.args:
                yield f"{path.name}:{node.lineno}", node.args[0], {k.arg for k in node.keywords}


def test_every_warning_is_a_literal_template_listed_for_translation():
    from harbour.referrals.attention import RETIRED_WARNING_TEMPLATES, WARNING_TEMPLATES

    found, problems = set(), []
    for where, template, keywords in warning_calls():
        if isinstance(template, ast.Name) and template.id == "template" and where.split(":")[0] in (
                "read.py", "warning_text.py"):
            continue  # warn() itself, and remaking a stored warning
        if not (isinstance(template, ast.Constant) and isinstance(template.value, str)):
            problems.append(f"{where}: not a literal template (an f-string cannot be translated)")
            continue
        if set(PLACEHOLDER.findall(template.value)) != keywords:
            problems.append(f"{where}: placeholders {PLACEHOLDER.findall(template.value)}, values {sorted(keywords)}")
        found.add(template.value)
    assert problems == []
    assert len(found) > 50
    assert sorted(found - set(WARNING_TEMPLATES)) == [], "add them to attention.WARNING_TEMPLATES and translate"
    assert sorted(set(WARNING_TEMPLATES) - found) == [], "no longer made anywhere: remove from WARNING_TEMPLATES"
    assert len(WARNING_TEMPLATES) == len(set(WARNING_TEMPLATES))
    assert not found & set(RETIRED_WARNING_TEMPLATES), "made again: move it back to WARNING_TEMPLATES"


def test_a_warning_is_its_english_sentence_and_keeps_its_template():
    warning = WarningText("%(where)s should be a list", where="Patient.name")
    assert warning == "Patient.name should be a list" and isinstance(warning, str)
    assert (warning.template, warning.params) == ("%(where)s should be a list", {"where": "Patient.name"})
    assert warning.stored() == {"text": "%(where)s should be a list", "params": {"where": "Patient.name"}}
    for again in (copy.copy(warning), copy.deepcopy(warning), pickle.loads(pickle.dumps(warning))):
        assert again == warning and again.template == warning.template and again.params == warning.params
    plain = WarningText("the bundle has no ServiceRequest")
    assert plain == "the bundle has no ServiceRequest" and plain.params == {}
    assert stored_templates([warning, "an old plain sentence"]) == [
        warning.stored(), {"text": "an old plain sentence", "params": {}}]


def test_the_reader_gives_templates_and_english(bundle):
    bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] != "ServiceRequest"]
    bundle["entry"][0]["resource"]["eventCoding"]["code"] = "frobnicate"
    message = read_message(bundle)
    assert "the bundle has no ServiceRequest" in message.warnings
    assert "unknown event code 'frobnicate'" in message.warnings
    by_text = {str(w): w for w in message.warnings}
    assert all(isinstance(w, WarningText) for w in message.warnings)
    assert by_text["unknown event code 'frobnicate'"].stored() == {
        "text": "unknown event code %(code)s", "params": {"code": "'frobnicate'"}}


def test_inspect_prints_plain_english(bundle):
    bundle["entry"][0]["resource"]["focus"] = [{"reference": "urn:uuid:nowhere"}]
    summary = inspect_bytes(json.dumps(bundle).encode())
    assert summary["warnings"] and all(type(w) is str for w in summary["warnings"])
    assert "MessageHeader.focus[0] does not match any entry in the bundle" in summary["warnings"]


@pytest.mark.parametrize("expected, english", [
    (("Patient",), "ServiceRequest.subject points to a PractitionerRole, expected Patient"),
    (("Patient", "Practitioner"), "ServiceRequest.subject points to a PractitionerRole, expected one of "
                                           "Patient, Practitioner"),
])
def test_a_reference_to_the_wrong_type_names_what_was_expected(expected, english):
    from harbour.fhir.read import _MessageReader

    reader = _MessageReader({"resourceType": "Bundle", "type": "message", "entry": [
        {"fullUrl": "urn:uuid:1", "resource": {"resourceType": "PractitionerRole"}}]})
    assert reader.resolve({"reference": "urn:uuid:1"}, "ServiceRequest.subject", expected) is None
    assert reader.warnings == [english]
