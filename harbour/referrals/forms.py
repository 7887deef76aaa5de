"""Forms of the referral pages: the list's filters and each action on a referral.

Every action form carries `idempotency_key`, a random value written into the page: a
double-clicked submit posts it twice and ocean.actions turns the second into the first's result.
It also carries `seen_state`, the referral's state as the page showed it (staleness.state_token):
ocean.actions refuses a change made from a page older than the referral's current state.

Date and time inputs are <input type=date/time>: their values must be ISO (YYYY-MM-DD, HH:MM)
whatever the language, or the browser shows them empty.
"""
from __future__ import annotations

import re
import uuid
from datetime import datetime, time, timedelta

from django import forms
from django.utils import formats, timezone
from django.utils.translation import gettext_lazy as _

from harbour.ocean.actions import (
    BOOKING_HORIZON_YEARS, ActionNotAllowed, FileUpload, allowed_attachment_types, booking_horizon, check_attachment,
    max_attachment_bytes,
)

from .models import OceanFolder


def date_input():
    return forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"})


def time_input():
    return forms.TimeInput(format="%H:%M", attrs={"type": "time"})


# The list's folder filter: Ocean's folders as staff name them, plus "not synced" (Harbour's).
FOLDER_FILTERS = {
    "new": (_("New"), [OceanFolder.NEW, OceanFolder.SENT]),
    "pending_booking": (_("Pending booking"), [OceanFolder.PENDING_BOOKING]),
    "booked": (_("Booked"), [OceanFolder.BOOKING_UNCONFIRMED, OceanFolder.BOOKING_CONFIRMED]),
    "awaiting_reply": (_("Awaiting reply"), [OceanFolder.AWAITING_RESPONSE]),
    "declined": (_("Declined"), [OceanFolder.DECLINED]),
    "cancelled": (_("Cancelled"), [OceanFolder.CANCELLED]),
    "completed": (_("Completed"), [OceanFolder.COMPLETED]),
    "not_synced": (_("Not synced"), None),
}


class ReferralFilterForm(forms.Form):
    DATE_FIELDS = [("activity", _("Last activity")), ("authored", _("Written"))]

    folder = forms.ChoiceField(label=_("Ocean folder"), required=False,
                               choices=[("", _("All folders"))] + [(k, v[0]) for k, v in FOLDER_FILTERS.items()])
    date_field = forms.ChoiceField(label=_("Date of"), required=False, choices=DATE_FIELDS)
    date_from = forms.DateField(label=_("From"), required=False, widget=date_input())
    date_to = forms.DateField(label=_("To"), required=False, widget=date_input())
    patient = forms.CharField(label=_("Patient name or health card number"), required=False, max_length=100)
    ref = forms.CharField(label=_("Referral reference"), required=False, max_length=200)

    def clean_patient(self):
        return " ".join(self.cleaned_data["patient"].split())

    def clean_ref(self):
        return self.cleaned_data["ref"].strip()

    def clean(self):
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", _("The end date is before the start date."))
        return data

    @staticmethod
    def hcn_digits(text: str) -> str | None:
        """A health card number typed with spaces or dashes → its digits; None when it is a name."""
        compact = re.sub(r"[\s-]", "", text)
        match = re.fullmatch(r"(\d{6,12})([A-Za-z]{0,2})", compact)
        return match.group(1) if match else None


class ActionForm(forms.Form):
    idempotency_key = forms.CharField(widget=forms.HiddenInput, required=False, max_length=100)
    # Checked by ocean.actions for the actions that change the referral; missing = an old page.
    seen_state = forms.CharField(widget=forms.HiddenInput, required=False, max_length=50)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("initial", {}).setdefault("idempotency_key", uuid.uuid4().hex)
        super().__init__(*args, **kwargs)


class AcceptForm(ActionForm):
    pass


class CompleteForm(ActionForm):
    pass


class DeclineForm(ActionForm):
    reason = forms.CharField(label=_("Reason for declining"), max_length=1000, widget=forms.Textarea(attrs={"rows": 3}),
                             help_text=_("Ocean shows it to the referrer."),
                             error_messages={"required": _("Give the reason for declining.")})

    def clean_reason(self):
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError(_("Give the reason for declining."))
        return reason


class BookForm(ActionForm):
    date = forms.DateField(label=_("Date"), widget=date_input(),
                           error_messages={"required": _("Give the date of the appointment."),
                                           "invalid": _("Enter a valid date.")})
    time = forms.TimeField(label=_("Time"), widget=time_input(),
                           error_messages={"required": _("Give the time of the appointment."),
                                           "invalid": _("Enter a valid time.")})
    duration = forms.IntegerField(label=_("Duration (minutes)"), min_value=5, max_value=720, initial=30,
                                  error_messages={"required": _("Give the duration in minutes."),
                                                  "min_value": _("An appointment lasts at least 5 minutes."),
                                                  "max_value": _("An appointment lasts at most 12 hours.")})
    location = forms.CharField(label=_("Location"), max_length=200, required=False)
    confirmed = forms.BooleanField(label=_("Confirmed with the patient"), required=False)
    instructions = forms.CharField(label=_("Instructions to the patient"), max_length=2000, required=False,
                                   widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["date"].widget.attrs["max"] = booking_horizon().isoformat()

    def clean(self):
        data = super().clean()
        day, at = data.get("date"), data.get("time")
        if day and at:
            start = timezone.make_aware(datetime.combine(day, at))
            if start <= timezone.now():
                self.add_error("date", _("The appointment must be in the future."))
            elif day > booking_horizon():
                self.add_error("date", _(
                    "An appointment can be booked at most %(years)d years ahead (until %(date)s); check the year."
                ) % {"years": BOOKING_HORIZON_YEARS, "date": formats.date_format(booking_horizon(), "DATE_FORMAT")})
            data["start"] = start
        return data


class RebookForm(BookForm):
    pass


class CancelAppointmentForm(ActionForm):
    reason = forms.CharField(label=_("Reason for cancelling the appointment"), max_length=1000,
                             widget=forms.Textarea(attrs={"rows": 2}),
                             error_messages={"required": _("Give the reason for cancelling the appointment.")})

    def clean_reason(self):
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError(_("Give the reason for cancelling the appointment."))
        return reason


class MessageForm(ActionForm):
    text = forms.CharField(label=_("Message"), max_length=5000, required=False,
                           widget=forms.Textarea(attrs={"rows": 4}))
    attachment = forms.FileField(label=_("Attach a file (optional)"), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        megabytes = max_attachment_bytes() // (1024 * 1024)
        self.fields["attachment"].help_text = _("PDF, PNG, JPEG or text, at most %(mb)s MB.") % {"mb": megabytes}
        self.fields["attachment"].widget.attrs["accept"] = ",".join(allowed_attachment_types())

    def clean_attachment(self):
        upload = self.cleaned_data.get("attachment")
        if not upload:
            return None
        if upload.size > max_attachment_bytes():  # before reading it into memory
            raise forms.ValidationError(_("The attached file is too large (at most %(mb)s MB).")
                                        % {"mb": max_attachment_bytes() // (1024 * 1024)})
        file = FileUpload(name=upload.name, content_type=upload.content_type or "", data=upload.read())
        try:
            check_attachment(file)
        except ActionNotAllowed as exc:
            raise forms.ValidationError(exc.message) from None
        return file

    def clean(self):
        data = super().clean()
        if not (data.get("text") or "").strip() and not data.get("attachment") and not self.errors:
            self.add_error("text", _("Write a message or attach a file."))
        return data


def booking_args(data: dict) -> dict:
    """The keyword arguments of ocean.actions.book / rebook from a valid BookForm's cleaned data."""
    return {"duration": timedelta(minutes=data["duration"]), "location": data["location"],
            "confirmed": data["confirmed"], "instructions": data["instructions"]}


def start_of_day(day) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))
