from django import template

from harbour.referrals.labels import label as _label

register = template.Library()


@register.filter
def label(value, kind: str) -> str:
    """`{{ referral.priority|label:"priority" }}`: a code Ocean sent, as a person reads it (see labels.py)."""
    return _label(kind, value)
