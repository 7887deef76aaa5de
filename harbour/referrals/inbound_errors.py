"""A failed inbound message's error as the inbound page shows it, in the reader's language.

The worker stores the error in English (harbour.intake.jobs.safe_error: "ProcessingError: <our
text>" or an exception's class and place, details withheld); machines, logs and ``harbour inspect``
read that. The page maps the texts processing raises (harbour.referrals.process, ``raise
ProcessingError``) to plain-language sentences here; any other error gets a general sentence and
the stored text, as it is, in a <code> element.
"""
from django.utils.translation import gettext_lazy as _

from harbour.fhir.model import NO_REFERRAL_REFERENCE

PREFIX = "ProcessingError: "

# The fixed texts of `raise ProcessingError(...)` in harbour/referrals/process.py.
KNOWN = {
    "the stored body is not valid JSON": _(
        "Harbour could not read this message: what Ocean sent is not valid JSON."),
    NO_REFERRAL_REFERENCE: _(
        "Harbour could not file this message: it does not say which referral it is about (it has no "
        "referral reference)."),
}
UNKNOWN_PROCESSING_ERROR = _("Harbour could not process this message. The reason, as Harbour recorded it:")
UNEXPECTED_ERROR = _(
    "Processing failed because of an unexpected error in Harbour (its details are withheld: they may "
    "contain patient data). Tell whoever runs Harbour, with this text:")


def shown_error(error: str) -> dict | None:
    """{"text": a sentence in the active language, "code": the stored text to show as code, or ""}."""
    error = (error or "").strip()
    if not error:
        return None
    if error.startswith(PREFIX):
        known = KNOWN.get(error[len(PREFIX):].strip())
        if known is not None:
            return {"text": str(known), "code": ""}
        return {"text": str(UNKNOWN_PROCESSING_ERROR), "code": error}
    return {"text": str(UNEXPECTED_ERROR), "code": error}
