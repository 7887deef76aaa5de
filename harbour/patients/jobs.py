"""Worker job: match referrals to charts after intake has written them.

The queue is MatchQueue (see queue.py): a referral is in it when it is new, or when a save
touched what the match reads (e.g. a notify-update that corrected the patient), or when a chart
gained the card number it waits for. A pass reads the oldest entries by primary key, so it
costs a batch whatever the number of referrals (the job used to compare every link with its
referral, a full scan twice a second when idle).

For each entry, as before: a referral without a link is matched (unknown direction waits for
staff); a linked one whose patient snapshot is unchanged only has checked_at moved; otherwise
it is matched again and differences become review items. match_referral is idempotent (one link
per referral, one open item per field), so a retried or doubled pass changes nothing. An entry
queued again while it was being handled stays for the next pass; a failed match stays too.
"""
import logging

from .matching import match_referral, snapshot_digest
from .models import MatchQueue, ReferralPatientLink
from .queue import MATCHED_DIRECTIONS

log = logging.getLogger("harbour.patients")

BATCH_SIZE = 50
# Entries that turn out to need nothing (already seen) do not count as work; a pass still
# stops after this many entries so it stays bounded.
MAX_ENTRIES_PER_PASS = 10 * BATCH_SIZE


def match_new_referrals(limit: int = BATCH_SIZE) -> int:
    handled = seen = 0
    last_id = 0
    while handled < limit and seen < max(MAX_ENTRIES_PER_PASS, limit):
        entries = list(
            MatchQueue.objects.filter(pk__gt=last_id).order_by("pk")
            .values_list("pk", "referral_id", "queued_at")[: limit - handled]
        )
        if not entries:
            break
        links = {
            link.referral_id: link
            for link in ReferralPatientLink.objects.filter(referral_id__in=[e[1] for e in entries])
            .select_related("referral")
        }
        unlinked = _unlinked_referrals([e[1] for e in entries if e[1] not in links])
        for pk, referral_pk, queued_at in entries:
            last_id, seen = pk, seen + 1
            done, work = _handle(referral_pk, links.get(referral_pk), unlinked.get(referral_pk))
            handled += work
            if done:
                MatchQueue.objects.filter(pk=pk, queued_at=queued_at).delete()
    return handled


def _unlinked_referrals(pks: list[int]) -> dict:
    from harbour.referrals.models import Referral

    if not pks:
        return {}
    return dict(Referral.objects.filter(pk__in=pks).values_list("pk", "direction"))


def _handle(referral_pk: int, current: ReferralPatientLink | None, direction: str | None) -> tuple[bool, int]:
    """(whether the entry can go, whether it was work)."""
    if current is None:
        if direction not in MATCHED_DIRECTIONS:
            return True, 0  # deleted meanwhile, or waiting for staff to set the direction
        ok = _match(referral_pk)
        return ok, int(ok)
    referral = current.referral
    if current.checked_at is not None and referral.updated_at <= current.checked_at:
        return True, 0  # already looked at this version (e.g. a person's decision did)
    if current.checked_at is not None and current.snapshot_digest == snapshot_digest(referral):
        # Another part of the referral changed (status, messages): the patient did not.
        ReferralPatientLink.objects.filter(pk=current.pk).update(checked_at=referral.updated_at)
        return True, 1
    ok = _match(referral_pk)
    return ok, int(ok)


def _match(referral_pk: int) -> bool:
    from harbour.referrals.models import Referral

    try:
        match_referral(Referral(pk=referral_pk))
    except Exception:
        # Logged by id only; the entry stays in the queue for the next pass.
        log.exception("matching referral %s failed", referral_pk)
        return False
    return True


WORKER_JOBS = [match_new_referrals]
