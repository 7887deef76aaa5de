"""``inspect_bytes``: what Harbour reads from a raw body, as a JSON-ready dict.

Meant for a ``harbour inspect FILE`` command and for debugging: it applies the same
checks as the intake endpoint (UTF-8, JSON, envelope) and then the lenient reader.
"""

from __future__ import annotations

import dataclasses
from datetime import date, datetime
from typing import Any

from harbour.fhir.parse import NotJSON, parse_json, too_large

from .direction import direction as target_direction
from .model import NO_REFERRAL_REFERENCE, Address, Form, Message
from .read import EnvelopeError, check_envelope, read_message
from .warning_text import needs_attention


def inspect_bytes(raw: bytes, site_number: str | None = None, max_bytes: int | None = None) -> dict:
    """Summarise a body. ``{"accepted": False, "error": ...}`` when the endpoint would
    reject it (``max_bytes``: its size limit, HARBOUR_MAX_BUNDLE_BYTES); otherwise ``accepted``
    is True and the rest describes the message, with what the worker would make of it
    (``processing``).

    ``site_number`` (the clinic's Ocean site) decides ``direction``: 'received' when the
    target listing belongs to it, 'sent' when it belongs to another site, else 'unknown'.
    """
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        return {"accepted": False, "error": "The body is not a byte string."}
    if max_bytes is not None and len(raw) > max_bytes:
        return {"accepted": False, "error": too_large(max_bytes)}
    try:
        obj = parse_json(bytes(raw))  # the endpoint's own parser: what it accepts, inspect reads
    except NotJSON as exc:
        return {"accepted": False, "error": exc.message}
    try:
        check_envelope(obj)
    except EnvelopeError as exc:
        return {"accepted": False, "error": exc.message}
    return {"accepted": True, **_summary(read_message(obj), site_number)}


def direction(message: Message, site_number: str | None) -> str:
    """'received', 'sent' or 'unknown': processing's rule (harbour.fhir.direction), without the
    clinic's history (a listing already seen on a received referral also makes it 'received')."""
    return target_direction(site_number, message.target)


def _summary(message: Message, site_number: str | None) -> dict:
    referral = message.service_request
    return {
        "bundle_id": message.bundle_id,
        "timestamp": _plain(message.timestamp),
        "event_code": message.event_code,
        "event": message.event,
        "payload_version": message.payload_version,
        "referral_ref": message.referral_ref,
        "direction": direction(message, site_number),
        "source_endpoint": message.source_endpoint,
        "focus": list(message.focus),
        "status": referral.status if referral else None,
        "category": {
            "code": referral.category_code,
            "display": referral.category_display,
            "label": referral.category_label,
        } if referral else None,
        "priority": referral.priority if referral else None,
        "reason": referral.reason_text if referral else None,
        "referral": _plain(referral),
        "patient": _plain(message.patient),
        "referrer": _plain(message.referrer),
        "target": _plain(message.target),
        "forms": [_form(f) for f in message.forms],
        "attachments": _plain(message.attachments),
        "appointments": _plain(message.appointments),
        "tasks": _plain(message.tasks),
        "communications": _plain(message.communications),
        "warnings": [str(w) for w in message.warnings],  # English, for people and scripts alike
        "processing": expected_processing(message),
    }


def expected_processing(message: Message) -> dict:
    """What the worker would make of the message, as far as the message alone tells: its outcome
    (an unknown event is kept as "not understood"; no referral reference fails) and whether the
    reader's warnings would put it under "needs attention". Processing may add warnings of its
    own that depend on the referral's history (an older snapshot, for one)."""
    if message.event is None:
        return {"outcome": "unknown_event", "needs_attention": False}
    if not (message.referral_ref or "").strip():
        return {"outcome": "failed", "error": NO_REFERRAL_REFERENCE, "needs_attention": False}
    return {"outcome": "processed", "needs_attention": needs_attention(message.warnings)}


def _form(form: Form) -> dict:
    """Answered items in order; unanswered ones are only counted."""
    return {
        "reference": form.reference,
        "status": form.status,
        "item_count": len(form.items),
        "hidden_count": sum(item.hidden for item in form.items),
        "answers": [
            {"link_id": item.link_id, "label": item.label, "answers": list(item.answers), "hidden": item.hidden}
            for item in form.items if item.answers
        ],
    }


def _plain(value: Any) -> Any:
    """Dataclasses, tuples and dates -> dicts, lists and ISO strings."""
    if isinstance(value, Address):
        return {**{f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)},
                "one_line": value.one_line()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value
