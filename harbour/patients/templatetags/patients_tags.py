from django import template

from harbour.patients.matching import panel_context
from harbour.patients.models import ReviewField, Sex

register = template.Library()


@register.simple_tag
def patient_panel(referral):
    """`{% patient_panel referral as panel %}`: the data of the patient panel (see panel_context)."""
    return panel_context(referral)


@register.filter
def mask_hcn(value) -> str:
    """A health card number showing its last 3 digits only."""
    value = str(value or "")
    if not value:
        return ""
    return "•" * max(len(value) - 3, 0) + value[-3:]


@register.filter
def sex_label(value) -> str:
    return Sex(value).label if value in Sex.values else (value or "")


@register.filter
def review_value(value, field) -> str:
    """A review item's stored text as a person reads it (a sex code becomes its label)."""
    if field == ReviewField.SEX:
        return sex_label(value)
    return value
