"""Build test bundles from the real Ocean payload (tests/fixtures/bundles) and store them as
the intake endpoint would."""
import copy
import hashlib
import json
import uuid
from pathlib import Path

import orjson

from harbour.intake.models import InboundMessage

BUNDLES = Path(__file__).resolve().parents[1] / "fixtures" / "bundles"
REAL = "add-service-request.back-pain.json"
FULL = "notify-update-service-request.full.json"
REF = "71db1a5c-89ce-41d5-bc71-8466f6c2f182"
SR_URL = "urn:uuid:71db1a5c-89ce-41d5-bc71-8466f6c2f182"
PATIENT_URL = "urn:uuid:a5f0e549-754c-4a09-a96f-555e981aa3d1"
TARGET_URL = "urn:uuid:163dd763-3947-442a-82d5-3d0c598142bd"
_CACHE: dict[str, dict] = {}


def deliver(clinic, *bundles) -> list[InboundMessage]:
    """Store each body as the intake does, run the worker until the queue is empty, and return the
    messages as it left them (state, error, warnings)."""
    from harbour.core.worker import run_until_idle

    messages = [store(clinic, b) for b in bundles]
    run_until_idle()
    for message in messages:
        message.refresh_from_db()
    return messages


def deliver_one(clinic, bundle) -> InboundMessage:
    (message,) = deliver(clinic, bundle)
    return message


def load(name: str = REAL) -> dict:
    if name not in _CACHE:
        _CACHE[name] = json.loads((BUNDLES / name).read_text())
    bundle = copy.deepcopy(_CACHE[name])
    bundle["id"] = str(uuid.uuid4())  # every delivery is its own bundle
    return bundle


def header(bundle: dict) -> dict:
    return bundle["entry"][0]["resource"]


def resources(bundle: dict, rtype: str) -> list[dict]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == rtype]


def variant(name: str = REAL, *, event: str | None = None, timestamp: str | None = None,
            drop: tuple[str, ...] = ()) -> dict:
    """A copy with another event code, Bundle timestamp, or without some resource types."""
    bundle = load(name)
    if event:
        header(bundle)["eventCoding"]["code"] = event
        header(bundle)["eventCoding"]["display"] = event
    if timestamp:
        bundle["timestamp"] = timestamp
    if drop:
        bundle["entry"] = [e for e in bundle["entry"] if e["resource"]["resourceType"] not in drop]
    return bundle


def add(bundle: dict, resource: dict) -> dict:
    bundle["entry"].append({"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": resource})
    return bundle


def task(status: str, authored_on: str | None, reason: str | None = None, *, last_modified: str | None = None) -> dict:
    """A Task; `authored_on=None` as Ocean may send it (§4.1 does not list authoredOn)."""
    resource = {
        "resourceType": "Task", "status": status, "intent": "order",
        "code": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-TaskOutcome", "code": "process-request"}]},
        "basedOn": [{"reference": SR_URL}], "owner": {"reference": TARGET_URL},
    }
    if authored_on:
        resource["authoredOn"] = authored_on
    if last_modified:
        resource["lastModified"] = last_modified
    if reason:
        resource["statusReason"] = {"text": reason}
    return resource


def appointment(start: str | None = None, end: str | None = None, *, status: str = "booked",
                participant: str = "tentative", instruction: str | None = None) -> dict:
    resource = {
        "resourceType": "Appointment", "status": status, "basedOn": [{"reference": SR_URL}],
        "participant": [{"actor": {"reference": PATIENT_URL}, "status": participant}],
    }
    if start:
        resource.update(start=start, end=end, minutesDuration=30)
    if instruction:
        resource["patientInstruction"] = instruction
    return resource


def communication(text: str, sent: str, *, sender: str = "urn:uuid:2ae02c27-5bad-446f-a458-f00f20c86b0c") -> dict:
    """A message; by default from the referrer (TARGET_URL: from the receiver)."""
    return {
        "resourceType": "Communication", "status": "completed", "basedOn": [{"reference": SR_URL}],
        "sent": sent, "sender": {"reference": sender},
        "payload": [{"contentString": text}],
    }


def store(clinic, bundle: dict | bytes) -> InboundMessage:
    """Store a body as the intake endpoint does (raw bytes, hash, envelope facts)."""
    raw = bundle if isinstance(bundle, bytes) else orjson.dumps(bundle)
    facts = {}
    if isinstance(bundle, dict):
        facts = {"bundle_id": bundle.get("id", ""), "event_code": header(bundle).get("eventCoding", {}).get("code", "")}
    return InboundMessage.objects.create(
        clinic=clinic, raw=raw, sha256=hashlib.sha256(raw).hexdigest(), content_type="application/fhir+json", **facts,
    )
