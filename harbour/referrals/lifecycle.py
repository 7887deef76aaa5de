"""Harbour's referral states, Ocean's Task statuses and folders (contract §5.1, §5.5)."""
from __future__ import annotations

from harbour.fhir.direction import direction
from harbour.fhir.model import TargetListing

from .models import Direction, OceanFolder, Status

TERMINAL_FOR_OCEAN = frozenset({Status.CANCELLED, Status.FORWARDED, Status.EXTERNALLY_MANAGED})


def status_for_task(task_status: str | None, current: str) -> str | None:
    """The Harbour status a Task status moves the referral to, or None (no change)."""
    if current in TERMINAL_FOR_OCEAN:
        return None  # cancelled by the sender, forwarded or managed elsewhere: tasks don't reopen it
    task_status = (task_status or "").strip().lower()
    if task_status in ("accepted", "in-progress", "on-hold", "ready"):
        return None if current in (Status.ACCEPTED, Status.BOOKED) else Status.ACCEPTED
    if task_status in ("rejected", "cancelled"):
        return Status.DECLINED
    if task_status == "completed":
        return Status.COMPLETED
    if task_status in ("requested", "received"):
        # "no change", except that a declined referral is re-opened by a later status (§5.1).
        return Status.NEW if current == Status.DECLINED else None
    return None


def ocean_folder(status: str, direction: str, booking_confirmed: bool = False) -> str:
    """The Ocean folder the referral sits in."""
    if status == Status.NEW:
        return OceanFolder.SENT if direction == Direction.SENT else OceanFolder.NEW
    if status == Status.BOOKED:
        return OceanFolder.BOOKING_CONFIRMED if booking_confirmed else OceanFolder.BOOKING_UNCONFIRMED
    return {
        Status.ACCEPTED: OceanFolder.PENDING_BOOKING,
        Status.COMPLETED: OceanFolder.COMPLETED,
        Status.DECLINED: OceanFolder.DECLINED,
        Status.CANCELLED: OceanFolder.CANCELLED,
        Status.AWAITING_REPLY: OceanFolder.AWAITING_RESPONSE,
        Status.EXTERNALLY_MANAGED: OceanFolder.EXTERNALLY_MANAGED,
        Status.FORWARDED: OceanFolder.FORWARDED,
    }.get(status, OceanFolder.NEW)


def direction_for(clinic, site_number: str, target: TargetListing | None) -> str:
    """Received, sent copy or unknown (contract §5.5, harbour.fhir.direction), with the listings
    this clinic has seen on referrals it received."""
    from .models import Referral

    def listing_received(reference: str) -> bool:
        return Referral.objects.filter(clinic=clinic, direction=Direction.RECEIVED, listing_ref=reference).exists()

    return Direction(direction(site_number, target, listing_received))
