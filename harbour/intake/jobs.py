"""Worker job: process stored inbound messages, oldest first, each in its own transaction.

One query reads a batch of pending messages (without their bytes); each one is then claimed
and processed inside its own transaction: on PostgreSQL the claim is a primary-key
`SELECT ... FOR UPDATE SKIP LOCKED`, so several workers share the queue without waiting on
each other; on SQLite the IMMEDIATE transaction serialises writers. A failure marks that
message failed (an admin reprocesses it after the fix) and never blocks the ones behind it.
"""
from __future__ import annotations

import logging
import os
import traceback

from django.db import connection, transaction
from django.utils import timezone

from harbour.core import logging as log_context, rows
from harbour.fhir.warning_text import needs_attention, stored_templates
from harbour.intake.models import InboundMessage

log = logging.getLogger("harbour.intake")

BATCH_SIZE = 50


def safe_error(exc: BaseException) -> str:
    """An error text free of patient data: our own messages verbatim, otherwise only the
    exception class and where it was raised (an exception's text may quote payload values)."""
    from harbour.referrals.process import ProcessingError

    if isinstance(exc, ProcessingError):
        return f"ProcessingError: {exc}"
    frames = traceback.extract_tb(exc.__traceback__) if exc.__traceback__ else []
    where = ""
    if frames:
        last = frames[-1]
        where = f" at {os.path.basename(last.filename)}:{last.lineno} in {last.name}"
    return f"{type(exc).__name__}{where} (details withheld: they may contain patient data)"


OUTCOME_FIELDS = [
    "state", "error", "warnings", "warning_templates", "needs_attention", "attempts", "processed_at", "referral_ref",
]


def process_one(message: InboundMessage, *, savepoint: bool = True) -> str:
    """Process a claimed message (inside the caller's transaction) and record the outcome.

    A failure is recorded on the message, its changes rolled back to a savepoint. With
    savepoint=False the failure is raised instead: the caller rolls its whole transaction back
    and records it with `record_failure` (the worker does: two statements fewer per message).
    """
    from harbour.referrals.process import process_message

    message.attempts += 1
    try:
        with transaction.atomic(savepoint=savepoint):
            result = process_message(message)
    except Exception as exc:  # any bug: keep the message, mark it, go on with the next one
        if not savepoint:
            raise
        return record_failure(message, exc)
    warnings = [str(w) for w in result.warnings]  # English, for machines and the admin
    # A person marked these very warnings as checked (« Marquer comme vérifié »): reading the
    # message again finds nothing new for them, so it stays checked. Other warnings flag it again.
    checked = message.processed_at is not None and not message.needs_attention and message.warnings == warnings
    message.state = result.state
    message.error = ""
    message.warnings = warnings
    message.warning_templates = stored_templates(result.warnings)  # for the pages, in their language
    message.needs_attention = needs_attention(result.warnings) and not checked
    if result.referral_ref and not message.referral_ref:
        message.referral_ref = result.referral_ref
    message.processed_at = timezone.now()
    rows.update(message, OUTCOME_FIELDS)
    return message.state


def record_failure(message: InboundMessage, exc: BaseException) -> str:
    """Mark a claimed message failed, with an error text free of patient data."""
    message.state = InboundMessage.State.FAILED
    message.error = safe_error(exc)
    message.processed_at = timezone.now()
    log.warning("inbound message %s failed: %s", message.pk, message.error)
    rows.update(message, OUTCOME_FIELDS)
    return message.state


def _candidates(limit: int) -> list[InboundMessage]:
    """The oldest pending messages, without their bytes: one query for the whole batch."""
    return list(
        InboundMessage.objects.filter(state=InboundMessage.State.PENDING)
        .select_related("clinic__ocean")  # the site number decides direction
        .defer("raw")
        .order_by("id")[:limit]
    )


_CLAIM_SQL: dict[str, str] = {}


def _claim(message: InboundMessage) -> bool:
    """Lock one candidate in the running transaction and load its bytes; False if it is gone.

    A primary-key probe written once per vendor: on PostgreSQL `FOR UPDATE SKIP LOCKED`, so a
    message another worker holds is skipped, not waited for; on SQLite the IMMEDIATE transaction
    already serialises writers. Either way the state is checked again: another worker may have
    processed it since the batch was read.
    """
    sql = _CLAIM_SQL.get(connection.vendor)
    if sql is None:
        quote = connection.ops.quote_name
        sql = "SELECT {raw}, {attempts} FROM {table} WHERE {id} = %s AND {state} = %s".format(
            raw=quote("raw"), attempts=quote("attempts"), table=quote(InboundMessage._meta.db_table),
            id=quote("id"), state=quote("state"),
        )
        if connection.features.has_select_for_update_skip_locked:
            # Per-referral order: not while an older message of its referral is pending. One that
            # another worker holds is locked but still pending (uncommitted), so this worker skips
            # the referral instead of applying its messages out of order; a later pass takes it.
            sql += (
                " AND NOT EXISTS (SELECT 1 FROM {table} AS earlier WHERE earlier.{clinic} = {table}.{clinic}"
                " AND earlier.{ref} = {table}.{ref} AND earlier.{ref} <> '' AND earlier.{state} = %s"
                " AND earlier.{id} < {table}.{id}) FOR UPDATE OF {table} SKIP LOCKED"
            ).format(table=quote(InboundMessage._meta.db_table), clinic=quote("clinic_id"),
                     ref=quote("referral_ref"), state=quote("state"), id=quote("id"))
        _CLAIM_SQL[connection.vendor] = sql
    params = [message.pk, InboundMessage.State.PENDING]
    if connection.features.has_select_for_update_skip_locked:
        params.append(InboundMessage.State.PENDING)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return False
    message.raw, message.attempts = row
    return True


def process_pending(limit: int = BATCH_SIZE) -> int:
    """Process up to `limit` pending messages, each in its own transaction; returns how many were handled."""
    handled = 0
    for message in _candidates(limit):
        with log_context.scope(clinic_id=message.clinic_id):
            handled += _process_claimed(message)
    return handled


def _process_claimed(message: InboundMessage) -> int:
    """1 when this worker handled the message (processed or failed), 0 when another one had it."""
    claimed = False
    try:
        with transaction.atomic():
            if not _claim(message):
                return 0
            claimed = True
            process_one(message, savepoint=False)
    except Exception as exc:
        if not claimed:  # the claim itself failed (the database): the message stays pending
            raise
        # Its processing failed and was rolled back whole: record that in a transaction of its own.
        with transaction.atomic():
            if not _claim(message):  # another worker took it meanwhile
                return 0
            message.attempts += 1
            record_failure(message, exc)
    return 1


WORKER_JOBS = [process_pending]


# --- Reprocessing (the `reprocess` command and the inbound messages page) ---------------

REPROCESSABLE = (
    InboundMessage.State.FAILED, InboundMessage.State.UNKNOWN_EVENT, InboundMessage.State.PROCESSED,
)


def reprocess(queryset, *, now: bool = False) -> dict[str, int]:
    """Put the chosen messages back in the queue (default), or process them at once.

    Pending and duplicate messages are left alone. Processing is idempotent, so reprocessing a
    processed message adds no second referral or timeline entry. Returns counts by outcome.
    """
    eligible = queryset.filter(state__in=REPROCESSABLE)
    if not now:
        count = eligible.update(state=InboundMessage.State.PENDING, error="")
        return {"queued": count}
    counts: dict[str, int] = {}
    for pk in eligible.order_by("id").values_list("id", flat=True):
        with transaction.atomic():
            message = (
                InboundMessage.objects.select_for_update(of=("self",)).select_related("clinic")
                .filter(pk=pk, state__in=REPROCESSABLE).first()
            )
            if message is None:  # picked by a worker meanwhile
                continue
            state = process_one(message)
        counts[state] = counts.get(state, 0) + 1
    return counts
