"""Store first: the raw message is committed before Ocean gets its 200."""
import hashlib
from dataclasses import dataclass

from django.db import IntegrityError, transaction

from harbour.clinics.models import OceanSettings
from harbour.fhir.model import Envelope
from harbour.intake.models import InboundMessage

_FIELD_LENGTHS = {f.name: f.max_length for f in InboundMessage._meta.fields if getattr(f, "max_length", None)}


@dataclass(frozen=True)
class Stored:
    message_id: int
    duplicate: bool


def clean_text(value, field: str) -> str:
    """A value that fits its column on every database: no NUL, no lone surrogate, not too long.

    Ids come from the sender; a column overflow would be a database error, hence a 503, hence
    Ocean retrying a message we could have kept.
    """
    if not value:
        return ""
    text = str(value).replace("\x00", "")
    text = text.encode("utf-8", "replace").decode("utf-8")
    return text[: _FIELD_LENGTHS[field]]


def result_label(envelope: Envelope, duplicate: bool) -> str:
    """What the settings page shows as the last inbound call, e.g. "200 add-service-request"."""
    label = f"200 {clean_text(envelope.event_code, 'event_code') or '(no event code)'}"
    return f"{label} (duplicate)" if duplicate else label


def store_message(
    *, clinic_id: int, raw: bytes, envelope: Envelope, content_type: str, remote_addr: str | None, now
) -> Stored:
    """Insert the message once (the unique constraint decides) and note the call on the settings row.

    One transaction, so SQLite takes its write lock once. A duplicate is caught inside a
    savepoint and the kept copy looked up afterwards; no check-then-insert, so two racing
    deliveries still leave one row. Database errors propagate: the caller answers 503.
    """
    bundle_id = clean_text(envelope.bundle_id, "bundle_id")
    sha256 = hashlib.sha256(raw).hexdigest()
    with transaction.atomic():
        try:
            with transaction.atomic():
                message = InboundMessage.objects.create(
                    clinic_id=clinic_id,
                    raw=raw,
                    sha256=sha256,
                    content_type=clean_text(content_type, "content_type"),
                    remote_addr=remote_addr,
                    bundle_id=bundle_id,
                    header_id=clean_text(envelope.header_id, "header_id"),
                    event_code=clean_text(envelope.event_code, "event_code"),
                    referral_ref=clean_text(envelope.referral_ref, "referral_ref"),
                )
            stored = Stored(message.pk, duplicate=False)
        except IntegrityError:
            kept = (
                InboundMessage.objects.filter(clinic_id=clinic_id, bundle_id=bundle_id, sha256=sha256)
                .values_list("pk", flat=True)
                .first()
            )
            if kept is None:  # some other integrity failure: never answer 200 for it
                raise
            stored = Stored(kept, duplicate=True)
        OceanSettings.objects.filter(clinic_id=clinic_id).update(
            last_inbound_at=now, last_inbound_result=result_label(envelope, stored.duplicate)
        )
    return stored
