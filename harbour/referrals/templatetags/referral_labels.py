from datetime import date, datetime

from django import template
from django.utils.formats import date_format
from django.utils.timezone import get_default_timezone, is_naive, localtime, make_aware
from django.utils.translation import pgettext

from harbour.fhir import read
from harbour.referrals.labels import label as _label

register = template.Library()


@register.filter
def label(value, kind: str) -> str:
    """`{{ referral.priority|label:"priority" }}`: a code Ocean sent, as a person reads it (see labels.py)."""
    return _label(kind, value)


@register.filter
def form_value(value: str) -> str:
    """One stored form answer as a person reads it. The reader (harbour.fhir.read) stores every answer
    as text: a valueBoolean as "true"/"false", a valueDate and a valueDateTime as Ocean sent them (ISO
    8601, a date and time usually in UTC). Shown here as Yes/No, and dates in the site's time zone
    with Django's date formats; anything else (and an ISO text that is no real date) as stored."""
    text = str(value or "")
    if text == "true":
        return pgettext("form answer", "Yes")
    if text == "false":
        return pgettext("form answer", "No")
    try:
        if read.DATE.fullmatch(text):
            return date_format(date.fromisoformat(text), "DATE_FORMAT")
        if read.DATETIME.fullmatch(text):
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if is_naive(moment):  # read as Ontario time, as the reader does for other dates without a zone
                moment = make_aware(moment, get_default_timezone())
            return date_format(localtime(moment), "DATETIME_FORMAT")
    except ValueError:
        pass
    return text
