"""Fetching the referral letter ($letter) and attachments ($binary) after intake (contract §4.1).

A worker job fetches pending documents with the clinic's OAuth credentials, only from the
clinic's configured Ocean host, and stores them through Django's storage API under
`ocean/<clinic id>/<random name>` (never the patient's name). Failures stay visible
(`fetch_state`, `last_fetch_error`) and are retried with backoff; `request_fetch_again`
lets a person ask for another try.
"""
from __future__ import annotations

import logging
import random
import uuid
from datetime import datetime, timedelta

import httpx
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection, transaction
from django.utils import timezone

from harbour.core import logging as log_context

from .client import OceanClient, default_timeout
from .errors import CredentialsRejected, OceanRejected, OceanUnreachable, RefusedHost
from .outbox import CREDENTIALS_REJECTED, backoff_delay

log = logging.getLogger("harbour.ocean")

EXTENSIONS = {"application/pdf": ".pdf", "image/png": ".png", "image/jpeg": ".jpg", "text/plain": ".txt"}
LETTER_WITH_ATTACHMENTS_SUFFIX = "?attachments=true"


def max_fetch_attempts() -> int:
    return int(getattr(settings, "HARBOUR_OCEAN_FETCH_MAX_ATTEMPTS", 8))


def _models():
    from harbour.referrals.models import Attachment, Direction

    return Attachment, Direction


def credentials_rejected(clinic) -> bool:
    """Whether a letter or attachment of the clinic waits because Ocean refuses its OAuth
    credentials (what `_fetch_one` records; a later try with corrected ones clears it)."""
    Attachment, _ = _models()
    return Attachment.objects.filter(fetch_state=Attachment.FetchState.FAILED, referral__clinic=clinic,
                                     last_fetch_error__startswith=CREDENTIALS_REJECTED).exists()


def fetch_documents(*, now: datetime | None = None, http: httpx.Client | None = None,
                    rng: random.Random | None = None, limit: int = 10) -> int:
    """Worker job: fetch one batch of pending letters and attachments; returns how many were tried."""
    Attachment, Direction = _models()
    now = now or timezone.now()
    with transaction.atomic():
        due = (Attachment.objects
               .filter(referral__direction__in=[Direction.RECEIVED, Direction.SENT], removed=False)
               .filter(fetch_state__in=[Attachment.FetchState.PENDING, Attachment.FetchState.FAILED])
               .filter(next_fetch_at__lte=now)
               .order_by("next_fetch_at", "id"))
        pending_now = (Attachment.objects
                       .filter(referral__direction__in=[Direction.RECEIVED, Direction.SENT], removed=False,
                               fetch_state=Attachment.FetchState.PENDING, next_fetch_at__isnull=True)
                       .order_by("id"))
        if connection.features.has_select_for_update_skip_locked:
            due = due.select_for_update(skip_locked=True, of=("self",))
            pending_now = pending_now.select_for_update(skip_locked=True, of=("self",))
        rows = list(pending_now[:limit])
        rows += list(due[:max(0, limit - len(rows))])
        for row in rows:  # lease: another worker leaves them alone for a while
            row.fetch_attempts += 1
            row.next_fetch_at = now + timedelta(minutes=5)
            row.save(update_fields=["fetch_attempts", "next_fetch_at"])
    if not rows:
        return 0
    from harbour.clinics.models import ocean_settings_for

    own_http = http is None
    http = http or httpx.Client(timeout=default_timeout(), follow_redirects=False)
    clients: dict[int, OceanClient] = {}
    try:
        for row in rows:
            clinic = row.referral.clinic
            client = clients.get(clinic.pk) or clients.setdefault(
                clinic.pk, OceanClient(ocean_settings_for(clinic), http=http))
            with log_context.scope(clinic_id=clinic.pk):
                _fetch_one(row, client, now, rng)
    finally:
        if own_http:
            http.close()
    return len(rows)


def _fetch_one(row, client: OceanClient, now: datetime, rng) -> None:
    Attachment, _ = _models()
    try:
        if row.url:
            fetched = client.fetch_document(row.url)
        elif row.kind == Attachment.Kind.LETTER:
            fetched = client.fetch_letter(row.referral.ocean_ref)
        elif row.identifier:
            fetched = client.fetch_binary(row.identifier)
        else:
            _log_failure(row, "no address", None)
            return _give_up(row, "Ocean gave no address for this document.")
    except RefusedHost:
        log.warning("attachment %s: URL outside the configured Ocean server, not fetched", row.pk)
        return _give_up(row, "The document address is not on the configured Ocean server, so it was not fetched.")
    except CredentialsRejected as exc:
        _log_failure(row, "credentials refused", None)
        return _retry(row, now, rng, f"{CREDENTIALS_REJECTED} ({exc.which}).")
    except OceanUnreachable as exc:
        _log_failure(row, "unreachable", None)
        return _retry(row, now, rng, str(exc))
    except OceanRejected as exc:
        _log_failure(row, "refused", exc.status)
        if exc.retryable or exc.status in (401, 404):  # 404: the letter may not be generated yet
            return _retry(row, now, rng, str(exc))
        return _give_up(row, str(exc))
    except Exception as exc:  # keep the loop alive; the row says what happened
        log.exception("attachment %s fetch failed unexpectedly", row.pk)
        return _retry(row, now, rng, f"Unexpected error: {type(exc).__name__}")
    name = f"ocean/{row.referral.clinic_id}/{uuid.uuid4().hex}{EXTENSIONS.get(fetched.content_type, '.bin')}"
    stored = default_storage.save(name, ContentFile(fetched.content))
    Attachment.objects.filter(pk=row.pk).update(
        file=stored, fetch_state=Attachment.FetchState.FETCHED, fetched_at=timezone.now(),
        last_fetch_error="", next_fetch_at=None, size=len(fetched.content),
        content_type=row.content_type or fetched.content_type,
    )
    log.info("attachment %s fetched (%s bytes)", row.pk, len(fetched.content))


def _log_failure(row, what: str, status: int | None) -> None:
    """One warning a failed fetch: the attachment's id, what failed and Ocean's status. Never the
    document's URL (its query may name the patient) nor anything from the referral."""
    log.warning("attachment %s fetch failed: %s (status %s, attempt %s)", row.pk, what,
                status if status is not None else "none", row.fetch_attempts)


def _retry(row, now, rng, error: str) -> None:
    Attachment, _ = _models()
    if row.fetch_attempts >= max_fetch_attempts():
        return _give_up(row, error)
    Attachment.objects.filter(pk=row.pk).update(
        fetch_state=Attachment.FetchState.FAILED, last_fetch_error=error[:2000],
        next_fetch_at=now + backoff_delay(row.fetch_attempts, rng),
    )


def _give_up(row, error: str) -> None:
    """Failed with no automatic retry (next_fetch_at empty): a person can ask again."""
    Attachment, _ = _models()
    Attachment.objects.filter(pk=row.pk).update(
        fetch_state=Attachment.FetchState.FAILED, last_fetch_error=error[:2000], next_fetch_at=None,
    )


def request_fetch_again(attachment, user=None) -> None:
    """A person asks for another try now (also for a fetched document, to refresh it)."""
    Attachment, _ = _models()
    Attachment.objects.filter(pk=attachment.pk).update(
        fetch_state=Attachment.FetchState.PENDING, next_fetch_at=timezone.now(), fetch_attempts=0,
        last_fetch_error="",
    )
    from harbour.audit.log import record

    record("ocean.document.fetch_again", clinic=attachment.referral.clinic, actor=user,
           target=f"attachment:{attachment.pk}")
    attachment.refresh_from_db()


def request_letter_with_attachments(referral, user=None):
    """Ask for Ocean's one-PDF letter with every attachment (`$letter?attachments=true`)."""
    Attachment, _ = _models()
    from harbour.clinics.models import ocean_settings_for

    from urllib.parse import quote

    ocean = ocean_settings_for(referral.clinic)
    url = f"{ocean.fhir_base_url}/ServiceRequest/{quote(referral.ocean_ref, safe='')}/$letter{LETTER_WITH_ATTACHMENTS_SUFFIX}"
    row, created = Attachment.objects.get_or_create(
        referral=referral, key=f"letter{LETTER_WITH_ATTACHMENTS_SUFFIX}",
        defaults={"kind": Attachment.Kind.LETTER, "url": url, "content_type": "application/pdf",
                  "title": "letter-with-attachments.pdf", "next_fetch_at": timezone.now()},
    )
    if not created:
        request_fetch_again(row, user)
    return row
