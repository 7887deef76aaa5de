"""What puts a referral in the matcher's queue (MatchQueue): every save that may change its match.

A receiver of Referral's post_save, so every writer is covered (processing, the referral pages,
tests and scripts) without them knowing about patients: a new referral, a full save, or a save
of any field the match reads (the patient snapshot, the chart number a sent copy carries, the
direction). Referrals of unknown direction wait for staff and are queued once it is set. The
entry is written in the saver's transaction, so it exists exactly when the change does.
"""
from __future__ import annotations

from django.db import connection
from django.db.models.signals import post_save
from django.utils import timezone

from harbour.referrals.models import Direction, Referral

# The fields matching.snapshot_digest reads.
MATCH_FIELDS = frozenset({
    "patient_family", "patient_given", "patient_sex", "patient_birth_date", "patient_hcn", "patient_hcn_version",
    "patient_phone", "patient_email", "patient_address", "patient_mrn", "direction",
})
MATCHED_DIRECTIONS = (Direction.RECEIVED, Direction.SENT)


def enqueue(referral_ids) -> None:
    """Queue these referrals (again): one statement, an existing entry gets a new queued_at.

    Plain SQL (the same upsert on SQLite and PostgreSQL): it runs inside the processing of
    most inbound messages, where the ORM's bulk_create cost more than the statement itself.
    """
    from .models import MatchQueue

    ids = list(referral_ids)
    quote = connection.ops.quote_name
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    table, referral, queued_at = (quote(MatchQueue._meta.db_table), quote("referral_id"), quote("queued_at"))
    for start in range(0, len(ids), 400):  # within SQLite's limit on parameters
        batch = ids[start:start + 400]
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} ({referral}, {queued_at}) VALUES {', '.join(['(%s, %s)'] * len(batch))} "
                f"ON CONFLICT ({referral}) DO UPDATE SET {queued_at} = excluded.{queued_at}",
                [value for pk in batch for value in (pk, now)],
            )


def _referral_saved(sender, instance: Referral, created: bool, update_fields=None, raw=False, **kwargs) -> None:
    if raw or instance.direction not in MATCHED_DIRECTIONS:
        return
    if created or update_fields is None or MATCH_FIELDS.intersection(update_fields):
        enqueue([instance.pk])


def connect() -> None:
    post_save.connect(_referral_saved, sender=Referral, dispatch_uid="patients.match_queue")
