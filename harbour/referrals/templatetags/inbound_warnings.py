from django import template

from harbour.referrals.attention import shown_warnings as _shown_warnings
from harbour.referrals.inbound_errors import shown_error

register = template.Library()


@register.filter
def shown_warnings(message) -> list[str]:
    """`{% for warning in message|shown_warnings %}`: an inbound message's warnings in the active
    language (plain English sentences stored before translation existed are shown as they are)."""
    return _shown_warnings(message)


@register.filter
def processing_error(message) -> dict | None:
    """`{% with error=message|processing_error %}`: a failed message's stored error as a sentence in
    the active language, with the stored text when it is not one processing writes (inbound_errors)."""
    return shown_error(message.error)
