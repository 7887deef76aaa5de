from django import template

from harbour.referrals.attention import shown_warnings as _shown_warnings

register = template.Library()


@register.filter
def shown_warnings(message) -> list[str]:
    """`{% for warning in message|shown_warnings %}`: an inbound message's warnings in the active
    language (plain English sentences stored before translation existed are shown as they are)."""
    return _shown_warnings(message)
