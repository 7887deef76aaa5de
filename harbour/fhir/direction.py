"""Received, or a copy of a referral the clinic sent? (contract §5.5; no flag says so)

One rule for processing (harbour.referrals.lifecycle.direction_for, which knows the listings seen
on referrals the clinic received) and `harbour inspect` (which knows no history).
"""
from __future__ import annotations

from collections.abc import Callable

from .model import TargetListing

RECEIVED, SENT, UNKNOWN = "received", "sent", "unknown"


def direction(site_number: str | None, target: TargetListing | None,
              listing_received: Callable[[str], bool] | None = None) -> str:
    """The target's site number equal to the clinic's, or a listing already seen on a referral the
    clinic received (`listing_received(reference)`) → received. No site number configured, or no
    readable target → unknown (staff decide). Otherwise a copy of a referral the clinic sent."""
    site_number = str(site_number or "").strip()
    if not site_number or target is None:
        return UNKNOWN
    if target.site_number and target.site_number.strip() == site_number:
        return RECEIVED
    if target.reference and listing_received is not None and listing_received(target.reference.strip()):
        return RECEIVED
    if not target.site_number and not target.reference:
        return UNKNOWN
    return SENT
