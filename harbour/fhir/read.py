"""Lenient reading of Ocean eReferral message bundles (contract §3, §4).

Two entry points:

- ``check_envelope(obj)``: the intake endpoint's fast check; raises only ``EnvelopeError``.
- ``read_message(obj)``: reads a whole bundle (payload v0.11.1 or v0.10.0) into
  ``harbour.fhir.model`` dataclasses. It never raises: anything odd or missing becomes a
  short English warning in ``Message.warnings`` (a ``WarningText``: the sentence, and the
  template it was made from for translation). Warnings never contain patient data.

Everything here works on plain JSON values (dict/list/str/int/float/bool/None).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from html.parser import HTMLParser
from typing import Any, Iterable
from urllib.parse import unquote

from . import codes
from .codes import has_suffix, system_suffix
from .model import (
    Address, Appointment, Attachment, Communication, Envelope, Form, FormItem, Message,
    Patient, Referral, Referrer, TargetListing, Task, Telecom,
)
from .warning_text import WarningText

try:  # Naive times in an Ontario feed are Ontario times.
    from zoneinfo import ZoneInfo

    ONTARIO_TZ: Any = ZoneInfo("America/Toronto")
except Exception:  # pragma: no cover - no tz database installed
    ONTARIO_TZ = timezone(timedelta(hours=-5), "EST")

MAX_WARNINGS = 100
MAX_FORM_DEPTH = 20  # nested QuestionnaireResponse items; deeper ones are dropped
FHIR_INTEGER_MIN, FHIR_INTEGER_MAX = -2 ** 31, 2 ** 31 - 1
_DIGITS = re.compile(r"[0-9]{1,12}")


class EnvelopeError(ValueError):
    """The body is not an Ocean message bundle. ``message`` is a plain English sentence."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


# --- Plain-text helpers -------------------------------------------------------

_BLOCK_TAGS = frozenset({
    "br", "p", "div", "li", "ul", "ol", "tr", "td", "th", "table", "hr",
    "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "section",
})
_SKIPPED_TAGS = frozenset({"script", "style", "head", "title"})
_LEFTOVER_TAG = re.compile(r"</?[A-Za-z!?][^<>]*>")
_WHITESPACE = re.compile(r"\s+")


class _TextExtractor(HTMLParser):
    """Collects text data; block tags become spaces so words don't run together."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in _SKIPPED_TAGS:
            self.skipping += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs: Any) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


# Appointment statuses that end a booking (processing cancels a dated booking on them).
CANCELLED_APPOINTMENT_STATUSES = frozenset({"cancelled", "noshow", "entered-in-error"})


def is_cancelled_status(status: str | None) -> bool:
    return (status or "").strip().lower() in CANCELLED_APPOINTMENT_STATUSES


def html_to_text(value: object) -> str | None:
    """Plain text from Ocean's HTML fragments: tags stripped, entities unescaped,
    whitespace (including &nbsp;) collapsed. None when nothing is left."""
    if not isinstance(value, str):
        return None
    parser = _TextExtractor()
    try:
        parser.feed(value)
        parser.close()
        text = "".join(parser.parts)
    except Exception:  # HTMLParser is lenient, but never let markup break reading
        text = value
    # Double-encoded markup (&lt;b&gt;) comes out as tags: strip those too.
    text = _LEFTOVER_TAG.sub(" ", text)
    text = _WHITESPACE.sub(" ", text).strip()
    return text or None


def humanise_display(display: object) -> str | None:
    """``MENTAL_HEALTH_ASSESSMENT_AND_REFERRAL`` -> ``Mental health assessment and referral``.

    Only snake-case codes are rewritten; ordinary displays come back unchanged.
    """
    if not isinstance(display, str) or not display.strip():
        return None
    display = display.strip()
    if "_" not in display or " " in display:
        return display
    words = " ".join(display.replace("_", " ").split()).lower()
    return words[:1].upper() + words[1:] if words else None


# --- Dates ----------------------------------------------------------------------

# FHIR's date and dateTime as Ocean writes them (use fullmatch). Public: the referral page's form
# answers (referrals/templatetags/referral_labels.py) recognise dates by the same patterns.
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_PARTIAL_DATE = re.compile(r"\d{4}(-\d{2})?")
DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?")


# --- The lenient reader -----------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Entry:
    index: int
    full_url: str | None
    resource: dict
    type: str


class _Reader:
    """Typed access to JSON values that records a warning instead of raising."""

    def __init__(self) -> None:
        self.warnings: list[WarningText] = []

    def warn(self, template: str, **params: str) -> None:
        """Record a warning: an English template (a literal: every one is listed for translation
        in harbour.referrals.attention, tests/fhir/test_warning_texts.py checks) and the values of
        its ``%(name)s`` placeholders (paths, types, codes: never patient data)."""
        text = WarningText(template, **params)
        if text in self.warnings:
            return
        if len(self.warnings) < MAX_WARNINGS:
            self.warnings.append(text)
        elif len(self.warnings) == MAX_WARNINGS:
            self.warnings.append(WarningText("further warnings were left out"))

    # Shapes. ``where`` names the element in warnings (a path, never a value).

    def obj(self, value: object, where: str) -> dict | None:
        """An object; the first object of a list is accepted (with a warning)."""
        if value is None or isinstance(value, dict):
            return value
        if isinstance(value, list):
            self.warn("%(where)s should be an object, not a list", where=where)
            return next((v for v in value if isinstance(v, dict)), None)
        self.warn("%(where)s should be an object", where=where)
        return None

    def lst(self, value: object, where: str) -> list:
        """A list; a lone object counts as a one-item list (with a warning)."""
        if value is None:
            return []
        if isinstance(value, list):
            return value
        if isinstance(value, dict):
            self.warn("%(where)s should be a list, not an object", where=where)
            return [value]
        self.warn("%(where)s should be a list", where=where)
        return []

    def dicts(self, value: object, where: str) -> list[dict]:
        """The objects of a list, skipping (and reporting) anything else."""
        items = self.lst(value, where)
        if not all(isinstance(v, dict) for v in items):
            self.warn("%(where)s holds items that are not objects", where=where)
        return [v for v in items if isinstance(v, dict)]

    def one_or_many(self, value: object) -> list[dict]:
        """Objects from an element FHIR allows either as one object or a list (identifier)."""
        if isinstance(value, dict):
            return [value]
        if isinstance(value, list):
            return [v for v in value if isinstance(v, dict)]
        return []

    def text(self, value: object, where: str) -> str | None:
        """A non-empty stripped string; numbers are accepted as text (with a warning)."""
        if value is None:
            return None
        if isinstance(value, str):
            return value.strip() or None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            self.warn("%(where)s should be text, not a number", where=where)
            return str(value)
        self.warn("%(where)s should be text", where=where)
        return None

    def texts(self, value: object, where: str) -> tuple[str, ...]:
        """A list of strings; a lone string is accepted (with a warning)."""
        if isinstance(value, str):
            self.warn("%(where)s should be a list", where=where)
            value = [value]
        found = (self.text(v, where) for v in self.lst(value, where))
        return tuple(v for v in found if v)

    def boolean(self, value: object, where: str) -> bool | None:
        if value is None or isinstance(value, bool):
            return value
        self.warn("%(where)s should be true or false", where=where)
        return None

    def integer(self, value: object, where: str) -> int | None:
        """A FHIR integer: a whole number within 32 bits (R4), else None with a warning (a
        larger one would overflow the database column and JSON writers)."""
        if value is None:
            return None
        number = None
        if isinstance(value, bool):
            pass
        elif isinstance(value, int):
            number = value
        elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
            number = int(value)
        elif isinstance(value, str) and _DIGITS.fullmatch(value.strip()):  # not str.isdigit: '²' is one
            self.warn("%(where)s should be a number, not text", where=where)
            number = int(value.strip())
        if number is None:
            self.warn("%(where)s should be a whole number", where=where)
            return None
        if not FHIR_INTEGER_MIN <= number <= FHIR_INTEGER_MAX:
            self.warn("%(where)s is out of range", where=where)
            return None
        return number

    def datetime(self, value: object, where: str) -> datetime | None:
        """A FHIR dateTime/instant as an aware datetime; a bare date is midnight in Ontario."""
        raw = self.text(value, where)
        if raw is None:
            return None
        try:
            if DATE.fullmatch(raw):
                return datetime.combine(date.fromisoformat(raw), datetime.min.time(), ONTARIO_TZ)
            if DATETIME.fullmatch(raw):
                parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
                if parsed.tzinfo is None:
                    self.warn("%(where)s has no time zone; read as Ontario time", where=where)
                    parsed = parsed.replace(tzinfo=ONTARIO_TZ)
                return parsed
        except (ValueError, OverflowError):
            pass
        if _PARTIAL_DATE.fullmatch(raw):
            self.warn("%(where)s is only a partial date", where=where)
        else:
            self.warn("%(where)s is not a valid date and time", where=where)
        return None

    def date(self, value: object, where: str) -> date | None:
        raw = self.text(value, where)
        if raw is None:
            return None
        try:
            if DATE.fullmatch(raw):
                return date.fromisoformat(raw)
            if DATETIME.fullmatch(raw):  # a dateTime where a date belongs: keep the date
                self.warn("%(where)s should be a date, not a date and time", where=where)
                return date.fromisoformat(raw[:10])
        except ValueError:
            pass
        if _PARTIAL_DATE.fullmatch(raw):
            self.warn("%(where)s is only a partial date", where=where)
        else:
            self.warn("%(where)s is not a valid date", where=where)
        return None

    # Common FHIR datatypes.

    def identifier_value(self, identifiers: Iterable[dict], suffix: str, where: str) -> str | None:
        """Value of the first identifier whose system ends with ``suffix``."""
        for ident in identifiers:
            if has_suffix(ident.get("system"), suffix):
                value = self.text(ident.get("value"), f"{where}.identifier.value")
                if value:
                    return value
        return None

    def concept_codes(self, concept: dict | None, where: str) -> tuple[str, ...]:
        if not concept:
            return ()
        found = (self.text(c.get("code"), f"{where}.coding.code")
                 for c in self.dicts(concept.get("coding"), f"{where}.coding"))
        return tuple(c for c in found if c)

    def concept_label(self, concept: dict | None, where: str) -> str | None:
        """``text``, else the first coding's display, else its code."""
        if not concept:
            return None
        label = self.text(concept.get("text"), f"{where}.text")
        for coding in self.dicts(concept.get("coding"), f"{where}.coding"):
            label = label or self.text(coding.get("display"), f"{where}.coding.display")
            label = label or self.text(coding.get("code"), f"{where}.coding.code")
        return label

    def human_name(self, names: object, where: str) -> tuple[str | None, tuple[str, ...], str | None]:
        """(family, given, text) of the official name, else the first one."""
        candidates = self.dicts(names, where)
        name = next((n for n in candidates if n.get("use") == "official"), None)
        name = name or (candidates[0] if candidates else {})
        family = name.get("family")
        if isinstance(family, list):  # STU3-era senders
            family = " ".join(v for v in family if isinstance(v, str)) or None
        return (
            self.text(family, f"{where}.family"),
            self.texts(name.get("given"), f"{where}.given"),
            self.text(name.get("text"), f"{where}.text"),
        )

    def address(self, value: object, where: str) -> Address | None:
        """An address, or None when it is empty (Ocean sends use/type only)."""
        data = self.obj(value, where)
        if not data:
            return None
        address = Address(
            use=self.text(data.get("use"), f"{where}.use"),
            type=self.text(data.get("type"), f"{where}.type"),
            lines=self.texts(data.get("line"), f"{where}.line"),
            city=self.text(data.get("city"), f"{where}.city"),
            state=self.text(data.get("state"), f"{where}.state"),
            postal_code=self.text(data.get("postalCode"), f"{where}.postalCode"),
            country=self.text(data.get("country"), f"{where}.country"),
            text=self.text(data.get("text"), f"{where}.text"),
        )
        has_content = (address.lines, address.city, address.state, address.postal_code,
                       address.country, address.text)
        return address if any(has_content) else None

    def telecoms(self, value: object, where: str) -> tuple[Telecom, ...]:
        found = []
        for item in self.dicts(value, where):
            number = self.text(item.get("value"), f"{where}.value")
            if number:
                found.append(Telecom(
                    system=self.text(item.get("system"), f"{where}.system"),
                    value=number,
                    use=self.text(item.get("use"), f"{where}.use"),
                ))
        return tuple(found)

    def extension_value(self, extensions: object, suffix: str, where: str) -> object:
        """The ``value[x]`` of the first extension whose URL ends with ``suffix``."""
        for ext in self.dicts(extensions, f"{where}.extension"):
            if has_suffix(ext.get("url"), suffix):
                for key, value in ext.items():
                    if isinstance(key, str) and key.startswith("value"):
                        return value
        return None


def _first_telecom(telecoms: Iterable[Telecom], system: str) -> str | None:
    return next((t.value for t in telecoms if (t.system or "").lower() == system), None)


# --- Reference resolution (§4.3) ------------------------------------------------

_TYPE_ID_TAIL = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]*)?$")
_UUID_PREFIX = "urn:uuid:"


def _bare_uuid(value: str) -> str:
    """``urn:uuid:X`` and ``X`` share one key (rule 2)."""
    value = value.strip()
    if value.lower().startswith(_UUID_PREFIX):
        value = value[len(_UUID_PREFIX):]
    return value.lower()


class _Index:
    """Entries indexed by fullUrl, bare UUID and Type/id."""

    def __init__(self, entries: list[_Entry]) -> None:
        self.entries = entries
        self.by_full_url: dict[str, _Entry] = {}
        self.by_uuid: dict[str, _Entry] = {}
        self.by_type_id: dict[str, _Entry] = {}
        fallbacks: dict[str, _Entry] = {}
        for entry in entries:
            rid = entry.resource.get("id")
            if isinstance(rid, str) and rid.strip():
                self.by_type_id.setdefault(f"{entry.type}/{rid.strip()}", entry)
            if entry.full_url:
                self.by_full_url.setdefault(entry.full_url, entry)
                self.by_uuid.setdefault(_bare_uuid(entry.full_url), entry)
                tail = _TYPE_ID_TAIL.search(entry.full_url)
                if tail:  # a fullUrl ending in Type/id
                    self.by_type_id.setdefault(f"{tail.group(1)}/{tail.group(2)}", entry)
                elif entry.full_url.lower().startswith(_UUID_PREFIX) or "/" not in entry.full_url:
                    # v0.10 senders write Type/<uuid> for a urn:uuid:<uuid> entry.
                    fallbacks[f"{entry.type}/{_bare_uuid(entry.full_url)}"] = entry
        for key, entry in fallbacks.items():
            self.by_type_id.setdefault(key, entry)

    def by_reference(self, ref: str) -> _Entry | None:
        ref = ref.strip()
        found = self.by_full_url.get(ref) or self.by_uuid.get(_bare_uuid(ref))  # rules 1, 2
        if found:
            return found
        tail = _TYPE_ID_TAIL.search(ref)  # rule 3 (Type/id) and 4 (absolute URL's tail)
        if tail:
            key = f"{tail.group(1)}/{tail.group(2)}"
            return self.by_type_id.get(key) or self.by_type_id.get(f"{tail.group(1)}/{tail.group(2).lower()}")
        return None

    def by_identifier(self, system: object, value: str, rtype: str | None) -> _Entry | None:
        """Rule 5: the entry bearing that identifier (system compared by suffix)."""
        wanted_suffix = system_suffix(system).lower()
        for entry in self.entries:
            if rtype and entry.type != rtype:
                continue
            idents = entry.resource.get("identifier")
            idents = [idents] if isinstance(idents, dict) else idents
            if not isinstance(idents, list):
                continue
            for ident in idents:
                if not isinstance(ident, dict) or not isinstance(ident.get("value"), str):
                    continue
                if ident["value"].strip() != value:
                    continue
                if not wanted_suffix or system_suffix(ident.get("system")).lower() == wanted_suffix:
                    return entry
        return None


# --- Envelope -------------------------------------------------------------------

def check_envelope(obj: object) -> Envelope:
    """Fast check of an intake body. Raises ``EnvelopeError`` (and nothing else) when
    ``obj`` is not a message Bundle whose first entry is a MessageHeader."""
    try:
        return _check_envelope(obj)
    except EnvelopeError:
        raise
    except Exception as exc:  # defensive: the endpoint must only ever see EnvelopeError
        raise EnvelopeError("The body could not be read as a FHIR message bundle.") from exc


def _check_envelope(obj: object) -> Envelope:
    if not isinstance(obj, dict):
        raise EnvelopeError("The body is not a JSON object.")
    if obj.get("resourceType") != "Bundle":
        raise EnvelopeError('The body is not a FHIR Bundle: resourceType must be "Bundle".')
    if obj.get("type") != "message":
        raise EnvelopeError('The Bundle is not a message: type must be "message".')
    entries = obj.get("entry")
    if not isinstance(entries, list) or not entries:
        raise EnvelopeError("The Bundle has no entries.")
    first = entries[0]
    header = first.get("resource") if isinstance(first, dict) else None
    if not isinstance(header, dict) or header.get("resourceType") != "MessageHeader":
        raise EnvelopeError("The first entry of the Bundle is not a MessageHeader.")
    quiet = _Reader()
    ref = _header_referral_ref(quiet, header)
    if ref is None:  # older senders: the ServiceRequest carries it
        for entry in entries:
            res = entry.get("resource") if isinstance(entry, dict) else None
            if isinstance(res, dict) and res.get("resourceType") == "ServiceRequest":
                ref = quiet.identifier_value(quiet.one_or_many(res.get("identifier")),
                                             codes.ID_EREFERRAL_REFERENCE, "ServiceRequest")
                break
    return Envelope(
        bundle_id=quiet.text(obj.get("id"), "Bundle.id"),
        header_id=quiet.text(header.get("id"), "MessageHeader.id"),
        event_code=_event_code(quiet, header),
        referral_ref=ref,
    )


def _event_code(reader: _Reader, header: dict) -> str | None:
    coding = reader.obj(header.get("eventCoding"), "MessageHeader.eventCoding")
    return reader.text(coding.get("code"), "MessageHeader.eventCoding.code") if coding else None


def _header_referral_ref(reader: _Reader, header: dict) -> str | None:
    """v0.11.1 ``ext-referral-identifier`` (valueIdentifier), else v0.10 ``ext-id-message-header``."""
    where = "MessageHeader"
    ident = reader.extension_value(header.get("extension"), "ext-referral-identifier", where)
    if isinstance(ident, dict):
        value = reader.text(ident.get("value"), "MessageHeader referral identifier value")
        if value:
            return value
    elif ident is not None:
        reader.warn("MessageHeader referral identifier extension should hold an identifier")
    old = reader.extension_value(header.get("extension"), "ext-id-message-header", where)
    if isinstance(old, dict):  # lenient: an identifier where a string belongs
        old = old.get("value")
    return reader.text(old, "MessageHeader ext-id-message-header value")


# --- Whole message --------------------------------------------------------------

def read_message(obj: object, *, strict: bool = False) -> Message:
    """Read a message bundle leniently; never raises (unless ``strict``, for tests)."""
    try:
        return _MessageReader(obj).read()
    except Exception:
        if strict:
            raise
        return _fallback_message(obj)


def _fallback_message(obj: object) -> Message:
    """What is left when the reader itself failed: the envelope facts and a warning."""
    try:
        env = check_envelope(obj)
    except EnvelopeError:
        env = Envelope(None, None, None, None)
    return Message(
        bundle_id=env.bundle_id, timestamp=None, event_code=env.event_code,
        event=codes.canonical_event(env.event_code), payload_version=None,
        header_id=env.header_id, referral_ref=env.referral_ref, source_endpoint=None,
        destination_endpoint=None, header_reason=None, focus=(), service_request=None,
        patient=None, referrer=None, target=None, forms=(), attachments=(), appointments=(),
        tasks=(), communications=(),
        warnings=(WarningText("the bundle could not be read completely (internal reader error)"),),
    )


def _profile_version(profile: object) -> str | None:
    """``…-Patient|1.0.1`` (or ``%7C``-encoded) -> ``1.0.1``."""
    if not isinstance(profile, str):
        return None
    profile = re.sub("%7c", "|", profile, flags=re.IGNORECASE)
    if "|" not in profile:
        return None
    return profile.rsplit("|", 1)[1].strip() or None


class _MessageReader(_Reader):
    def __init__(self, bundle: object) -> None:
        super().__init__()
        if not isinstance(bundle, dict):
            self.warn("the body is not a JSON object")
            bundle = {}
        self.bundle: dict = bundle
        self.entries = self._entries()
        self.index = _Index(self.entries)

    # Entries and references.

    def _entries(self) -> list[_Entry]:
        found = []
        for i, entry in enumerate(self.lst(self.bundle.get("entry"), "Bundle.entry")):
            where = f"Bundle.entry[{i}]"
            if not isinstance(entry, dict):
                self.warn("%(where)s is not an object", where=where)
                continue
            resource = self.obj(entry.get("resource"), f"{where}.resource")
            if not resource:
                self.warn("%(where)s has no resource", where=where)
                continue
            rtype = self.text(resource.get("resourceType"), f"{where}.resource.resourceType")
            if not rtype:
                self.warn("%(where)s resource has no resourceType", where=where)
                continue
            found.append(_Entry(i, self.text(entry.get("fullUrl"), f"{where}.fullUrl"), resource, rtype))
        return found

    def of_type(self, rtype: str) -> list[dict]:
        return [e.resource for e in self.entries if e.type == rtype]

    def resolve(self, value: object, where: str, expected: Iterable[str] = (), *,
                quiet: bool = False) -> tuple[str, dict] | None:
        """Resolve a Reference to (resourceType, resource) per §4.3, else None + a warning."""
        ref = self.obj(value, where)
        if not ref:
            return None
        text = self.text(ref.get("reference"), f"{where}.reference")
        ident = self.obj(ref.get("identifier"), f"{where}.identifier")
        ident_value = self.text(ident.get("value"), f"{where}.identifier.value") if ident else None
        if not text and not ident_value:
            return None  # display-only reference: nothing to resolve
        entry = self.index.by_reference(text) if text else None
        if entry is None and ident_value:
            rtype = ref.get("type") if isinstance(ref.get("type"), str) else None
            entry = self.index.by_identifier(ident.get("system"), ident_value, rtype)
        if entry is None:
            if not quiet:
                self.warn("%(where)s does not match any entry in the bundle", where=where)
            return None
        expected = tuple(expected)
        if expected and entry.type not in expected:
            if len(expected) == 1:
                self.warn("%(where)s points to a %(found)s, expected %(expected)s",
                          where=where, found=entry.type, expected=expected[0])
            else:
                self.warn("%(where)s points to a %(found)s, expected one of %(expected)s",
                          where=where, found=entry.type, expected=", ".join(expected))
            return None
        return entry.type, entry.resource

    def resolve_resource(self, value: object, where: str, rtype: str, **kw: Any) -> dict | None:
        found = self.resolve(value, where, (rtype,), **kw)
        return found[1] if found else None

    def reference_key(self, value: object, where: str) -> str | None:
        """A stable key for a Reference to another request or message: its identifier
        value, else the resolved resource's identifier, else the raw reference."""
        ref = self.obj(value, where)
        if not ref:
            return None
        ident = self.obj(ref.get("identifier"), f"{where}.identifier")
        if ident and self.text(ident.get("value"), f"{where}.identifier.value"):
            return self.text(ident.get("value"), f"{where}.identifier.value")
        found = self.resolve(ref, where, quiet=True)
        if found:
            idents = self.one_or_many(found[1].get("identifier"))
            key = (self.identifier_value(idents, codes.ID_EREFERRAL_REFERENCE, found[0])
                   or next((v for i in idents if (v := self.text(i.get("value"), where))), None))
            if key:
                return key
        return self.text(ref.get("reference"), f"{where}.reference")

    def reference_keys(self, value: object, where: str) -> tuple[str, ...]:
        keys = (self.reference_key(v, where) for v in self.lst(value, where))
        return tuple(k for k in keys if k)

    # The message.

    def read(self) -> Message:
        header = self._header()
        event_code = _event_code(self, header)
        event = codes.canonical_event(event_code)
        if event_code is None:
            self.warn("the MessageHeader has no event code")
        elif event is None:
            self.warn("unknown event code %(code)s", code=repr(event_code[:80]))
        version = self._payload_version(header, event_code)
        focus = self._focus(header)
        service_request = self._focus_service_request(focus)
        referral_ref = self._referral_ref(header, service_request, version)
        source = self.obj(header.get("source"), "MessageHeader.source") or {}
        destination = (self.dicts(header.get("destination"), "MessageHeader.destination") or [{}])[0]
        target = self._target(service_request, destination)
        return Message(
            bundle_id=self.text(self.bundle.get("id"), "Bundle.id"),
            timestamp=self.datetime(self.bundle.get("timestamp"), "Bundle.timestamp"),
            event_code=event_code,
            event=event,
            payload_version=version,
            header_id=self.text(header.get("id"), "MessageHeader.id"),
            referral_ref=referral_ref,
            source_endpoint=self.text(source.get("endpoint"), "MessageHeader.source.endpoint"),
            destination_endpoint=self.text(destination.get("endpoint"), "MessageHeader.destination.endpoint"),
            header_reason=self.concept_label(self.obj(header.get("reason"), "MessageHeader.reason"),
                                             "MessageHeader.reason"),
            focus=tuple(rtype for rtype, _ in focus),
            service_request=self._referral(service_request, target),
            patient=self._patient(service_request),
            referrer=self._referrer(service_request, header),
            target=target,
            forms=tuple(self._form(qr) for qr in self.of_type("QuestionnaireResponse")),
            attachments=tuple(a for d in self.of_type("DocumentReference") for a in self._attachments(d)),
            appointments=tuple(self._appointment(a) for a in self.of_type("Appointment")),
            tasks=tuple(self._task(t) for t in self.of_type("Task")),
            communications=tuple(self._communication(c) for c in self.of_type("Communication")),
            warnings=tuple(self.warnings),
        )

    def _header(self) -> dict:
        if self.entries and self.entries[0].type == "MessageHeader":
            return self.entries[0].resource
        headers = self.of_type("MessageHeader")
        if headers:
            self.warn("the first entry is not a MessageHeader")
        else:
            self.warn("the bundle has no MessageHeader")
        return headers[0] if headers else {}

    def _payload_version(self, header: dict, event_code: str | None) -> str | None:
        """v0.11.1 bumps four profiles to |1.0.1; otherwise use weaker clues."""
        seen: set[str] = set()
        for entry in self.entries:
            if entry.type not in codes.V0_11_1_BUMPED_TYPES:
                continue
            meta = entry.resource.get("meta")
            profiles = meta.get("profile") if isinstance(meta, dict) else None
            for profile in profiles if isinstance(profiles, list) else [profiles]:
                version = _profile_version(profile)
                if version:
                    seen.add(version)
        if "1.0.1" in seen:
            return codes.PAYLOAD_V0_11_1
        if "1.0.0" in seen:
            return codes.PAYLOAD_V0_10_0
        quiet = _Reader()
        if quiet.extension_value(header.get("extension"), "ext-referral-identifier", "") is not None:
            return codes.PAYLOAD_V0_11_1
        if codes.is_old_event_spelling(event_code):
            return codes.PAYLOAD_V0_10_0
        if quiet.extension_value(header.get("extension"), "ext-id-message-header", "") is not None:
            return codes.PAYLOAD_V0_10_0
        return None

    def _focus(self, header: dict) -> list[tuple[str, dict]]:
        found = []
        for i, ref in enumerate(self.lst(header.get("focus"), "MessageHeader.focus")):
            resolved = self.resolve(ref, f"MessageHeader.focus[{i}]")
            if resolved:
                found.append(resolved)
        if not found:
            self.warn("the MessageHeader focus does not resolve to any resource")
        return found

    def _focus_service_request(self, focus: list[tuple[str, dict]]) -> dict | None:
        """Focus ServiceRequest, else one a focus Task/Appointment/Communication is based on,
        else the bundle's first ServiceRequest."""
        for rtype, resource in focus:
            if rtype == "ServiceRequest":
                return resource
        for rtype, resource in focus:
            for ref in self.lst(resource.get("basedOn"), f"{rtype}.basedOn"):
                found = self.resolve_resource(ref, f"{rtype}.basedOn", "ServiceRequest")
                if found:
                    return found
        requests = self.of_type("ServiceRequest")
        if not requests:
            self.warn("the bundle has no ServiceRequest")
            return None
        if focus:
            self.warn("no focus resource leads to a ServiceRequest; the bundle's first one was used")
        return requests[0]

    def _referral_ref(self, header: dict, request: dict | None, version: str | None) -> str | None:
        from_header = _header_referral_ref(self, header)
        idents = self.one_or_many(request.get("identifier")) if request else []
        from_request = self.identifier_value(idents, codes.ID_EREFERRAL_REFERENCE, "ServiceRequest")
        if from_header and from_request and from_header != from_request:
            self.warn("the referral ref in the MessageHeader differs from the ServiceRequest identifier")
        ref = from_header or from_request
        if ref is None and request is not None:
            ref = self.text(request.get("id"), "ServiceRequest.id")
            if ref and version != codes.PAYLOAD_V0_10_0:
                self.warn("the referral ref was taken from ServiceRequest.id")
        if ref is None:
            self.warn("the message carries no referral ref")
        return ref

    # ServiceRequest.

    def _referral(self, request: dict | None, target: TargetListing | None) -> Referral | None:
        if request is None:
            return None
        w = "ServiceRequest"
        idents = self.one_or_many(request.get("identifier"))
        category = (self.dicts(request.get("category"), f"{w}.category") or [None])[0]
        code, display = self._category(category)
        specialties = tuple(c for concept in self.dicts(request.get("performerType"), f"{w}.performerType")
                            for c in self.concept_codes(concept, f"{w}.performerType"))
        if isinstance(request.get("performerType"), dict):  # R4 has one performerType
            specialties = self.concept_codes(request["performerType"], f"{w}.performerType")
        return Referral(
            ref=(self.identifier_value(idents, codes.ID_EREFERRAL_REFERENCE, w)
                 or self.text(request.get("id"), f"{w}.id")),
            status=self.text(request.get("status"), f"{w}.status"),
            intent=self.text(request.get("intent"), f"{w}.intent"),
            priority=self.text(request.get("priority"), f"{w}.priority"),
            category_code=code,
            category_display=display,
            category_label=humanise_display(display),
            specialties=specialties or (target.specialties if target else ()),
            authored_on=self.datetime(request.get("authoredOn"), f"{w}.authoredOn"),
            reason_text=self._reason_text(request),
            replaces=self.reference_keys(request.get("replaces"), f"{w}.replaces"),
            based_on=self.reference_keys(request.get("basedOn"), f"{w}.basedOn"),
        )

    def _category(self, concept: dict | None) -> tuple[str | None, str | None]:
        """(code, display) of the category, preferring a coding that has a code."""
        if not concept:
            return None, None
        where = "ServiceRequest.category"
        for coding in self.dicts(concept.get("coding"), f"{where}.coding"):
            code = self.text(coding.get("code"), f"{where}.coding.code")
            if code:
                return code, self.text(coding.get("display"), f"{where}.coding.display") or \
                    self.text(concept.get("text"), f"{where}.text")
        return None, self.text(concept.get("text"), f"{where}.text")

    def _reason_text(self, request: dict) -> str | None:
        """Plain text of the HTML notes, else of reasonCode.text."""
        notes = [html_to_text(self.text(n.get("text"), "ServiceRequest.note.text"))
                 for n in self.dicts(request.get("note"), "ServiceRequest.note")]
        notes = [n for n in notes if n]
        if notes:
            return "\n".join(notes)
        reasons = [html_to_text(self.concept_label(c, "ServiceRequest.reasonCode"))
                   for c in self.dicts(request.get("reasonCode"), "ServiceRequest.reasonCode")]
        reasons = [r for r in reasons if r]
        return "\n".join(reasons) or None

    # Patient.

    def _patient(self, request: dict | None) -> Patient | None:
        resource = None
        if request is not None and request.get("subject") is not None:
            resource = self.resolve_resource(request.get("subject"), "ServiceRequest.subject", "Patient")
        if resource is None:
            patients = self.of_type("Patient")
            if not patients:
                self.warn("the bundle has no Patient")
                return None
            if request is not None and request.get("subject") is None:
                self.warn("the ServiceRequest has no subject; the bundle's first Patient was used")
            resource = patients[0]
        w = "Patient"
        family, given, name_text = self.human_name(resource.get("name"), f"{w}.name")
        if not (family or given or name_text):
            self.warn("the patient has no name")
        elif not given:
            self.warn("the patient has no given name")
        if resource.get("birthDate") is None:
            self.warn("the patient has no birth date")
        identifiers = self.dicts(resource.get("identifier"), f"{w}.identifier")
        hcn_ident = self._hcn_identifier(identifiers)
        mrn_ident = next((i for i in identifiers if has_suffix(i.get("system"), codes.ID_EXTERNAL_PATIENT_REFERENCE)),
                         None) or next((i for i in identifiers if self._has_type(i, "MR")), None)
        addresses = (self.address(a, f"{w}.address") for a in self.lst(resource.get("address"), f"{w}.address"))
        return Patient(
            family=family,
            given=given,
            name_text=name_text,
            gender=self.text(resource.get("gender"), f"{w}.gender"),
            birth_date=self.date(resource.get("birthDate"), f"{w}.birthDate"),
            hcn=self._hcn(hcn_ident),
            hcn_version=self._hcn_version(hcn_ident, resource),
            has_hcn_identifier=hcn_ident is not None,
            mrn=self.text(mrn_ident.get("value"), f"{w}.identifier.value") if mrn_ident else None,
            telecom=self.telecoms(resource.get("telecom"), f"{w}.telecom"),
            addresses=tuple(a for a in addresses if a),
            deceased=self._deceased(resource),
        )

    def _has_type(self, identifier: dict, code: str) -> bool:
        concept = identifier.get("type")
        return isinstance(concept, dict) and code in self.concept_codes(concept, "identifier.type")

    def _hcn_identifier(self, identifiers: list[dict]) -> dict | None:
        by_system = next((i for i in identifiers if has_suffix(i.get("system"), codes.CA_ON_PATIENT_HCN)), None)
        return by_system or next((i for i in identifiers if self._has_type(i, "JHN")), None)

    def _hcn(self, identifier: dict | None) -> str | None:
        """Digits only; Ocean often sends the identifier without a value."""
        if identifier is None:
            self.warn("the patient has no health card identifier")
            return None
        value = self.text(identifier.get("value"), "Patient health card identifier value")
        if value is None:
            self.warn("health card identifier has no value")
            return None
        digits = re.sub(r"\D", "", value)
        if not digits:
            self.warn("health card identifier has no digits")
            return None
        if len(digits) != 10:
            self.warn("health card number is not 10 digits long")
        return digits

    def _hcn_version(self, identifier: dict | None, patient: dict) -> str | None:
        """Version code from the identifier's extension, else the Patient's (§7 #17)."""
        suffix = "ext-id-health-card-version-code"
        value = self.extension_value(identifier.get("extension"), suffix, "Patient health card identifier") \
            if identifier else None
        if value is None:
            value = self.extension_value(patient.get("extension"), suffix, "Patient")
        value = self.text(value, "Patient health card version code")
        return value.upper() if value else None

    def _deceased(self, patient: dict) -> bool | None:
        if "deceasedBoolean" in patient:
            return self.boolean(patient.get("deceasedBoolean"), "Patient.deceasedBoolean")
        if patient.get("deceasedDateTime") is not None:
            return True
        return None

    # Practitioners.

    def _practitioner_name(self, practitioner: dict | None, where: str) -> tuple[str | None, str | None, tuple]:
        if not practitioner:
            return None, None, ()
        family, given, text = self.human_name(practitioner.get("name"), f"{where}.name")
        composed = " ".join([*given, family or ""]).strip()
        return (text or composed or None), family, given

    def _role_parts(self, role: dict, where: str) -> tuple[dict | None, dict | None, dict | None]:
        """(Practitioner, Location, Organization) of a PractitionerRole."""
        practitioner = self.resolve_resource(role.get("practitioner"), f"{where}.practitioner", "Practitioner")
        locations = self.lst(role.get("location"), f"{where}.location")
        location = self.resolve_resource(locations[0], f"{where}.location", "Location") if locations else None
        organization = self.resolve_resource(role.get("organization"), f"{where}.organization", "Organization")
        if organization is None and location is not None:
            organization = self.resolve_resource(location.get("managingOrganization"),
                                                 "Location.managingOrganization", "Organization")
        return practitioner, location, organization

    def _referrer(self, request: dict | None, header: dict) -> Referrer | None:
        kinds = ("PractitionerRole", "Practitioner", "Organization")
        found = self.resolve(request.get("requester"), "ServiceRequest.requester", kinds) if request else None
        found = found or self.resolve(header.get("author"), "MessageHeader.author", kinds)
        found = found or self.resolve(header.get("sender"), "MessageHeader.sender", kinds)
        if not found:
            self.warn("no referrer could be found")
            return None
        rtype, resource = found
        role = resource if rtype == "PractitionerRole" else {}
        practitioner = resource if rtype == "Practitioner" else None
        organization = resource if rtype == "Organization" else None
        location = None
        if role:
            practitioner, location, organization = self._role_parts(role, "Referrer PractitionerRole")
        name, family, given = self._practitioner_name(practitioner, "Practitioner")
        telecom = (self.telecoms(role.get("telecom"), "PractitionerRole.telecom")
                   + (self.telecoms(location.get("telecom"), "Location.telecom") if location else ())
                   + (self.telecoms(practitioner.get("telecom"), "Practitioner.telecom") if practitioner else ())
                   + (self.telecoms(organization.get("telecom"), "Organization.telecom") if organization else ()))
        idents = (self.dicts(practitioner.get("identifier"), "Practitioner.identifier") if practitioner else []) \
            + self.dicts(role.get("identifier"), "PractitionerRole.identifier")
        role_codes = [c for concept in self.dicts(role.get("code"), "PractitionerRole.code")
                      for c in self.concept_codes(concept, "PractitionerRole.code")]
        return Referrer(
            name=name,
            family=family,
            given=given,
            cpso=self.identifier_value(idents, codes.CA_ON_LICENSE_PHYSICIAN, "Practitioner"),
            ohip_billing_number=self.identifier_value(idents, codes.CA_ON_OHIP_BILLING_ID, "Practitioner"),
            ocean_username=self.identifier_value(idents, codes.ID_PRACTITIONER_USERNAME, "Practitioner"),
            role_code=role_codes[0] if role_codes else None,
            location_name=self.text(location.get("name"), "Location.name") if location else None,
            location_address=self.address(location.get("address"), "Location.address") if location else None,
            phone=_first_telecom(telecom, "phone"),
            fax=_first_telecom(telecom, "fax"),
            email=_first_telecom(telecom, "email"),
            organization_name=self.text(organization.get("name"), "Organization.name") if organization else None,
        )

    def _target(self, request: dict | None, destination: dict) -> TargetListing | None:
        """The listing: ServiceRequest.performer, else MessageHeader.destination[0].receiver."""
        refs = [(r, "ServiceRequest.performer")
                for r in (self.lst(request.get("performer"), "ServiceRequest.performer") if request else [])[:1]]
        refs.append((destination.get("receiver"), "MessageHeader.destination.receiver"))
        role, ref_idents = None, []
        for ref, where in refs:
            if ref is None:
                continue
            if isinstance(ref, dict) and isinstance(ref.get("identifier"), dict):
                ref_idents.append(ref["identifier"])
            role = self.resolve_resource(ref, where, "PractitionerRole")
            if role:
                break
        name = self.text(destination.get("name"), "MessageHeader.destination.name")
        if role is None and not ref_idents and name is None:
            self.warn("no referral target could be found")
            return None
        w = "Target PractitionerRole"
        idents = (self.dicts(role.get("identifier"), f"{w}.identifier") if role else []) + ref_idents
        locations = self.lst(role.get("location"), f"{w}.location") if role else []
        location = self.resolve_resource(locations[0], f"{w}.location", "Location") if locations else None
        specialties = [c for concept in (self.dicts(role.get("specialty"), f"{w}.specialty") if role else [])
                       for c in self.concept_codes(concept, f"{w}.specialty")]
        telecom = (self.telecoms(role.get("telecom"), f"{w}.telecom") if role else ()) + \
            (self.telecoms(location.get("telecom"), "Location.telecom") if location else ())
        return TargetListing(
            reference=self.identifier_value(idents, codes.ID_REFERRAL_TARGET_REFERENCE, w),
            site_number=self.identifier_value(idents, codes.ID_SITE_NUMBER, w),
            external_service_id=self.identifier_value(idents, codes.ID_REFERRAL_TARGET_EXTERNAL_SERVICE, w),
            name=name,
            specialties=tuple(dict.fromkeys(specialties)),
            location_name=self.text(location.get("name"), "Location.name") if location else None,
            location_address=self.address(location.get("address"), "Location.address") if location else None,
            phone=_first_telecom(telecom, "phone"),
            fax=_first_telecom(telecom, "fax"),
        )

    # Form, documents, appointments, tasks, messages.

    def _form(self, response: dict) -> Form:
        w = "QuestionnaireResponse"
        idents = self.one_or_many(response.get("identifier"))
        reference = self.identifier_value(idents, codes.ID_FORM_REFERENCE, w) or \
            next((v for i in idents if (v := self.text(i.get("value"), f"{w}.identifier.value"))), None)
        if reference is None and isinstance(response.get("questionnaire"), str):
            reference = system_suffix(response["questionnaire"]) or None
        items: list[FormItem] = []
        self._form_items(response.get("item"), f"{w}.item", items, depth=0)
        return Form(
            reference=reference,
            status=self.text(response.get("status"), f"{w}.status"),
            authored=self.datetime(response.get("authored"), f"{w}.authored"),
            items=tuple(items),
        )

    def _form_items(self, value: object, where: str, out: list[FormItem], depth: int) -> None:
        """Flatten items (and nested items) in document order."""
        if depth > MAX_FORM_DEPTH:
            self.warn("form items are nested too deeply; the deepest were left out")
            return
        for item in self.dicts(value, where):
            visibility = self.extension_value(item.get("extension"), codes.EXT_OCEAN_EFORM_ITEM_VISIBILITY, where)
            answers = self.dicts(item.get("answer"), f"{where}.answer")
            out.append(FormItem(
                link_id=self.text(item.get("linkId"), f"{where}.linkId"),
                text=self.text(item.get("text"), f"{where}.text"),
                answers=tuple(a for a in (self._answer(a, f"{where}.answer") for a in answers) if a),
                hidden=isinstance(visibility, str) and visibility.strip().lower() == "hidden",
            ))
            self._form_items(item.get("item"), f"{where}.item", out, depth + 1)
            for answer in answers:
                self._form_items(answer.get("item"), f"{where}.answer.item", out, depth + 1)

    def _answer(self, answer: dict, where: str) -> str | None:
        """An answer as display text, whatever its value[x] type."""
        for key, value in answer.items():
            if not isinstance(key, str) or not key.startswith("value"):
                continue
            if isinstance(value, bool):
                return "true" if value else "false"
            if isinstance(value, (str, int, float)):
                return self.text(value, where) if isinstance(value, str) else str(value)
            if isinstance(value, dict):
                if key == "valueCoding":
                    return self.text(value.get("display"), where) or self.text(value.get("code"), where)
                if key == "valueQuantity":
                    parts = [value.get("value"), value.get("unit") or value.get("code")]
                    return " ".join(str(p) for p in parts if isinstance(p, (str, int, float))) or None
                if key == "valueAttachment":
                    return self.text(value.get("title"), where) or self.text(value.get("url"), where)
                if key == "valueReference":
                    return self.text(value.get("display"), where) or self.text(value.get("reference"), where)
            self.warn("%(where)s has a value Harbour cannot show", where=where)
        return None

    def _attachments(self, document: dict) -> list[Attachment]:
        w = "DocumentReference"
        idents = self.one_or_many(document.get("identifier"))
        letter_ref = self.identifier_value(idents, codes.ID_EREFERRAL_REFERENCE, w)
        identifier = letter_ref or self.identifier_value(idents, codes.ID_ATTACHMENT_REFERENCE, w) or \
            next((v for i in idents if (v := self.text(i.get("value"), f"{w}.identifier.value"))), None)
        found = []
        for index, content in enumerate(self.dicts(document.get("content"), f"{w}.content")):
            data = self.obj(content.get("attachment"), f"{w}.content.attachment") or {}
            url = self.text(data.get("url"), f"{w}.content.attachment.url")
            is_letter = letter_ref is not None or (
                url is not None and unquote(url.split("?", 1)[0]).rstrip("/").endswith("$letter"))
            found.append(Attachment(
                kind="letter" if is_letter else "attachment",
                identifier=identifier,
                url=url,
                title=self.text(data.get("title"), f"{w}.content.attachment.title"),
                content_type=self.text(data.get("contentType"), f"{w}.content.attachment.contentType"),
                size=self.integer(data.get("size"), f"{w}.content.attachment.size"),
                creation=self.datetime(data.get("creation"), f"{w}.content.attachment.creation")
                or self.datetime(document.get("date"), f"{w}.date"),
                status=self.text(document.get("status"), f"{w}.status"),
                content_index=index,
            ))
        if not found:
            self.warn("a DocumentReference has no attachment")
        return found

    def _appointment(self, appointment: dict) -> Appointment:
        w = "Appointment"
        status = self.text(appointment.get("status"), f"{w}.status")
        participant_status = None
        for p in self.dicts(appointment.get("participant"), f"{w}.participant"):
            if self._is_patient_actor(p.get("actor")):
                participant_status = self.text(p.get("status"), f"{w}.participant.status")
                break
        start = self.datetime(appointment.get("start"), f"{w}.start")
        return Appointment(
            status=status,
            start=start,
            end=self.datetime(appointment.get("end"), f"{w}.end"),
            minutes_duration=self.integer(appointment.get("minutesDuration"), f"{w}.minutesDuration"),
            participant_status=participant_status,
            patient_instruction=self.text(appointment.get("patientInstruction"), f"{w}.patientInstruction"),
            appointment_type=self.concept_label(self.obj(appointment.get("appointmentType"),
                                                         f"{w}.appointmentType"), f"{w}.appointmentType"),
            is_cancellation_signal=start is None or is_cancelled_status(status),
        )

    def _is_patient_actor(self, actor: object) -> bool:
        if not isinstance(actor, dict):
            return False
        found = self.resolve(actor, "Appointment.participant.actor", quiet=True)
        if found:
            return found[0] == "Patient"
        ref = actor.get("reference")
        return actor.get("type") == "Patient" or (isinstance(ref, str) and ref.startswith("Patient/"))

    def _task(self, task: dict) -> Task:
        w = "Task"
        code = self.obj(task.get("code"), f"{w}.code")
        codes_found = self.concept_codes(code, f"{w}.code")
        return Task(
            status=self.text(task.get("status"), f"{w}.status"),
            intent=self.text(task.get("intent"), f"{w}.intent"),
            code=codes_found[0] if codes_found else (self.text(code.get("text"), f"{w}.code.text") if code else None),
            status_reason=self.concept_label(self.obj(task.get("statusReason"), f"{w}.statusReason"),
                                             f"{w}.statusReason"),
            business_status=self.concept_label(self.obj(task.get("businessStatus"), f"{w}.businessStatus"),
                                               f"{w}.businessStatus"),
            description=self.text(task.get("description"), f"{w}.description"),
            authored_on=self.datetime(task.get("authoredOn"), f"{w}.authoredOn"),
            last_modified=self.datetime(task.get("lastModified"), f"{w}.lastModified"),
        )

    def _communication(self, message: dict) -> Communication:
        w = "Communication"
        idents = self.one_or_many(message.get("identifier"))
        texts, titles, urls = [], [], []
        for payload in self.dicts(message.get("payload"), f"{w}.payload"):
            content = self.text(payload.get("contentString"), f"{w}.payload.contentString")
            if content:
                texts.append(content)
            attachment = self.obj(payload.get("contentAttachment"), f"{w}.payload.contentAttachment")
            if attachment:
                title = self.text(attachment.get("title"), f"{w}.payload.contentAttachment.title")
                url = self.text(attachment.get("url"), f"{w}.payload.contentAttachment.url")
                titles += [title] if title else []
                urls += [url] if url else []
        return Communication(
            identifier=next((v for i in idents if (v := self.text(i.get("value"), f"{w}.identifier.value"))), None),
            status=self.text(message.get("status"), f"{w}.status"),
            sent=self.datetime(message.get("sent"), f"{w}.sent"),
            payload_texts=tuple(texts),
            attachment_titles=tuple(titles),
            attachment_urls=tuple(urls),
            sender=self._display(message.get("sender"), f"{w}.sender"),
            in_response_to=self.reference_keys(message.get("inResponseTo"), f"{w}.inResponseTo"),
        )

    def _display(self, value: object, where: str) -> str | None:
        """A person's or organisation's name for a Reference (its display, else the resource)."""
        ref = self.obj(value, where)
        if not ref:
            return None
        display = self.text(ref.get("display"), f"{where}.display")
        found = None if display else self.resolve(ref, where)
        if not found:
            return display
        rtype, resource = found
        if rtype == "PractitionerRole":
            practitioner, _, organization = self._role_parts(resource, where)
            name = self._practitioner_name(practitioner, "Practitioner")[0]
            return name or (self.text(organization.get("name"), "Organization.name") if organization else None)
        if rtype in ("Practitioner", "Patient", "RelatedPerson"):
            return self._practitioner_name(resource, rtype)[0]
        return self.text(resource.get("name"), f"{rtype}.name")
