"""When Ocean refuses one of Harbour's updates for good (outbox state REJECTED: a final 4xx).

The staff action already changed the referral here (ocean.actions) and Ocean will never apply it
(contract §6: "Harbour not current receiver → action failed with Ocean's message; no auto-retry").
Decision:

- Nothing happened on the referral since the action (its status, Ocean folder and Task status
  are the ones the action left, and no status change or appointment statement came after it:
  the state token of harbour.referrals.staleness is the one the action left): the action is
  undone. Status, Ocean folder, Ocean Task status and "needs attention" go back to what they were
  (a status change back is recorded, by Ocean), the appointment the action stated is marked
  replaced and the one it replaced is stated again as current. The message is marked `undone`:
  the referral is no longer "not synced" (it is as Ocean has it).
- Something happened since: nothing is undone (it could undo a colleague's or Ocean's later
  change); the message is marked `kept` and stays in the "not synced" panel, flagged, until a
  person who checked the referral marks it `handled` (outbox.mark_refusal_handled).

Either way a timeline entry says that Ocean refused the change, with Ocean's answer, and the
refused entry's echo key is released: its echo never comes, and a later identical change (e.g.
the same slot booked in Ocean) must get its own timeline entry.

Messages (Communication) are not taken back from the thread: the text is kept as written; only
the folder or status the message changed is put back.
"""
from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from .models import OutboundMessage

log = logging.getLogger("harbour.ocean")

State = OutboundMessage.State
Refusal = OutboundMessage.Refusal

# The referral's fields an action changes and a refusal puts back (saved by ocean.actions).
REFERRAL_FIELDS = ("status", "ocean_folder", "ocean_task_status")


def referral_fields(referral) -> dict:
    return {name: getattr(referral, name) for name in REFERRAL_FIELDS}


APPOINTMENT_FIELDS = ("ocean_identity", "status", "start", "end", "minutes", "participant_status", "confirmed",
                      "patient_instruction", "location", "appointment_type", "inbound_message_id", "outbound_id")


def settle_refusal(message: OutboundMessage) -> str:
    """Undo or flag the action of a message Ocean refused; returns the Refusal value ('' if not rejected)."""
    from harbour.referrals.models import Appointment, Event, Referral, StatusChange
    from harbour.referrals.staleness import state_token

    with transaction.atomic():
        referral = Referral.objects.select_for_update().get(pk=message.referral_id)
        message = OutboundMessage.objects.select_for_update().get(pk=message.pk)
        if message.state != State.REJECTED or message.refusal:
            return message.refusal
        undo = message.undo or {}
        before, after = undo.get("before"), undo.get("after")
        untouched = bool(before and after) and (
            referral_fields(referral) == {name: after.get(name) for name in REFERRAL_FIELDS}
            and state_token(referral) == after.get("state_token"))
        # The refused entry's echo never comes: its key must not swallow a later, real fact.
        Event.objects.filter(referral=referral, outbound_id=message.pk).exclude(dedupe_key="").update(dedupe_key="")
        params = {"kind": message.kind, "error": (message.last_error or "")[:500], "status": message.last_status,
                  "undone": untouched}
        if untouched:
            previous_status = before.get("status") or referral.status
            params.update({"from": referral.status, "to": previous_status})
            if previous_status != referral.status:
                StatusChange.objects.create(referral=referral, from_status=referral.status, to_status=previous_status,
                                            task_status=(before.get("ocean_task_status") or "")[:30])
            referral.status = previous_status
            referral.ocean_folder = before.get("ocean_folder") or ""
            referral.ocean_task_status = before.get("ocean_task_status") or ""
            referral.attention = before.get("attention") or ""
            stated = list(Appointment.objects.filter(referral=referral, outbound_id=message.pk))
            if stated:
                Appointment.objects.filter(pk__in=[a.pk for a in stated]).update(superseded=True)
                replaced = Appointment.objects.filter(referral=referral, pk=before.get("appointment")).first()
                if replaced is not None:
                    # Stated again, as a new row: a page showing the refused appointment is now stale.
                    again = Appointment(referral=referral, cancelled=bool(before.get("appointment_cancelled")))
                    for field in APPOINTMENT_FIELDS:
                        setattr(again, field, getattr(replaced, field))
                    again.save()
            message.refusal = Refusal.UNDONE
        else:
            message.refusal = Refusal.KEPT
        message.save(update_fields=["refusal"])
        now = timezone.now()
        Event.objects.create(clinic_id=referral.clinic_id, referral=referral, kind="harbour:refused",
                             code="ocean_refused", params=params, occurred_at=now)
        referral.last_activity_at = now
        referral.save(update_fields=["status", "ocean_folder", "ocean_task_status", "attention",
                                     "last_activity_at", "updated_at"])
    log.warning("outbound %s refused by Ocean: %s", message.pk,
                "action undone" if untouched else "kept, the referral changed since")
    return message.refusal
