"""Timeline sentences: Event.code + params → a translated sentence for staff."""
from __future__ import annotations

from django.utils import formats
from django.utils.dateparse import parse_datetime
from django.utils.timezone import localtime
from django.utils.translation import gettext as _, ngettext

from .labels import label
from .models import Event, Status

GROUP_LABELS = {
    "patient": lambda: _("patient demographics"),
    "referrer": lambda: _("referrer"),
    "target": lambda: _("target listing"),
    "request": lambda: _("referral details"),
}


def _when(value: str) -> str:
    parsed = parse_datetime(value or "")
    if parsed is None:
        return "?"
    return formats.date_format(localtime(parsed), "DATETIME_FORMAT")


CHANGE_LABELS = {
    "duration": lambda: _("duration"),
    "location": lambda: _("location"),
    "confirmed": lambda: _("confirmation with the patient"),
    "instructions": lambda: _("instructions to the patient"),
}


def _booked_or_moved(p: dict, *, moved: bool) -> str:
    values = {"start": _when(p.get("start")), "location": p.get("location") or ""}
    confirmed = bool(p.get("confirmed"))
    if values["location"]:
        if moved:
            text = (_("Appointment moved to %(start)s, at %(location)s (confirmed).") if confirmed
                    else _("Appointment moved to %(start)s, at %(location)s (unconfirmed)."))
        else:
            text = (_("Appointment booked for %(start)s, at %(location)s (confirmed).") if confirmed
                    else _("Appointment booked for %(start)s, at %(location)s (unconfirmed)."))
    elif moved:
        text = (_("Appointment moved to %(start)s (confirmed).") if confirmed
                else _("Appointment moved to %(start)s (unconfirmed)."))
    else:
        text = (_("Appointment booked for %(start)s (confirmed).") if confirmed
                else _("Appointment booked for %(start)s (unconfirmed)."))
    return text % values


def _refused(p: dict) -> str:
    """Ocean refused one of Harbour's updates for good (ocean.refusals); its answer as it sent it."""
    from harbour.ocean.models import OutboundMessage

    try:
        kind = str(OutboundMessage.Kind(p.get("kind")).label)
    except ValueError:
        kind = p.get("kind") or "?"
    if p.get("undone"):
        if p.get("to") and p.get("to") != p.get("from"):
            text = _("Ocean refused this update (%(kind)s): Harbour undid it, the referral is back to "
                     "%(status)s.") % {"kind": kind, "status": _status(p.get("to"))}
        else:
            text = _("Ocean refused this update (%(kind)s): Harbour undid it, the referral is back as it "
                     "was.") % {"kind": kind}
    else:
        text = _("Ocean refused this update (%(kind)s), but the referral changed since: Harbour kept it as it "
                 "is. Check the referral in Ocean and correct it here.") % {"kind": kind}
    from harbour.ocean.errortext import translate

    error = translate(str(p.get("error") or "").strip())
    if error:
        text += " " + _("Ocean's answer: “%(answer)s”") % {"answer": error}
    return text


def _status(value: str) -> str:
    try:
        return str(Status(value).label)
    except ValueError:
        return value or "?"


def describe(event: Event) -> str:
    p = event.params or {}
    code = event.code
    if code == "referral_received":
        return _("Referral received from Ocean.")
    if code == "first_seen_in_update":
        return _("Referral first seen in an update (it was created in Ocean before this endpoint received it).")
    if code == "referral_resent":
        return _("Ocean sent this referral again as new; Harbour updated it.")
    if code == "data_corrected":
        return _("Ocean sent a data correction.")
    if code == "older_not_applied":
        return _("An update older than the data already shown arrived late; it was not applied.")
    if code == "fields_changed":
        group = GROUP_LABELS.get(p.get("group"), lambda: p.get("group", ""))()
        text = _("Updated by Ocean: %(what)s.") % {"what": group}
        if p.get("protected"):
            text += " " + _("Name, health card, birth date or sex changed: review before updating the chart.")
        return text
    if code == "form_changed":
        return _("The referral form changed.")
    if code == "attachment_added":
        if p.get("kind") == "letter":
            return _("Referral letter available: %(title)s") % {"title": p.get("title") or "—"}
        return _("Attachment added: %(title)s") % {"title": p.get("title") or "—"}
    if code == "attachments_removed":
        count = int(p.get("count") or 0)
        return ngettext("%(count)d attachment is no longer listed by Ocean.",
                        "%(count)d attachments are no longer listed by Ocean.", count) % {"count": count}
    if code == "task_status":
        if p.get("to") and p.get("to") != p.get("from"):
            text = _("Status changed from %(from)s to %(to)s.") % {
                "from": _status(p.get("from")), "to": _status(p.get("to"))}
        else:
            text = _("Ocean task status: %(task)s.") % {"task": label("task_status", p.get("task_status"))}
        reason = str(p.get("reason") or "").strip()
        if reason:  # a decline's reason, whoever declined (Harbour's staff or the receiver in Ocean)
            text += " " + _("Reason: %(reason)s") % {"reason": reason}
        return text
    if code == "cancelled_by_sender":
        return _("Cancelled by the sender.")
    # A date and time never ends a sentence: in English it may end with "a.m." ("a.m..").
    if code == "appointment_booked":
        return _booked_or_moved(p, moved=False)
    if code == "appointment_changed":
        changed = p.get("changed")
        if changed and "start" not in changed:  # the same date and time, other details
            what = ", ".join(str(CHANGE_LABELS[c]()) for c in changed if c in CHANGE_LABELS) or "?"
            return _("Appointment of %(start)s updated (%(what)s).") % {"start": _when(p.get("start")), "what": what}
        return _booked_or_moved(p, moved=True)
    if code == "appointment_cancelled" and p.get("by") == "clinic":
        return _("Appointment of %(start)s cancelled by the clinic: the referral is back to pending booking.") % {
            "start": _when(p.get("start"))}
    if code == "appointment_cancelled":
        return _("Appointment of %(start)s cancelled in Ocean: the referral is back to pending booking.") % {
            "start": _when(p.get("start"))}
    if code == "appointment_instructions":
        return _("Appointment instructions sent, without a date.")
    if code == "message_received":
        if p.get("direction") == "from_us":  # written here (or by the clinic in Ocean) and sent
            return _("Message sent by %(sender)s.") % {"sender": p.get("sender") or _("the clinic")}
        if p.get("direction") == "from_receiver":
            return _("New message from %(sender)s.") % {"sender": p.get("sender") or _("the receiver")}
        return _("New message from %(sender)s.") % {"sender": p.get("sender") or _("the referrer")}
    if code == "ocean_refused":
        return _refused(p)
    if code == "no_change":
        return _("Update from Ocean with nothing new.")
    if code == "not_understood":
        return _("Message not understood (event %(event)s); it was kept.") % {"event": p.get("event_code") or "?"}
    return code
