"""The settings page's last inbound result in the reader's language.

The intake notes it in English on its hot path (harbour.intake.store.result_label): "200 <event
code>", "(no event code)" for a message without one, " (duplicate)" when it was a copy of a message
already kept. The words are translated here, at display time; the status and the event code (Ocean's
code) are shown as they are, and a text of any other form as stored.
"""
import re

from django import template
from django.utils.translation import gettext, pgettext

register = template.Library()

_RESULT = re.compile(r"^(?P<status>\d{3}) (?P<event>.*?)(?P<duplicate> \(duplicate\))?$", re.S)
NO_EVENT_CODE = "(no event code)"


@register.filter
def inbound_result(stored: str) -> str:
    """`{{ ocean.last_inbound_result|inbound_result }}`: e.g. « 200 add-service-request (doublon) »."""
    match = _RESULT.match(stored or "")
    if not match:
        return stored
    event = match["event"]
    if event == NO_EVENT_CODE:
        event = gettext("(no event code)")
    text = f"{match['status']} {event}"
    if match["duplicate"]:
        text += " " + pgettext("last inbound result", "(duplicate)")
    return text
