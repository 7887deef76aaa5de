"""Template helpers of the Ocean app: the outbox summary for the settings panel."""
from django import template

from harbour.ocean.outbox import outbox_summary

register = template.Library()


@register.simple_tag(takes_context=True)
def ocean_outbox_summary(context):
    """The outbox counts of the request's clinic (None when the page has no clinic)."""
    request = context.get("request")
    clinic = getattr(request, "clinic", None)
    if clinic is None or not getattr(clinic, "pk", None):
        return None
    return outbox_summary(clinic)


@register.filter
def ocean_error(text):
    """An error text Harbour stored in English, in the current language; Ocean's own words unchanged."""
    from harbour.ocean.errortext import translate

    return translate(text)
