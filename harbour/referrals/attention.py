"""Messages that need a person's attention: processed, but with a warning that may mean the
referral was read wrong or in part (contract §6; harbour.fhir.warning_text.ATTENTION_TEMPLATES).

The reader (harbour.fhir.read) and the processing (process.py) note what they found missing or odd
as English ``WarningText``s; the worker stores them twice on the InboundMessage: as English
sentences (``warnings``: for machines, ``harbour inspect`` and the admin) and as templates with
their values (``warning_templates``), which the pages show in the reader's language here. Rows
stored before the templates existed show their English sentences (translated when a sentence is a
whole template, e.g. "the bundle has no ServiceRequest").

Also here: the inbound messages page's "Needs attention" filter and count, and the referral page's
notice when the referral's latest processed message needs attention.
"""
from __future__ import annotations

from django.utils.translation import gettext, gettext_noop

from harbour.intake.models import InboundMessage

ATTENTION = "attention"  # the inbound page's ?state= for processed messages that need attention

# Every warning template of harbour/fhir/read.py and process.py, for makemessages (the reader is pure
# Python, outside any app with a catalogue). tests/fhir/test_warning_texts.py checks this list
# against the code; tests/core/test_translations.py checks the French.
WARNING_TEMPLATES = (
    # Shapes and values (``where`` is a FHIR path, never translated).
    gettext_noop("%(where)s should be an object, not a list"),
    gettext_noop("%(where)s should be an object"),
    gettext_noop("%(where)s should be a list, not an object"),
    gettext_noop("%(where)s should be a list"),
    gettext_noop("%(where)s holds items that are not objects"),
    gettext_noop("%(where)s should be text, not a number"),
    gettext_noop("%(where)s should be text"),
    gettext_noop("%(where)s should be true or false"),
    gettext_noop("%(where)s should be a number, not text"),
    gettext_noop("%(where)s should be a whole number"),
    gettext_noop("%(where)s is out of range"),
    gettext_noop("%(where)s has no time zone; read as Ontario time"),
    gettext_noop("%(where)s is only a partial date"),
    gettext_noop("%(where)s is not a valid date and time"),
    gettext_noop("%(where)s should be a date, not a date and time"),
    gettext_noop("%(where)s is not a valid date"),
    gettext_noop("%(where)s has a value Harbour cannot show"),
    # The bundle and its references.
    gettext_noop("the body is not a JSON object"),
    gettext_noop("%(where)s is not an object"),
    gettext_noop("%(where)s has no resource"),
    gettext_noop("%(where)s resource has no resourceType"),
    gettext_noop("%(where)s does not match any entry in the bundle"),
    gettext_noop("%(where)s points to a %(found)s, expected %(expected)s"),
    gettext_noop("%(where)s points to a %(found)s, expected one of %(expected)s"),
    gettext_noop("the bundle could not be read completely (internal reader error)"),
    gettext_noop("further warnings were left out"),
    # The header.
    gettext_noop("MessageHeader referral identifier extension should hold an identifier"),
    gettext_noop("the MessageHeader has no event code"),
    gettext_noop("unknown event code %(code)s"),
    gettext_noop("the first entry is not a MessageHeader"),
    gettext_noop("the bundle has no MessageHeader"),
    gettext_noop("the MessageHeader focus does not resolve to any resource"),
    # The referral.
    gettext_noop("the bundle has no ServiceRequest"),
    gettext_noop("no focus resource leads to a ServiceRequest; the bundle's first one was used"),
    gettext_noop("the referral ref in the MessageHeader differs from the ServiceRequest identifier"),
    gettext_noop("the referral ref was taken from ServiceRequest.id"),
    gettext_noop("the message carries no referral ref"),
    gettext_noop("no referrer could be found"),
    gettext_noop("no referral target could be found"),
    gettext_noop("form items are nested too deeply; the deepest were left out"),
    gettext_noop("a DocumentReference has no attachment"),
    # The patient.
    gettext_noop("the bundle has no Patient"),
    gettext_noop("the ServiceRequest has no subject; the bundle's first Patient was used"),
    gettext_noop("the patient has no name"),
    gettext_noop("the patient has no given name"),
    gettext_noop("the patient has no birth date"),
    gettext_noop("the patient has no health card identifier"),
    gettext_noop("health card identifier has no value"),
    gettext_noop("health card identifier has no digits"),
    gettext_noop("health card number is not 10 digits long"),
    # Processing (process.py).
    gettext_noop("older than the referral's latest snapshot: not applied"),
    gettext_noop("the bundle has no timestamp: applied as the newest"),
    gettext_noop("a Task status older than Harbour's own latest update: not applied"),
)

# No longer made, still stored with older messages: kept translated for their pages.
RETIRED_WARNING_TEMPLATES = (
    # Processing used to prefer the ServiceRequest's reference; it now takes the reader's (which warns).
    gettext_noop("the header's referral reference differs from the ServiceRequest's"),
)


# --- Showing warnings -------------------------------------------------------------------------


def _translated(text: str) -> str:
    return gettext(text) if text else text  # gettext("") is the catalogue's header


def render_warning(item: object, english: str) -> str:
    """One stored warning template ({"text": ..., "params": {...}}) in the active language;
    its English sentence when the template cannot be used."""
    if not isinstance(item, dict) or not isinstance(item.get("text"), str):
        return english
    params = item.get("params") or {}
    if not isinstance(params, dict):
        return english
    text = item["text"]
    if not params and "%(" not in text:
        return _translated(text)
    try:
        return _translated(text) % {k: str(v) for k, v in params.items()}
    except (KeyError, ValueError, TypeError):  # values missing, or a translation they do not fit
        return english


def shown_warnings(message: InboundMessage) -> list[str]:
    """The message's warnings as a person reads them, in the active language."""
    english = [str(w) for w in (message.warnings or []) if w is not None]
    templates = message.warning_templates or []
    if len(templates) != len(english):  # stored before the templates were: the sentences
        return [_translated(w) for w in english]
    return [render_warning(item, text) for item, text in zip(templates, english)]


# --- The inbound messages page -----------------------------------------------------------------


def needs_attention(queryset):
    """Processed messages that need attention (the `inbound_attention` partial index serves this)."""
    return queryset.filter(state=InboundMessage.State.PROCESSED, needs_attention=True)


def one_message(query) -> int | None:
    """The id of ``?message=`` (one message, as the referral page links to it), else None."""
    raw_id = query.get("message") or ""
    return int(raw_id) if raw_id.isdigit() and len(raw_id) < 19 else None


def filter_messages(queryset, query) -> tuple:
    """The inbound page's filter from its query string: ``state`` an outcome or ``attention``, or
    ``message`` one message (the referral page links to it). Returns (queryset, state shown)."""
    message_id = one_message(query)
    if message_id is not None:
        return queryset.filter(pk=message_id), None
    state = query.get("state")
    if state == ATTENTION:
        return needs_attention(queryset), state
    if state in InboundMessage.State.values:
        return queryset.filter(state=state), state
    return queryset, None


def attention_count(clinic) -> int:
    """How many of the clinic's messages need attention (an index-only count)."""
    return needs_attention(InboundMessage.objects.filter(clinic=clinic)).count()


# --- The referral page --------------------------------------------------------------------------


def processing_warnings(referral) -> InboundMessage | None:
    """The referral's latest processed message when it needs attention, else None: for
    ``referrals/_processing_warnings.html``. One query on the referral_ref index."""
    latest = (
        InboundMessage.objects.filter(clinic_id=referral.clinic_id, referral_ref=referral.ocean_ref,
                                      state=InboundMessage.State.PROCESSED)
        .defer("raw").order_by("-received_at", "-id").first()
    )
    return latest if latest is not None and latest.needs_attention else None
