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
