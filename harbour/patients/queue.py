"""What puts a referral in the matcher's queue (MatchQueue): every save that may change its match.

A receiver of Referral's post_save, so every writer is covered (processing, the referral pages,
tests and scripts) without them knowing about patients: a new referral, a full save, or a save
of any field the match reads (the patient snapshot, the chart number a sent copy carries, the
direction). Referrals of unknown direction wait for staff and are queued once it is set. The
entry is written in the saver's transaction, so it exists exactly when the change does.
"""
from __future__ import annotations

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
    """Queue these referrals (again): one statement, an existing entry gets a new queued_at."""
    from .models import MatchQueue

    now = timezone.now()
    entries = [MatchQueue(referral_id=pk, queued_at=now) for pk in referral_ids]
    if entries:
        MatchQueue.objects.bulk_create(
            entries, update_conflicts=True, unique_fields=["referral"], update_fields=["queued_at"],
        )


def _referral_saved(sender, instance: Referral, created: bool, update_fields=None, raw=False, **kwargs) -> None:
    if raw or instance.direction not in MATCHED_DIRECTIONS:
        return
    if created or update_fields is None or MATCH_FIELDS.intersection(update_fields):
        enqueue([instance.pk])


def connect() -> None:
    post_save.connect(_referral_saved, sender=Referral, dispatch_uid="patients.match_queue")
