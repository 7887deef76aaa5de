"""Bodies a hostile (or broken) sender can POST that the reader still accepts: non-JSON numbers,
lone surrogates, NUL, deep nesting, huge numbers. Raw bytes, built by text replacement, because
no JSON writer produces them."""
import json
from pathlib import Path

import orjson

BUNDLES = Path(__file__).resolve().parents[1] / "fixtures" / "bundles"
_MARK = b'"__hostile__"'


def body(name: str = "add-service-request.back-pain.json", *, extension: bytes = b"1.5", family: bytes | None = None,
         given: bytes | None = None, event: bytes | None = None, minutes: bytes | None = None,
         bom: bool = False) -> bytes:
    """The payload `name` with its Patient carrying an extension valued `extension` (raw JSON text),
    and optionally the family name, a given name, the event code (raw JSON string contents) or an
    Appointment's minutesDuration (raw JSON number) replaced."""
    bundle = json.loads((BUNDLES / name).read_text())
    patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    patient["extension"] = [{"url": "http://example.org/fhir/hostile", "valueDecimal": "__hostile__"}]
    if family is not None:
        patient["name"][0]["family"] = "__family__"
    if given is not None:
        patient["name"][0]["given"] = ["__given__"]
    if event is not None:
        bundle["entry"][0]["resource"]["eventCoding"]["code"] = "__event__"
    if minutes is not None:
        appointment = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Appointment")
        appointment["minutesDuration"] = "__minutes__"
    raw = orjson.dumps(bundle).replace(_MARK, extension)
    for mark, value in (("family", family), ("given", given), ("event", event)):
        if value is not None:
            raw = raw.replace(f'"__{mark}__"'.encode(), b'"' + value + b'"')
    if minutes is not None:
        raw = raw.replace(b'"__minutes__"', minutes)
    return (b"\xef\xbb\xbf" + raw) if bom else raw


def nested(depth: int, inner: bytes = b"1") -> bytes:
    return b"[" * depth + inner + b"]" * depth


# Accepted bodies (name -> raw), each with something no strict JSON writer would produce.
ACCEPTED = {
    "nan": body(extension=b"NaN"),
    "infinity": body(extension=b"Infinity"),
    "minus-infinity": body(extension=b"-Infinity"),
    "1e400": body(extension=b"1e400"),
    "surrogate-family": body(family=b"\\ud800Smith"),
    "surrogate-given": body(given=b"Jo\\udfff"),
    "nul-family": body(family=b"Smi\\u0000th"),
    "nul-given-with-bom": body(given=b"\\u0000", bom=True),
    "surrogate-and-nan": body(extension=b"NaN", family=b"\\udbff"),
    "deep-300": body(extension=nested(300)),
    "deep-1000": body(extension=nested(1000)),
    "deep-300-with-nan": body(extension=nested(300, b"NaN")),
    "huge-minutes": body("notify-update-service-request.full.json", minutes=b"1" * 40),
}
# Accepted bodies whose event code is no event Harbour knows once read.
ODD_EVENTS = {
    "surrogate-event": body(event=b"add-service-request\\ud800"),
    "nul-event": body(event=b"add-service-request\\u0000"),
    "only-surrogate-event": body(event=b"\\udc00"),
}
