"""Error texts Harbour itself stores in English (outbox `last_error`, documents `last_fetch_error`),
shown to people in their language.

The rows keep the English text (logs, support, the failures page's history); templates show it
through the `ocean_error` filter. Only the texts Harbour writes are translated: Ocean's own words
(its OperationOutcome, e.g. "You are not the current receiver") are shown as Ocean sent them.
"""
from __future__ import annotations

import re

from django.utils.translation import gettext as _


def _credentials(m) -> str:
    which = m.group("which")
    if which == "client_id":
        return _("Ocean refuses Harbour's OAuth credentials (the Client ID): not sent to Ocean until they are "
                 "corrected in the Ocean settings.")
    if which == "secret":
        return _("Ocean refuses Harbour's OAuth credentials (the Secret): not sent to Ocean until they are "
                 "corrected in the Ocean settings.")
    if which == "missing":
        return _("No OAuth credentials are saved for Ocean: not sent to Ocean until they are entered in the "
                 "Ocean settings.")
    return _("Ocean refuses Harbour's OAuth credentials: not sent to Ocean until they are corrected in the "
             "Ocean settings.")


def _answered(m) -> str:
    if m.group("text"):
        return _("Ocean answered %(status)s: %(text)s") % {"status": m.group("status"), "text": m.group("text")}
    return _("Ocean answered %(status)s.") % {"status": m.group("status")}


def _unreachable(m) -> str:
    if m.group("detail"):
        return _("Ocean could not be reached (%(detail)s).") % {"detail": m.group("detail")}
    return _("Ocean could not be reached.")


PATTERNS = [
    (re.compile(r"^Ocean refused the OAuth credentials \((?P<which>\w+)\)\.?$"), _credentials),
    (re.compile(r"^Ocean could not be reached(?: \((?P<detail>[\w.]+)\))?\.?$"), _unreachable),
    (re.compile(r"^Ocean answered (?P<status>\d{3})(?:: (?P<text>.*))?$", re.S), _answered),
    (re.compile(r"^Unexpected error: (?P<name>\w+)$"),
     lambda m: _("Unexpected error in Harbour (%(name)s).") % {"name": m.group("name")}),
    (re.compile(r"^Ocean gave no address for this document\.$"),
     lambda m: _("Ocean gave no address for this document.")),
    (re.compile(r"^The document address is not on the configured Ocean server, so it was not fetched\.$"),
     lambda m: _("The document address is not on the configured Ocean server, so it was not fetched.")),
]


def translate(text: str) -> str:
    """`text` in the current language when Harbour wrote it, else unchanged (Ocean's own words)."""
    text = str(text or "")
    for pattern, render in PATTERNS:
        match = pattern.match(text.strip())
        if match:
            return render(match)
    return text
