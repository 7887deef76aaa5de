"""A referral's state as a page showed it, so an action from an older page is refused.

Two tabs (or two colleagues) can show the same referral; the action forms carry the state the
page was rendered with (`state_token`), and ocean.actions compares it with the current one
under the row lock. The token is the latest status change and the latest appointment statement:
both tables only grow, by Harbour's actions and Ocean's messages alike, and Ocean's echo of
Harbour's own action adds neither, so it does not make the page that sent it stale.
A message to the other side changes neither, so an older page can still send one.
"""
from __future__ import annotations

from django.db.models import Max
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from .models import Appointment, Status, StatusChange


def state_token(referral) -> str:
    status_id = StatusChange.objects.filter(referral_id=referral.pk).aggregate(m=Max("id"))["m"] or 0
    appointment_id = Appointment.objects.filter(referral_id=referral.pk).aggregate(m=Max("id"))["m"] or 0
    return f"{status_id}-{appointment_id}"


def _parse(token: str) -> tuple[int, int] | None:
    parts = (token or "").strip().split("-")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        return None
    return int(parts[0]), int(parts[1])


def _name(user) -> str:
    return user.get_full_name().strip() or user.get_username()


def _who(actor, *, from_ocean: bool) -> str:
    """Who made the change: a person of the clinic, Ocean (the other side), or a colleague whose account is gone."""
    if actor is not None:
        return _name(actor)
    return "Ocean" if from_ocean else _("a colleague")


def _at(moment) -> str:
    local = timezone.localtime(moment)
    if local.date() == timezone.localdate():
        return formats.time_format(local, "TIME_FORMAT")
    return formats.date_format(local, "DATETIME_FORMAT")


def stale_message(referral, token: str) -> str | None:
    """None when `token` is the referral's current state; else what changed since, for the person."""
    seen = _parse(token)
    if seen is not None and f"{seen[0]}-{seen[1]}" == state_token(referral):
        return None
    if seen is None:
        return _generic()
    status_id, appointment_id = seen
    change = (StatusChange.objects.filter(referral_id=referral.pk, id__gt=status_id)
              .select_related("actor").order_by("-id").first())
    if change is not None:
        try:
            status = str(Status(change.to_status).label)
        except ValueError:
            status = change.to_status
        who = _who(change.actor, from_ocean=not change.outbound_id)
        return _("Since this page was opened, this referral has become “%(status)s” (by %(who)s, at %(when)s); "
                 "check it before acting.") % {"status": status, "who": who, "when": _at(change.created_at)}
    appointment = Appointment.objects.filter(referral_id=referral.pk, id__gt=appointment_id).order_by("-id").first()
    if appointment is not None:
        actor = None
        if appointment.outbound_id:
            from harbour.ocean.models import OutboundMessage

            sent = OutboundMessage.objects.filter(pk=appointment.outbound_id).select_related("created_by").first()
            actor = sent.created_by if sent else None
        who = _who(actor, from_ocean=not appointment.outbound_id)
        when = _at(appointment.created_at)
        if appointment.start is None or appointment.cancelled:
            return _("Since this page was opened, the appointment was cancelled or replaced by instructions "
                     "(by %(who)s, at %(when)s); check the referral before acting.") % {"who": who, "when": when}
        return _("Since this page was opened, the appointment was changed to %(start)s (by %(who)s, at %(when)s); "
                 "check the referral before acting.") % {
            "start": formats.date_format(timezone.localtime(appointment.start), "DATETIME_FORMAT"),
            "who": who, "when": when}
    return _generic()


def _generic() -> str:
    return _("This page was opened before the referral's latest changes. It is shown again as it is now; "
             "check it before acting.")
