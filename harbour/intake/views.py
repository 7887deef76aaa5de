"""POST /public/ocean/fhir_bundles: where Ocean delivers a clinic's eReferral messages (contract §2.1).

Order of checks, each answered with an OperationOutcome (application/fhir+json):
405 not POST; 429 caller blocked; 401 key missing or wrong; 413 too large; 415 not a JSON
content type, or a Content-Encoding other than identity (Ocean sends plain JSON); 400 a body
that could not be read whole (broken chunked encoding, connection ended early, shorter than
its Content-Length), empty, not UTF-8, not JSON, or not a message Bundle with a MessageHeader
first; 200 once the raw bytes are committed (duplicates included); 503 when the database
fails, so Ocean retries. The body is never read before the key is checked (by the lookup,
or on an earlier call when the key is remembered: lookup.py; the INSERT checks key, host and
block again either way), and never parsed beyond the envelope: the worker (jobs.py) does the rest.
"""
import hmac
import logging
import re
import time

from django.conf import settings
from django.db import DatabaseError, InterfaceError
from django.db.models import F
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from harbour.clinics.models import OceanSettings, domain_of_host, hash_inbound_key
from harbour.core import logging as log_context
from harbour.fhir.codes import EVENT_ALIASES
from harbour.fhir.parse import too_large as too_large_text
from harbour.fhir.read import EnvelopeError, check_envelope
from harbour.intake import lookup, ratelimit
from harbour.intake.body import BodyIncomplete, BodyNotJSON, BodyTooLarge, declared_length, parse_json, read_body
from harbour.intake.outcome import outcome_response
from harbour.intake.store import Guard, own_transaction, store_message

log = logging.getLogger("harbour.intake")

KEY_HEADER = OceanSettings.INBOUND_KEY_HEADER
_KEY_META = "HTTP_" + KEY_HEADER.upper().replace("-", "_")
DEFAULT_MAX_BUNDLE_BYTES = 25 * 1024 * 1024
RETRY_AFTER_SECONDS = 60
JSON_TYPES = frozenset({"application/json", "application/fhir+json", "application/json+fhir", "text/json"})
IDENTITY_ENCODINGS = frozenset({"", "identity"})
# A FHIR id (R4 datatype id): anything else a sender puts in MessageHeader.id is not logged.
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


class _Call:
    """What the log line says about one call: ids and codes only."""

    clinic_id = None
    event_code = None
    header_id = None
    message_id = None
    reason = ""


def _event_for_log(code) -> str:
    """The event code as Harbour's catalogue spells it, or "unrecognised": a sender's free text
    (a name, a health card number) never reaches the log."""
    if not code:
        return "-"
    known = code.strip().lower() if isinstance(code, str) else None
    return known if known in EVENT_ALIASES else "unrecognised"


def _id_for_log(value) -> str:
    """A FHIR id as it is, else "invalid" (never the sender's text)."""
    if not value:
        return "-"
    return value if isinstance(value, str) and _FHIR_ID.fullmatch(value) else "invalid"


@csrf_exempt
def fhir_bundles(request):
    started = time.perf_counter()
    call = _Call()
    try:
        response = _receive(request, call)
    except (DatabaseError, InterfaceError) as exc:
        call.reason = f"database-{type(exc).__name__}"
        response = outcome_response(
            503,
            "transient",
            "The message could not be stored right now and was not kept; please retry.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    except Exception as exc:  # a bug: answer in FHIR, keep nothing, let Ocean retry
        log.exception("intake failed unexpectedly")
        call.reason = f"error-{type(exc).__name__}"
        response = outcome_response(500, "exception", "The message could not be handled and was not kept.")
    # One line per call: the access line, naming the key's clinic and what the intake made of it.
    log_context.bind(clinic_id=call.clinic_id)
    details = {
        "event": _event_for_log(call.event_code),
        "inbound_message": call.message_id or "-",
        "header_id": _id_for_log(call.header_id),
        "reason": call.reason or "-",
    }
    if not log_context.describe(**details):  # no request context (the view called on its own)
        log.info(
            "inbound status=%s clinic=%s ms=%.1f%s", response.status_code, call.clinic_id or "-",
            (time.perf_counter() - started) * 1000, log_context.details_text(details),
        )
    return response


def _receive(request, call: _Call):
    if request.method != "POST":
        call.reason = "method"
        return outcome_response(
            405, "not-supported", "Only POST is accepted here: Ocean posts FHIR message bundles.", headers={"Allow": "POST"}
        )

    now = timezone.now()
    address = ratelimit.client_address(request)
    raw_key = request.META.get(_KEY_META, "").strip()
    key_hash = hash_inbound_key(raw_key) if raw_key else None
    domain = _host_domain(request)
    throttle_key = ratelimit.throttle_key(address, domain)

    # A key that passed lately goes straight on: the INSERT checks it again (lookup.py).
    clinic_id = lookup.remembered(key_hash, domain) if key_hash else None
    if clinic_id is None:
        clinic_id = _authenticate(request, call, raw_key, key_hash, domain, throttle_key, now)
        if not isinstance(clinic_id, int):
            return clinic_id
    call.clinic_id = clinic_id
    rejected = _check_and_read(request, call)
    if not isinstance(rejected, bytes):
        _note_rejection(clinic_id, rejected.status_code, now, None)
        return rejected
    raw = rejected

    try:
        envelope = check_envelope(parse_json(raw))
    except BodyNotJSON as exc:
        call.reason = "not-json"
        _note_rejection(clinic_id, 400, now, None)
        return outcome_response(400, "invalid", exc.message)
    except EnvelopeError as exc:
        call.reason = "not-a-message"
        _note_rejection(clinic_id, 400, now, None)
        return outcome_response(400, "structure", exc.message)
    call.event_code, call.header_id = envelope.event_code, envelope.header_id

    def store():
        return store_message(
            guard=Guard(clinic_id, key_hash, domain, throttle_key, now),
            raw=raw,
            envelope=envelope,
            content_type=request.META.get("CONTENT_TYPE", ""),
            remote_addr=address,
        )

    stored = store()
    if stored is None:
        # The INSERT's own checks refused what was remembered (the key was replaced, the caller
        # blocked): answer from a fresh lookup, as for a key never seen.
        lookup.forget(key_hash, domain)
        clinic_id = _authenticate(request, call, raw_key, key_hash, domain, throttle_key, now)
        if not isinstance(clinic_id, int):
            return clinic_id
        call.clinic_id = clinic_id
        stored = store()
        if stored is None:  # the lookup and the INSERT disagree twice: nothing kept, Ocean retries
            raise DatabaseError("the key's checks changed between the lookup and the insert")
    call.message_id = stored.message_id
    if stored.duplicate:
        call.reason = "duplicate"
        text = f"Already received as message {stored.message_id}; not stored again."
    else:
        text = f"Received and stored as message {stored.message_id}."
    return outcome_response(200, "informational", text, severity="information")


def _authenticate(request, call: _Call, raw_key: str, key_hash: str | None, domain, throttle_key, now):
    """The clinic whose key this is (then remembered), or the 429/401 response that refuses the call."""
    found = lookup.key_owner(key_hash, domain, throttle_key, now) if key_hash else None

    # A blocked caller is refused before its key counts (ratelimit's docstring says why).
    until = ratelimit.blocked_until(throttle_key, now) if found is None or found.blocked else None
    if until:
        call.reason = "throttled"
        seconds = ratelimit.retry_after_seconds(until, now)
        return outcome_response(
            429,
            "throttled",
            f"Too many rejected calls from this address; retry in {seconds} seconds.",
            headers={"Retry-After": str(seconds)},
        )

    authenticated = (
        found is not None
        and hmac.compare_digest(found.key_hash, key_hash)
        # On a clinic's own host only its key; on a host of no clinic, the key names the clinic.
        and found.host_clinic_id in (None, found.clinic_id)
    )
    if not authenticated:
        call.clinic_id = _host_clinic_id(request)
        call.reason = "no-key" if not raw_key else "wrong-key"
        _note_rejection(call.clinic_id, 401, now, throttle_key)
        if raw_key:
            text = f"The {KEY_HEADER} header does not hold this endpoint's key."
        else:
            text = f"The {KEY_HEADER} header is missing or empty; send the key generated in Harbour's Ocean settings."
        return outcome_response(401, "security", text)
    lookup.remember(key_hash, domain, found.clinic_id)
    return found.clinic_id


def _check_and_read(request, call: _Call):
    """The raw body, or the 413/415/400 response that refuses it."""
    limit = int(getattr(settings, "HARBOUR_MAX_BUNDLE_BYTES", DEFAULT_MAX_BUNDLE_BYTES))
    too_large = too_large_text(limit)
    declared = declared_length(request)
    if declared is not None and declared > limit:
        call.reason = "too-large"
        return outcome_response(413, "too-long", too_large)
    content_type = request.META.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
    if content_type and content_type not in JSON_TYPES and not content_type.endswith("+json"):
        call.reason = "content-type"
        return outcome_response(
            415, "not-supported", "The content type must be application/fhir+json (or application/json)."
        )
    encoding = request.META.get("HTTP_CONTENT_ENCODING")
    if encoding is not None and encoding.strip().lower() not in IDENTITY_ENCODINGS:
        call.reason = "content-encoding"
        return outcome_response(
            415, "not-supported",
            "Compressed bodies are not accepted: send the Bundle as plain JSON, with no Content-Encoding "
            "(as Ocean does).",
        )
    try:
        raw = read_body(request, limit)
    except BodyTooLarge:
        call.reason = "too-large"
        return outcome_response(413, "too-long", too_large)
    except BodyIncomplete as exc:
        call.reason = exc.reason
        # "invalid": the issue codes docs/openapi/intake.yaml documents do not include "incomplete".
        return outcome_response(400, "invalid", exc.message)
    if not raw or raw.isspace():
        call.reason = "empty"
        return outcome_response(400, "required", "The body is empty: a FHIR message Bundle is expected.")
    return raw


def _host_domain(request) -> str | None:
    try:
        host = request.get_host()
    except Exception:
        return None
    return domain_of_host(host)


def _host_clinic_id(request) -> int | None:
    # request.clinic is the tenancy middleware's lazy lookup (None when no clinic has this host).
    return getattr(getattr(request, "clinic", None), "pk", None)


def _note_rejection(clinic_id, status: int, now, throttle_key) -> None:
    """Count the rejection on the clinic's settings page, and the caller's failure for the rate limit.

    Best effort: the answer stays what it is if this bookkeeping fails.
    """
    try:
        with own_transaction():
            if throttle_key is not None:
                ratelimit.record_failure(throttle_key, now)
            if clinic_id is not None:
                OceanSettings.objects.filter(clinic_id=clinic_id).update(
                    last_rejected_at=now, last_rejected_status=status, rejected_count=F("rejected_count") + 1
                )
    except (DatabaseError, InterfaceError):
        log.warning("inbound rejection of clinic %s could not be recorded", clinic_id or "-")
