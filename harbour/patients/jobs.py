"""Worker job: match referrals to charts after intake has written them.

Two queues, both read from the database:
- received and sent referrals with no ReferralPatientLink yet (direction unknown waits for staff);
- links whose referral changed since the matcher last looked (Referral.updated_at > checked_at),
  e.g. a notify-update that corrected the patient: differences become new review items.
match_referral is idempotent (one link per referral, one open item per field), so a retried or
doubled pass changes nothing.
"""
import logging

from django.db.models import F

from harbour.referrals.models import Direction, Referral

from .matching import match_referral, snapshot_digest
from .models import ReferralPatientLink

log = logging.getLogger("harbour.patients")

BATCH_SIZE = 50


def match_new_referrals(limit: int = BATCH_SIZE) -> int:
    handled = 0
    fresh = (
        Referral.objects.filter(direction__in=[Direction.RECEIVED, Direction.SENT], patient_link__isnull=True)
        .order_by("id").values_list("pk", flat=True)[:limit]
    )
    for pk in fresh:
        handled += _match(pk)
    changed = (
        ReferralPatientLink.objects.filter(referral__updated_at__gt=F("checked_at"))
        .select_related("referral").order_by("referral__updated_at", "id")[: max(limit - handled, 0)]
    )
    unchecked = ReferralPatientLink.objects.filter(checked_at__isnull=True).select_related("referral")[:limit]
    for current in [*changed, *unchecked]:
        referral = current.referral
        if current.snapshot_digest == snapshot_digest(referral):
            # Another part of the referral changed (status, messages): the patient did not.
            ReferralPatientLink.objects.filter(pk=current.pk).update(checked_at=referral.updated_at)
            handled += 1
        else:
            handled += _match(referral.pk)
    return handled


def _match(referral_pk: int) -> int:
    try:
        match_referral(Referral(pk=referral_pk))
    except Exception:
        # Logged by id only; the referral stays in the queue for the next pass.
        log.exception("matching referral %s failed", referral_pk)
        return 0
    return 1


WORKER_JOBS = [match_new_referrals]
