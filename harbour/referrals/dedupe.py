"""Dedupe keys of timeline facts: one function per fact, shared by inbound processing and the outbox.

When Harbour sends a Task, Appointment or Communication, the outbox records the Event (and, for
messages, the CommunicationMessage) with the key from harbour.fhir.build's *_echo_key helpers
(used here too) built from what it sent. Ocean echoes the
change back in a later notify-update; processing builds the same key from the echo, the unique
constraint (referral, dedupe_key) refuses the second row, and nothing is added twice.
"""
from __future__ import annotations

import hashlib
from datetime import datetime, timezone

import orjson

from harbour.fhir import build


def _aware(value: datetime | None) -> datetime | None:
    # The reader gives aware datetimes; guard anyway, the builder refuses naive ones.
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


def iso(value: datetime | None) -> str:
    """UTC ISO text, so '08:00-04:00' and '12:00Z' give the same key."""
    if value is None:
        return ""
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc)
    return value.isoformat()


def digest(*parts: object) -> str:
    return hashlib.sha256(orjson.dumps([str(p) for p in parts])).hexdigest()[:32]


def task_key(status: str, authored_on: datetime | None) -> str:
    return build.task_echo_key(status.strip().lower(), _aware(authored_on))


def appointment_key(start: datetime | None, participant_status: str | None, status: str | None) -> str:
    return build.appointment_echo_key(_aware(start), participant_status or None, status or None)


def appointment_cancelled_key(start: datetime | None) -> str:
    return f"appointment:cancelled:{iso(start)}"


def communication_key(payload_texts, sent: datetime | None, files=()) -> str:
    """From the first payload text (else the first file), as the outbox builds it for what Harbour sends."""
    return build.communication_echo_key(payload_texts[0] if payload_texts else "", _aware(sent),
                                        files[0] if files else None)


def attachment_key(key: str) -> str:
    return "attachment:" + digest(key)
