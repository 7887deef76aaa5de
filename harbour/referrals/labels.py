"""Codes Ocean sends, as a person reads them: one table per kind, translated labels.

Templates use the `label` filter (`{% load referral_labels %}`, `{{ referral.priority|label:"priority" }}`),
Python code `label("priority", value)`. A code no table knows is shown as it came, never hidden.
"""
from __future__ import annotations

from django.utils.translation import gettext_lazy as _, pgettext_lazy

from harbour.fhir import codes
from harbour.fhir.read import humanise_display
from harbour.patients.models import Sex

# FHIR request-priority (ServiceRequest.priority).
PRIORITY = {
    "routine": pgettext_lazy("referral priority", "Routine"),
    "urgent": pgettext_lazy("referral priority", "Urgent"),
    "asap": pgettext_lazy("referral priority", "As soon as possible"),
    "stat": pgettext_lazy("referral priority", "Immediately (STAT)"),
}

# FHIR task-status, as words inside a sentence ("Ocean status accepted: ...").
TASK_STATUS = {
    "draft": pgettext_lazy("ocean task status", "draft"),
    "requested": pgettext_lazy("ocean task status", "requested"),
    "received": pgettext_lazy("ocean task status", "received"),
    "accepted": pgettext_lazy("ocean task status", "accepted"),
    "rejected": pgettext_lazy("ocean task status", "declined"),
    "ready": pgettext_lazy("ocean task status", "ready"),
    "cancelled": pgettext_lazy("ocean task status", "cancelled"),
    "in-progress": pgettext_lazy("ocean task status", "in progress"),
    "on-hold": pgettext_lazy("ocean task status", "on hold"),
    "failed": pgettext_lazy("ocean task status", "failed"),
    "completed": pgettext_lazy("ocean task status", "completed"),
    "entered-in-error": pgettext_lazy("ocean task status", "entered in error"),
}

# FHIR appointmentstatus, for an appointment shown without a date.
APPOINTMENT_STATUS = {
    "proposed": pgettext_lazy("appointment status", "proposed, no date yet"),
    "pending": pgettext_lazy("appointment status", "pending"),
    "booked": pgettext_lazy("appointment status", "booked"),
    "arrived": pgettext_lazy("appointment status", "patient arrived"),
    "fulfilled": pgettext_lazy("appointment status", "took place"),
    "cancelled": pgettext_lazy("appointment status", "cancelled"),
    "noshow": pgettext_lazy("appointment status", "patient did not come"),
    "entered-in-error": pgettext_lazy("appointment status", "entered in error"),
    "checked-in": pgettext_lazy("appointment status", "patient checked in"),
    "waitlist": pgettext_lazy("appointment status", "on the waiting list"),
}

# FHIR participationstatus of the patient: whether the patient confirmed the appointment.
PARTICIPANT_STATUS = {
    "accepted": pgettext_lazy("appointment participant", "confirmed by the patient"),
    "tentative": pgettext_lazy("appointment participant", "not confirmed by the patient"),
    "declined": pgettext_lazy("appointment participant", "declined by the patient"),
    "needs-action": pgettext_lazy("appointment participant", "waiting for the patient"),
}

# Message events (canonical names; older spellings are mapped first, see fhir.codes).
EVENT = {
    codes.ADD_SERVICE_REQUEST: _("New referral"),
    codes.NOTIFY_ADD_SERVICE_REQUEST: _("New referral (notice)"),
    codes.NOTIFY_UPDATE_SERVICE_REQUEST: _("Referral updated"),
    codes.REVOKE_SERVICE_REQUEST: _("Referral cancelled by the sender"),
    codes.SEND_COMMUNICATION_FROM_REQUESTER: _("Message from the referrer"),
    codes.SEND_COMMUNICATION_FROM_PROVIDER: _("Message from the receiver"),
    codes.SEND_COMMUNICATION: _("Message"),
    codes.NOTIFY_ADD_PROCESS_REQUEST: _("Referral status"),
    codes.NOTIFY_UPDATE_PROCESS_REQUEST: _("Referral status changed"),
    codes.NOTIFY_ADD_APPOINTMENT: _("Appointment"),
    codes.NOTIFY_DATA_CORRECTION: _("Data correction"),
    codes.NOTIFY_REPORT_SERVICE_REQUEST: _("Referral report"),
}

CONTENT_TYPE = {
    "application/pdf": _("PDF"),
    "image/png": _("PNG image"),
    "image/jpeg": _("JPEG image"),
    "text/plain": _("text"),
}

TABLES = {
    "sex": dict(Sex.choices),
    "priority": PRIORITY,
    "task_status": TASK_STATUS,
    "appointment": APPOINTMENT_STATUS,
    "participant": PARTICIPANT_STATUS,
    "event": EVENT,
    "content_type": CONTENT_TYPE,
}


def label(kind: str, value) -> str:
    """The translated label of `value` (a code of `kind`, see TABLES); the code itself when unknown."""
    text = str(value or "").strip()
    if not text:
        return ""
    key = text.lower()
    if kind == "event":
        key = codes.canonical_event(key) or key
    elif kind == "content_type":
        key = key.split(";")[0].strip()
    found = TABLES[kind].get(key)
    return str(found) if found is not None else text


def category_label(display: str) -> str:
    """Ocean's category display as words: MENTAL_HEALTH_ASSESSMENT_AND_REFERRAL -> Mental health assessment and referral."""
    return humanise_display(display) or ""
