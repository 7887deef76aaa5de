"""The reader's warnings: English sentences that remember how they were made.

A warning is a ``WarningText``: a ``str`` holding its English sentence, so everything that reads
warnings as text (``harbour inspect``'s JSON, ``InboundMessage.warnings``, tests) sees exactly what
it saw before. It also keeps the sentence's template and the values put into it, so a page can show
it in the reader's language: ``harbour.referrals.attention`` lists every template for translation
and renders ``gettext(template) % params``. Values are FHIR paths, resource types and codes (never
patient data, never translated).

Pure Python, like the rest of ``harbour.fhir``: no Django here.
"""
from __future__ import annotations

from typing import Iterable


class WarningText(str):
    """``WarningText("%(where)s should be a list", where="Patient.name")`` is the str
    ``"Patient.name should be a list"``, with ``.template`` and ``.params``."""

    template: str
    params: dict[str, str]

    def __new__(cls, template: str, **params: object) -> "WarningText":
        values = {name: str(value) for name, value in params.items()}
        self = super().__new__(cls, template % values if values else template)
        self.template = template
        self.params = values
        return self

    def __reduce__(self):  # copy and pickle: made again from its template and values
        return (_remake, (self.template, self.params))

    def stored(self) -> dict:
        return {"text": self.template, "params": dict(self.params)}


def _remake(template: str, params: dict) -> WarningText:
    return WarningText(template, **params)


def stored_templates(warnings: Iterable[str]) -> list[dict]:
    """What ``InboundMessage.warning_templates`` keeps: each warning's template and values, in
    the order of the English ``warnings`` (a plain string is its own template)."""
    return [w.stored() if isinstance(w, WarningText) else {"text": str(w), "params": {}} for w in warnings]


# The warnings that may mean Harbour read the referral wrong or without a part of it: the message
# needs a person (contract §6, "needs attention"). The others note what a real payload often lacks
# (a health card identifier without a value, no birth date) or a shape the reader took in its
# stride: shown with the message, they do not call anyone. Real Ocean messages carry some of
# those nearly always, and a list that holds every message is a list nobody reads.
ATTENTION_TEMPLATES = frozenset({
    "the body is not a JSON object",
    "%(where)s is not an object",
    "%(where)s has no resource",
    "%(where)s resource has no resourceType",
    "%(where)s does not match any entry in the bundle",
    "%(where)s points to a %(found)s, expected %(expected)s",
    "%(where)s points to a %(found)s, expected one of %(expected)s",
    "the bundle could not be read completely (internal reader error)",
    "the MessageHeader has no event code",
    "the first entry is not a MessageHeader",
    "the bundle has no MessageHeader",
    "the MessageHeader focus does not resolve to any resource",
    "the bundle has no ServiceRequest",
    "no focus resource leads to a ServiceRequest; the bundle's first one was used",
    "the referral ref in the MessageHeader differs from the ServiceRequest identifier",
    "the header's referral reference differs from the ServiceRequest's",
    "the message carries no referral ref",
    "the referral ref was taken from ServiceRequest.id",
    "no referrer could be found",
    "no referral target could be found",
    "form items are nested too deeply; the deepest were left out",
    "the bundle has no Patient",
    "the ServiceRequest has no subject; the bundle's first Patient was used",
})


def needs_attention(warnings: Iterable[str]) -> bool:
    """Whether these warnings call for a person (ATTENTION_TEMPLATES)."""
    return any((w.template if isinstance(w, WarningText) else str(w)) in ATTENTION_TEMPLATES for w in warnings)
