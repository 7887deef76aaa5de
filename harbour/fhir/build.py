"""Building the message bundles Harbour sends to Ocean's ``{fhir}/$process-messages``.

Contract §3.2 (payload v0.11.1 only). Pure Python, no Django: callers pass small frozen
dataclasses and get plain JSON-ready dicts back.

How a bundle is made (contract §3.2 "Minimum bundle" and its stance):

- the first entry is a fresh MessageHeader (event, ``source`` = Harbour at the clinic's public
  URL, ``destination.endpoint`` = ``{fhir}/$process-messages``, ``focus``, the referral ref in
  ``ext-id-message-header`` like OceanMD's client, §7 #1);
- the resources of the latest snapshot Ocean sent for the referral (``ReferralContext.snapshot``)
  are copied with their fullUrls, minus its MessageHeader and minus earlier Tasks, Appointments
  and Communications (a reply carries only the new ones, so the focus is never ambiguous; the
  Communication answered by ``inResponseTo`` is kept);
- the new resources get fresh ``urn:uuid:`` fullUrls.

Without a snapshot a stub ServiceRequest (its identifier only) and an empty Patient stand in,
so the bundle stays structurally complete; Harbour always has a snapshot for a received referral.

``validate_outbound(bundle)`` checks what we send against the structure above and against the
FHIR R4 rules that apply to the resources we build (required elements, value sets, Appointment
invariants, base64, references that resolve, no empty values). It is a hand-written subset, not
a full R4 validator: see the function's docstring for why.
"""

from __future__ import annotations

import base64
import binascii
import copy
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Mapping

from . import codes

HARBOUR_SOURCE_NAME = "Harbour"
PROCESS_MESSAGES = "$process-messages"

# Resource types a reply never copies from the snapshot: the reply carries its own.
_NOT_COPIED = frozenset({"MessageHeader", "Task", "Appointment", "Communication"})


class BuildError(ValueError):
    """The input cannot make a valid message (a programming or data error, in plain English)."""


# --- Input --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReferralContext:
    """What every outbound message needs to know about the clinic and the referral."""

    ocean_base_url: str  # the clinic's Ocean server, e.g. https://ocean.cognisantmd.com
    referral_ref: str  # Ocean's referral id (id-ereferral-reference)
    harbour_url: str  # the clinic's public Harbour URL: MessageHeader.source.endpoint
    site_number: str = ""  # the clinic's Ocean site number (target identifier when no snapshot)
    listing_ref: str = ""  # id-referral-target-reference of the target listing, if known
    snapshot: Mapping[str, Any] | None = None  # latest bundle Ocean sent for this referral
    task_code_system: str = codes.TASK_CODE_SYSTEM  # §7 #12: OceanMD's value, configurable

    @property
    def fhir_base_url(self) -> str:
        return self.ocean_base_url.rstrip("/") + "/svc/fhir/v1"

    @property
    def process_messages_url(self) -> str:
        return f"{self.fhir_base_url}/{PROCESS_MESSAGES}"


@dataclass(frozen=True, slots=True)
class TaskUpdate:
    """A Task status Ocean honours (contract §5.1)."""

    status: str  # accepted, rejected, completed, in-progress, ...
    reason: str | None = None  # statusReason.text (required for rejected)
    description: str | None = None
    code: str = codes.TASK_CODE_PROCESS_REQUEST
    authored_on: datetime | None = None  # default: now


@dataclass(frozen=True, slots=True)
class AppointmentBooking:
    """A booking. Without ``start`` it is instructions only (status proposed, no dates)."""

    start: datetime | None = None
    end: datetime | None = None
    minutes_duration: int | None = None  # computed from start/end when not given
    confirmed: bool = False  # patient participant accepted (confirmed) / tentative (unconfirmed)
    instructions: str | None = None  # patientInstruction (booking comments)
    location: str | None = None  # shown as a display-only Location participant
    cancellation_reason: str | None = None  # set by build_appointment_cancel_message


@dataclass(frozen=True, slots=True)
class OutgoingAttachment:
    title: str  # file name shown to the referrer
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """A message from the clinic to the referrer (send-communication-from-provider)."""

    text: str
    sender_name: str | None = None  # the staff member or clinic, shown as the sender
    attachment: OutgoingAttachment | None = None
    in_response_to: str | None = None  # fullUrl or identifier value of an earlier Communication
    sent: datetime | None = None  # default: now


# --- Small helpers --------------------------------------------------------------


def _new_full_url() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def fhir_datetime(value: datetime) -> str:
    """An aware datetime as a FHIR dateTime/instant (seconds precision)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise BuildError("datetimes sent to Ocean must carry a time zone")
    return value.isoformat(timespec="seconds")


def _bare(value: str) -> str:
    value = value.strip()
    return value[9:].lower() if value.lower().startswith("urn:uuid:") else value.lower()


def _is_empty(value: Any) -> bool:
    return value is None or (isinstance(value, (str, list, dict)) and not value)


def _clean(value: Any) -> Any:
    """Drop None, empty strings, lists and objects (FHIR JSON forbids empty values)."""
    if isinstance(value, dict):
        cleaned = {k: _clean(v) for k, v in value.items()}
        return {k: v for k, v in cleaned.items() if not _is_empty(v)}
    if isinstance(value, list):
        cleaned = [_clean(v) for v in value]
        return [v for v in cleaned if not _is_empty(v)]
    if isinstance(value, str):
        return value.strip() if value.strip() else None
    return value


def _copy_json(value: Any) -> Any:
    """A deep copy of a JSON value from Ocean without null and empty values, for a reply to echo.

    FHIR JSON forbids them (``validate_outbound`` refuses them), yet a snapshot may hold them:
    Ocean may send a null, and the reader turns NaN and infinities into null. Iterative, not
    recursive like copy.deepcopy: a snapshot nests as deep as the reader accepts (1,024 levels),
    beyond Python's recursion limit."""
    if not isinstance(value, (dict, list)):
        return value
    top: Any = {} if isinstance(value, dict) else []
    made, stack = [], [(value, top)]
    while stack:  # copy, parents before children
        source, copied = stack.pop()
        made.append(copied)
        for key, item in (source.items() if isinstance(source, dict) else enumerate(source)):
            if isinstance(item, (dict, list)):
                child: Any = {} if isinstance(item, dict) else []
                stack.append((item, child))
                item = child
            if isinstance(copied, dict):
                copied[key] = item
            else:
                copied.append(item)
    for node in reversed(made):  # prune, children before parents (an emptied child goes too)
        if isinstance(node, dict):
            for key in [k for k, v in node.items() if _is_empty(v)]:
                del node[key]
        else:
            node[:] = [v for v in node if not _is_empty(v)]
    return top


# --- The snapshot -------------------------------------------------------------


class _Snapshot:
    """The referral's latest bundle from Ocean, indexed for the few lookups a reply needs."""

    def __init__(self, bundle: Mapping[str, Any] | None, referral_ref: str) -> None:
        self.entries: list[dict] = []
        entries = bundle.get("entry") if isinstance(bundle, Mapping) else None
        for entry in entries if isinstance(entries, list) else []:
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if isinstance(resource, dict) and isinstance(resource.get("resourceType"), str):
                full_url = entry.get("fullUrl") if isinstance(entry.get("fullUrl"), str) else None
                self.entries.append({"fullUrl": full_url, "resource": _copy_json(resource)})
        self.service_request = self._service_request(referral_ref)
        self.patient = self._resolve_ref(self.service_request, "subject", "Patient") or self._first("Patient")
        performer = None
        if self.service_request:
            performers = self.service_request["resource"].get("performer")
            if isinstance(performers, list) and performers:
                performer = self.resolve(performers[0], "PractitionerRole")
        self.target = performer or self._header_receiver()
        # The referrer's PractitionerRole (or Practitioner/Organization): the sender of a
        # message the clinic writes on a copy of a referral it sent.
        self.requester = self.service_request and self.resolve(self.service_request["resource"].get("requester"))

    def _first(self, rtype: str) -> dict | None:
        return next((e for e in self.entries if e["resource"]["resourceType"] == rtype), None)

    def _service_request(self, referral_ref: str) -> dict | None:
        requests = [e for e in self.entries if e["resource"]["resourceType"] == "ServiceRequest"]
        for entry in requests:
            idents = entry["resource"].get("identifier")
            for ident in idents if isinstance(idents, list) else [idents]:
                if (isinstance(ident, dict) and codes.has_suffix(ident.get("system"), codes.ID_EREFERRAL_REFERENCE)
                        and ident.get("value") == referral_ref):
                    return entry
        return requests[0] if requests else None

    def _header_receiver(self) -> dict | None:
        header = self._first("MessageHeader")
        destinations = header["resource"].get("destination") if header else None
        if isinstance(destinations, list) and destinations and isinstance(destinations[0], dict):
            return self.resolve(destinations[0].get("receiver"), "PractitionerRole")
        return None

    def _resolve_ref(self, entry: dict | None, element: str, rtype: str) -> dict | None:
        return self.resolve(entry["resource"].get(element), rtype) if entry else None

    def resolve(self, ref: object, rtype: str | None = None) -> dict | None:
        """fullUrl, urn:uuid ≡ bare uuid, or Type/id (contract §4.3 rules 1-4)."""
        if not isinstance(ref, dict) or not isinstance(ref.get("reference"), str):
            return None
        text = ref["reference"].strip()
        for entry in self.entries:
            if rtype and entry["resource"]["resourceType"] != rtype:
                continue
            full_url = entry["fullUrl"]
            if full_url and (full_url == text or _bare(full_url) == _bare(text)):
                return entry
            rid = entry["resource"].get("id")
            if isinstance(rid, str) and text.endswith(f"{entry['resource']['resourceType']}/{rid}"):
                return entry
        return None

    def communication(self, key: str) -> dict | None:
        """An earlier Communication by fullUrl or identifier value."""
        for entry in self.entries:
            if entry["resource"]["resourceType"] != "Communication":
                continue
            if entry["fullUrl"] and _bare(entry["fullUrl"]) == _bare(key):
                return entry
            idents = entry["resource"].get("identifier")
            for ident in idents if isinstance(idents, list) else [idents]:
                if isinstance(ident, dict) and ident.get("value") == key:
                    return entry
        return None

    def copied_entries(self, keep: Iterable[dict] = ()) -> list[dict]:
        kept_ids = {id(e) for e in keep}
        out = []
        for entry in self.entries:
            if entry["resource"]["resourceType"] in _NOT_COPIED and id(entry) not in kept_ids:
                continue
            if not entry["fullUrl"]:
                entry["fullUrl"] = _new_full_url()
            out.append(entry)
        return out


# --- The builder ----------------------------------------------------------------


class _Message:
    """One outbound bundle being assembled."""

    def __init__(self, ctx: ReferralContext, now: datetime | None) -> None:
        if not ctx.referral_ref or not ctx.referral_ref.strip():
            raise BuildError("a referral ref is required")
        if not ctx.ocean_base_url.startswith(("https://", "http://")):
            raise BuildError("the Ocean server URL must be an http(s) URL")
        if not ctx.harbour_url.startswith(("https://", "http://")):
            raise BuildError("the clinic's public Harbour URL must be an http(s) URL")
        self.ctx = ctx
        self.now = now or datetime.now(timezone.utc)
        self.snapshot = _Snapshot(ctx.snapshot, ctx.referral_ref)
        self.extra_kept: list[dict] = []
        self.new_entries: list[dict] = []
        self.stubs: list[dict] = []
        self.service_request_url = self._service_request_url()
        self.patient_url = self._patient_url()

    # References to what the snapshot holds (or stubs when it holds nothing).

    def referral_identifier(self) -> dict:
        return {"system": codes.ocean_system(self.ctx.ocean_base_url, codes.ID_EREFERRAL_REFERENCE),
                "value": self.ctx.referral_ref}

    def _service_request_url(self) -> str:
        if self.snapshot.service_request:
            return self.snapshot.service_request["fullUrl"] or self._assign(self.snapshot.service_request)
        self.patient_stub_url = _new_full_url()
        stub_url = _new_full_url()
        self.stubs.append({"fullUrl": stub_url, "resource": {
            "resourceType": "ServiceRequest",
            "meta": {"profile": [codes.profile_url("ServiceRequest")]},
            "identifier": [self.referral_identifier()],
            "status": "active",
            "intent": "proposal",
            "subject": {"reference": self.patient_stub_url},
        }})
        return stub_url

    def _patient_url(self) -> str:
        if self.snapshot.patient:
            return self.snapshot.patient["fullUrl"] or self._assign(self.snapshot.patient)
        url = getattr(self, "patient_stub_url", None) or _new_full_url()
        self.stubs.append({"fullUrl": url, "resource": {
            "resourceType": "Patient", "meta": {"profile": [codes.profile_url("Patient")]}}})
        return url

    @staticmethod
    def _assign(entry: dict) -> str:
        entry["fullUrl"] = _new_full_url()
        return entry["fullUrl"]

    def based_on(self) -> dict:
        return {"reference": self.service_request_url, "type": "ServiceRequest",
                "identifier": self.referral_identifier()}

    def patient_ref(self) -> dict:
        return {"reference": self.patient_url, "type": "Patient"}

    def target_ref(self, display: str | None = None) -> dict | None:
        """The target listing's PractitionerRole (the clinic's side of the referral)."""
        ref: dict[str, Any] = {"type": "PractitionerRole"}
        if self.snapshot.target:
            ref["reference"] = self.snapshot.target["fullUrl"] or self._assign(self.snapshot.target)
        if self.ctx.listing_ref:
            ref["identifier"] = {"system": codes.ocean_system(self.ctx.ocean_base_url,
                                                              codes.ID_REFERRAL_TARGET_REFERENCE),
                                 "value": self.ctx.listing_ref}
        elif self.ctx.site_number:
            ref["identifier"] = {"system": codes.ocean_system(self.ctx.ocean_base_url, codes.ID_SITE_NUMBER),
                                 "value": self.ctx.site_number}
        if display:
            ref["display"] = display
        return ref if len(ref) > 1 else None

    def requester_ref(self, display: str | None = None) -> dict | None:
        """The referrer (ServiceRequest.requester of the snapshot): the clinic's side of a sent referral."""
        ref: dict[str, Any] = {}
        if self.snapshot.requester:
            ref["reference"] = self.snapshot.requester["fullUrl"] or self._assign(self.snapshot.requester)
            ref["type"] = self.snapshot.requester["resource"]["resourceType"]
        if display:
            ref["display"] = display
        return ref or None

    def add(self, resource: dict) -> str:
        url = _new_full_url()
        self.new_entries.append({"fullUrl": url, "resource": _clean(resource)})
        return url

    def bundle(self, event: str, focus: list[str], sender: dict | None = None) -> dict:
        target = self.target_ref()
        destination = {"endpoint": self.ctx.process_messages_url}
        if target:
            destination["receiver"] = target
        header = {
            "resourceType": "MessageHeader",
            "id": str(uuid.uuid4()),
            "meta": {"profile": [codes.profile_url("MessageHeader")]},
            "extension": [{"url": codes.EXT_ID_MESSAGE_HEADER, "valueString": self.ctx.referral_ref}],
            "eventCoding": {"system": codes.MESSAGE_EVENT_SYSTEM, "code": event, "display": event},
            "destination": [destination],
            "sender": sender or target,
            "source": {"name": HARBOUR_SOURCE_NAME, "software": HARBOUR_SOURCE_NAME,
                       "endpoint": self.ctx.harbour_url.rstrip("/")},
            "focus": [{"reference": url} for url in focus],
        }
        timestamp = fhir_datetime(self.now)
        entries = [{"fullUrl": f"urn:uuid:{header['id']}", "resource": _clean(header)}]
        entries += self.new_entries
        entries += self.snapshot.copied_entries(keep=self.extra_kept)
        entries += self.stubs
        return {
            "resourceType": "Bundle",
            "id": str(uuid.uuid4()),
            "meta": {"lastUpdated": timestamp},
            "type": "message",
            "timestamp": timestamp,
            "entry": entries,
        }

    # Resources.

    def task(self, update: TaskUpdate) -> str:
        if update.status not in codes.TASK_STATUSES_OCEAN_HONOURS:
            raise BuildError(f"Ocean does not honour the Task status {update.status!r}")
        if update.status == "rejected" and not (update.reason or "").strip():
            raise BuildError("a declined referral needs a reason")
        return self.add({
            "resourceType": "Task",
            "meta": {"profile": [codes.profile_url("Task")]},
            "status": update.status,
            "statusReason": {"text": update.reason} if update.reason else None,
            "intent": "order",
            "code": {"coding": [{"system": self.ctx.task_code_system, "code": update.code}]},
            "description": update.description,
            "basedOn": [self.based_on()],
            "for": self.patient_ref(),
            "authoredOn": fhir_datetime(update.authored_on or self.now),
            "lastModified": fhir_datetime(self.now),
            "owner": self.target_ref(),
        })

    def appointment(self, booking: AppointmentBooking) -> str:
        start, end, minutes = booking.start, booking.end, booking.minutes_duration
        cancelled = booking.cancellation_reason is not None
        if cancelled or start is None:
            if end is not None and not cancelled:
                raise BuildError("an appointment end needs a start")
            status, start, end, minutes = "proposed", None, None, None
            if not cancelled and not (booking.instructions or "").strip():
                raise BuildError("an appointment without a date needs instructions")
            participant_status = "needs-action"
        else:
            if end is None and minutes:
                end = start + timedelta(minutes=minutes)
            if end is None:
                raise BuildError("an appointment needs an end or a duration")
            if end <= start:
                raise BuildError("an appointment must end after it starts")
            minutes = minutes or int((end - start).total_seconds() // 60)
            status = "booked"
            participant_status = "accepted" if booking.confirmed else "tentative"
        participants = [{"actor": self.patient_ref(), "required": "required", "status": participant_status}]
        if booking.location and status == "booked":
            participants.append({"actor": {"type": "Location", "display": booking.location},
                                 "status": "accepted"})
        return self.add({
            "resourceType": "Appointment",
            "meta": {"profile": [codes.profile_url("Appointment")]},
            "status": status,
            "cancelationReason": {"text": booking.cancellation_reason} if cancelled else None,
            "start": fhir_datetime(start) if start else None,
            "end": fhir_datetime(end) if end else None,
            "minutesDuration": minutes,
            "created": fhir_datetime(self.now)[:10],
            "patientInstruction": None if cancelled else booking.instructions,
            "basedOn": [self.based_on()],
            "participant": participants,
        })

    def communication(self, message: OutgoingMessage, *, from_requester: bool = False) -> str:
        if not (message.text or "").strip() and message.attachment is None:
            raise BuildError("a message needs text or an attachment")
        payload = []
        if (message.text or "").strip():
            payload.append({"contentString": message.text})
        if message.attachment is not None:
            att = message.attachment
            if not att.data:
                raise BuildError("an attachment cannot be empty")
            payload.append({"contentAttachment": {
                "contentType": att.content_type,
                "data": base64.b64encode(att.data).decode("ascii"),
                "title": att.title,
                "size": len(att.data),
                "creation": fhir_datetime(message.sent or self.now),
            }})
        in_response_to = None
        if message.in_response_to:
            earlier = self.snapshot.communication(message.in_response_to)
            if earlier is not None:
                self.extra_kept.append(earlier)
                in_response_to = [{"reference": earlier["fullUrl"] or self._assign(earlier),
                                   "type": "Communication"}]
            else:
                in_response_to = [{"type": "Communication", "identifier": {"value": message.in_response_to}}]
        return self.add({
            "resourceType": "Communication",
            "meta": {"profile": [codes.profile_url("Communication")]},
            "identifier": [self.referral_identifier()],
            "status": "completed",
            "basedOn": [self.based_on()],
            "inResponseTo": in_response_to,
            "subject": self.patient_ref(),
            "sent": fhir_datetime(message.sent or self.now),
            "sender": (self.requester_ref(display=message.sender_name) if from_requester
                       else self.target_ref(display=message.sender_name)),
            "payload": payload,
        })


# --- Public builders ------------------------------------------------------------


def build_task_message(ctx: ReferralContext, update: TaskUpdate, *, first: bool,
                       now: datetime | None = None) -> dict:
    """A Task status: the first Task of a referral goes as ``notify-add-process-request``,
    later ones as ``notify-update-process-request`` (contract §3.2)."""
    message = _Message(ctx, now)
    task_url = message.task(update)
    event = codes.NOTIFY_ADD_PROCESS_REQUEST if first else codes.NOTIFY_UPDATE_PROCESS_REQUEST
    return message.bundle(event, [task_url])


def build_appointment_message(ctx: ReferralContext, booking: AppointmentBooking, *,
                              update: TaskUpdate | None = None, now: datetime | None = None) -> dict:
    """A first booking (or instructions): ``notify-add-appointment``, focus the Appointment.

    With ``update`` (rebooking): ``notify-update-process-request``, focus the Appointment and
    the Task (contract §5.2, §7 #10)."""
    message = _Message(ctx, now)
    appointment_url = message.appointment(booking)
    if update is None:
        return message.bundle(codes.NOTIFY_ADD_APPOINTMENT, [appointment_url])
    task_url = message.task(update)
    return message.bundle(codes.NOTIFY_UPDATE_PROCESS_REQUEST, [appointment_url, task_url])


def build_appointment_cancel_message(ctx: ReferralContext, reason: str, update: TaskUpdate, *,
                                     now: datetime | None = None) -> dict:
    """The clinic cancels the appointment: ``notify-update-process-request`` with an undated
    ``proposed`` Appointment (the very signal Ocean itself uses for a cancelled referral
    appointment, §5.2) and a Task taking the referral back to Pending Booking."""
    if not (reason or "").strip():
        raise BuildError("cancelling an appointment needs a reason")
    message = _Message(ctx, now)
    appointment_url = message.appointment(AppointmentBooking(cancellation_reason=reason))
    task_url = message.task(update)
    return message.bundle(codes.NOTIFY_UPDATE_PROCESS_REQUEST, [appointment_url, task_url])


def build_communication_message(ctx: ReferralContext, outgoing: OutgoingMessage, *,
                                now: datetime | None = None, from_requester: bool = False) -> dict:
    """A message to the referrer: ``send-communication-from-provider``.

    ``from_requester``: the clinic is the referral's sender (a copy of a referral it sent) and
    writes to the receiver: ``send-communication-from-requester``, the Communication and the
    header sent by the referrer (ServiceRequest.requester). Both sides message [F 34]; this is
    the only requester event Harbour sends (it never changes a sent referral's status).
    """
    message = _Message(ctx, now)
    if not from_requester:
        return message.bundle(codes.SEND_COMMUNICATION_FROM_PROVIDER, [message.communication(outgoing)])
    url = message.communication(outgoing, from_requester=True)
    return message.bundle(codes.SEND_COMMUNICATION_FROM_REQUESTER, [url], sender=message.requester_ref())


def build_data_correction_message(ctx: ReferralContext, corrected: Mapping[str, Any], *,
                                  now: datetime | None = None) -> dict:
    """Corrected data (``notify-data-correction``): ``corrected`` (a Patient or ServiceRequest
    resource) replaces the snapshot's resource of that type and becomes the focus."""
    rtype = corrected.get("resourceType") if isinstance(corrected, Mapping) else None
    if rtype not in ("Patient", "ServiceRequest"):
        raise BuildError("a data correction carries a Patient or a ServiceRequest")
    message = _Message(ctx, now)
    target = message.snapshot.patient if rtype == "Patient" else message.snapshot.service_request
    stub = next((s for s in message.stubs if s["resource"]["resourceType"] == rtype), None)
    entry = target or stub
    entry["resource"] = _clean(copy.deepcopy(dict(corrected)))
    return message.bundle(codes.NOTIFY_DATA_CORRECTION, [entry["fullUrl"]])


# --- Validation -----------------------------------------------------------------


class OutboundInvalid(ValueError):
    """``validate_outbound`` found problems; ``problems`` lists them (English, no patient data)."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_DATETIME = re.compile(
    r"\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?)?)?")
_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})")
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_MIME = re.compile(r"[\w.+-]+/[\w.+-]+")

# R4 value sets (required bindings) of the elements Harbour writes.
TASK_STATUS = frozenset({"draft", "requested", "received", "accepted", "rejected", "ready", "cancelled",
                         "in-progress", "on-hold", "failed", "completed", "entered-in-error"})
TASK_INTENT = frozenset({"unknown", "proposal", "plan", "order", "original-order", "reflex-order",
                         "filler-order", "instance-order", "option"})
APPOINTMENT_STATUS = frozenset({"proposed", "pending", "booked", "arrived", "fulfilled", "cancelled",
                                "noshow", "entered-in-error", "checked-in", "waitlist"})
PARTICIPATION_STATUS = frozenset({"accepted", "declined", "tentative", "needs-action"})
PARTICIPANT_REQUIRED = frozenset({"required", "optional", "information-only"})
EVENT_STATUS = frozenset({"preparation", "in-progress", "not-done", "on-hold", "stopped", "completed",
                          "entered-in-error", "unknown"})
REQUEST_STATUS = frozenset({"draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"})
REQUEST_INTENT = frozenset({"proposal", "plan", "directive", "order", "original-order", "reflex-order",
                            "filler-order", "instance-order", "option"})


# The one requester event Harbour sends: a message on a copy of a referral the clinic sent
# (both sides message [F 34]); accepted only with a Communication as the focus (see bundle()).
OUTBOUND_REQUESTER_EVENTS = frozenset({codes.SEND_COMMUNICATION_FROM_REQUESTER})


def validate_outbound(bundle: object, *, expected_event: str | None = None) -> None:
    """Raise ``OutboundInvalid`` unless ``bundle`` is a message Harbour may send to Ocean.

    Checked: the contract's structure (message Bundle, MessageHeader first with a v0.11.1 event
    Harbour sends, event system, source/destination endpoints, referral-ref extension, focus that
    resolves, a ServiceRequest and a Patient, profiles with a version) and the FHIR R4 rules of
    the resources Harbour writes (MessageHeader, Task, Appointment, Communication): required
    elements, required value sets, Appointment invariants app-2/app-3, attachment att-1 and
    base64, dateTime/instant syntax, ids, unique fullUrls, urn:uuid references that resolve,
    no empty values anywhere (R4 JSON rule).

    Decision: no ``fhir.resources`` dependency. It would pull pydantic into the web and worker
    processes for four resource types we build ourselves, and it does not know the Ontario
    profiles anyway; these checks cover every element we write and fail loudly in tests.
    """
    problems: list[str] = []
    _Validator(problems).bundle(bundle, expected_event)
    if problems:
        raise OutboundInvalid(problems[:50])


class _Validator:
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems

    def fail(self, text: str) -> None:
        if text not in self.problems:
            self.problems.append(text)

    def bundle(self, bundle: object, expected_event: str | None) -> None:
        if not isinstance(bundle, dict):
            return self.fail("the bundle is not a JSON object")
        if bundle.get("resourceType") != "Bundle" or bundle.get("type") != "message":
            self.fail("resourceType must be Bundle and type message")
        self.pattern(bundle.get("id"), _ID, "Bundle.id", required=True)
        self.pattern(bundle.get("timestamp"), _INSTANT, "Bundle.timestamp", required=True)
        self.no_empty(bundle, "Bundle")
        entries = bundle.get("entry")
        if not isinstance(entries, list) or not entries:
            return self.fail("the bundle has no entries")
        urls: set[str] = set()
        resources: list[tuple[str, dict]] = []
        for i, entry in enumerate(entries):
            resource = entry.get("resource") if isinstance(entry, dict) else None
            if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
                self.fail(f"Bundle.entry[{i}] has no resource")
                continue
            url = entry.get("fullUrl")
            if not isinstance(url, str) or not url:
                self.fail(f"Bundle.entry[{i}] has no fullUrl")
            elif url in urls:
                self.fail(f"Bundle.entry[{i}] repeats a fullUrl")
            else:
                urls.add(url)
            if "id" in resource:
                self.pattern(resource["id"], _ID, f"{resource['resourceType']}.id")
            resources.append((url or "", resource))
        if not resources:
            return
        if resources[0][1]["resourceType"] != "MessageHeader":
            return self.fail("the first entry must be a MessageHeader")
        self.references(bundle, urls)
        header = resources[0][1]
        self.header(header, urls, expected_event)
        coding = header.get("eventCoding")
        if isinstance(coding, dict) and coding.get("code") in OUTBOUND_REQUESTER_EVENTS:
            focus_list = header.get("focus") if isinstance(header.get("focus"), list) else []
            focus_urls = {f.get("reference") for f in focus_list if isinstance(f, dict)}
            if {r["resourceType"] for url, r in resources if url in focus_urls} != {"Communication"}:
                self.fail("send-communication-from-requester carries only a Communication as its focus")
        types = [r["resourceType"] for _, r in resources]
        for needed in ("ServiceRequest", "Patient"):
            if needed not in types:
                self.fail(f"the bundle has no {needed}")
        # Resources Harbour writes: the focus, and every Task/Appointment (none is copied).
        focus = {r.get("reference") for r in header.get("focus") or [] if isinstance(r, dict)}
        for url, resource in resources:
            checker: Callable[[dict], None] | None = getattr(self, f"r_{resource['resourceType']}", None)
            if checker and (url in focus or resource["resourceType"] in ("Task", "Appointment", "ServiceRequest")):
                checker(resource)

    def header(self, header: dict, urls: set[str], expected_event: str | None) -> None:
        coding = header.get("eventCoding")
        code = coding.get("code") if isinstance(coding, dict) else None
        if not isinstance(coding, dict) or coding.get("system") != codes.MESSAGE_EVENT_SYSTEM:
            self.fail("MessageHeader.eventCoding must use the eHealth Ontario message-event system")
        if code not in codes.OUTBOUND_EVENTS and code not in OUTBOUND_REQUESTER_EVENTS:
            self.fail("MessageHeader.eventCoding.code is not an event Harbour sends")
        if expected_event and code != expected_event:
            self.fail(f"MessageHeader event should be {expected_event}")
        source = header.get("source")
        if not isinstance(source, dict) or not self.is_url(source.get("endpoint")):
            self.fail("MessageHeader.source.endpoint must be a URL")
        destinations = header.get("destination")
        if not isinstance(destinations, list) or not destinations:
            self.fail("MessageHeader.destination is required")
        else:
            for d in destinations:
                endpoint = d.get("endpoint") if isinstance(d, dict) else None
                if not self.is_url(endpoint) or not endpoint.endswith("/" + PROCESS_MESSAGES):
                    self.fail("MessageHeader.destination.endpoint must be Ocean's $process-messages URL")
        ext = [e for e in header.get("extension") or [] if isinstance(e, dict)
               and e.get("url") == codes.EXT_ID_MESSAGE_HEADER]
        if len(ext) != 1 or not isinstance(ext[0].get("valueString"), str) or not ext[0]["valueString"].strip():
            self.fail("MessageHeader needs one ext-id-message-header extension with the referral ref")
        focus = header.get("focus")
        if not isinstance(focus, list) or not focus:
            self.fail("MessageHeader.focus is required")
        else:
            for ref in focus:
                if not isinstance(ref, dict) or ref.get("reference") not in urls:
                    self.fail("MessageHeader.focus must point to an entry of the bundle")
        self.profile(header, "MessageHeader")

    # The two walks over the whole bundle are iterative: copied snapshot resources nest as deep
    # as the reader accepts (1,024 levels), beyond Python's recursion limit.

    def references(self, value: Any, urls: set[str]) -> None:
        """Every urn:uuid reference must resolve inside the bundle."""
        stack = [value]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                ref = node.get("reference")
                if isinstance(ref, str) and ref.startswith("urn:uuid:") and ref not in urls:
                    self.fail("a reference does not resolve inside the bundle")
                stack.extend(reversed(node.values()))
            elif isinstance(node, list):
                stack.extend(reversed(node))

    def no_empty(self, value: Any, where: str) -> None:
        stack = [(value, where)]
        while stack:
            node, where = stack.pop()
            children = []
            if isinstance(node, dict):
                for k, v in node.items():
                    if _is_empty(v):
                        self.fail(f"{where}.{k} is empty (FHIR JSON forbids empty values)")
                    children.append((v, f"{where}.{k}"))
            elif isinstance(node, list):
                for v in node:
                    if v is None:
                        self.fail(f"{where} holds a null")
                    children.append((v, where))
            stack.extend(reversed(children))

    def pattern(self, value: object, regex: re.Pattern, where: str, *, required: bool = False) -> None:
        if value is None:
            if required:
                self.fail(f"{where} is required")
        elif not isinstance(value, str) or not regex.fullmatch(value):
            self.fail(f"{where} is malformed")

    @staticmethod
    def is_url(value: object) -> bool:
        return isinstance(value, str) and value.startswith(("https://", "http://")) and " " not in value

    def profile(self, resource: dict, rtype: str) -> None:
        profiles = (resource.get("meta") or {}).get("profile")
        if profiles != [codes.profile_url(rtype)]:
            self.fail(f"{rtype}.meta.profile must be the v0.11.1 profile")

    def based_on(self, resource: dict, rtype: str) -> None:
        refs = resource.get("basedOn")
        if not isinstance(refs, list) or not refs or not all(
                isinstance(r, dict) and (r.get("reference") or r.get("identifier")) for r in refs):
            self.fail(f"{rtype}.basedOn must reference the ServiceRequest")

    def code_in(self, value: object, allowed: frozenset, where: str) -> None:
        if value not in allowed:
            self.fail(f"{where} is missing or not an allowed code")

    def r_Task(self, task: dict) -> None:
        self.no_empty(task, "Task")
        self.code_in(task.get("status"), TASK_STATUS, "Task.status")
        self.code_in(task.get("intent"), TASK_INTENT, "Task.intent")
        if task.get("intent") != "order":
            self.fail("Task.intent must be order")
        if task.get("status") not in codes.TASK_STATUSES_OCEAN_HONOURS:
            self.fail("Task.status is not one Ocean honours")
        coding = (task.get("code") or {}).get("coding") or [{}]
        if coding[0].get("code") not in (codes.TASK_CODE_PROCESS_REQUEST, codes.TASK_CODE_PROCESS_REQUEST_CONSULT,
                                         codes.TASK_CODE_REQUEST_FOR_INFORMATION) or not coding[0].get("system"):
            self.fail("Task.code must be a process-request code with a system")
        self.based_on(task, "Task")
        if not isinstance(task.get("owner"), dict):
            self.fail("Task.owner (the target PractitionerRole) is required")
        if task.get("status") == "rejected" and not (task.get("statusReason") or {}).get("text"):
            self.fail("a rejected Task needs statusReason.text")
        for key in ("authoredOn", "lastModified"):
            self.pattern(task.get(key), _DATETIME, f"Task.{key}")
        self.profile(task, "Task")

    def r_Appointment(self, appointment: dict) -> None:
        self.no_empty(appointment, "Appointment")
        status = appointment.get("status")
        self.code_in(status, APPOINTMENT_STATUS, "Appointment.status")
        start, end = appointment.get("start"), appointment.get("end")
        self.pattern(start, _INSTANT, "Appointment.start")
        self.pattern(end, _INSTANT, "Appointment.end")
        if (start is None) != (end is None):  # app-2
            self.fail("Appointment start and end go together")
        if start is None and status not in ("proposed", "cancelled", "waitlist"):  # app-3
            self.fail("only proposed, cancelled or waitlist appointments may be undated")
        if isinstance(start, str) and isinstance(end, str):
            try:
                if datetime.fromisoformat(end.replace("Z", "+00:00")) <= datetime.fromisoformat(
                        start.replace("Z", "+00:00")):
                    self.fail("Appointment.end must be after start")
            except ValueError:
                pass
        minutes = appointment.get("minutesDuration")
        if minutes is not None and (not isinstance(minutes, int) or isinstance(minutes, bool) or minutes < 1):
            self.fail("Appointment.minutesDuration must be a positive whole number")
        participants = appointment.get("participant")
        if not isinstance(participants, list) or not participants:
            self.fail("Appointment.participant is required")
        else:
            for p in participants:
                self.code_in(p.get("status"), PARTICIPATION_STATUS, "Appointment.participant.status")
                if "required" in p:
                    self.code_in(p["required"], PARTICIPANT_REQUIRED, "Appointment.participant.required")
                if not isinstance(p.get("actor"), dict) and not p.get("type"):  # app-1
                    self.fail("Appointment.participant needs an actor or a type")
        self.based_on(appointment, "Appointment")
        self.profile(appointment, "Appointment")

    def r_Communication(self, communication: dict) -> None:
        self.no_empty(communication, "Communication")
        self.code_in(communication.get("status"), EVENT_STATUS, "Communication.status")
        if communication.get("status") != "completed":
            self.fail("Communication.status must be completed")
        self.pattern(communication.get("sent"), _DATETIME, "Communication.sent")
        self.based_on(communication, "Communication")
        payloads = communication.get("payload")
        if not isinstance(payloads, list) or not payloads:
            self.fail("Communication.payload is required")
        for payload in payloads if isinstance(payloads, list) else []:
            kinds = [k for k in ("contentString", "contentAttachment", "contentReference") if k in payload]
            if len(kinds) != 1:
                self.fail("each Communication.payload needs exactly one content")
            attachment = payload.get("contentAttachment")
            if isinstance(attachment, dict):
                self.attachment(attachment)
        self.profile(communication, "Communication")

    def attachment(self, attachment: dict) -> None:
        data = attachment.get("data")
        if data is not None:
            if not attachment.get("contentType"):  # att-1
                self.fail("an attachment with data needs a contentType")
            if not isinstance(data, str) or len(data) % 4 or not _BASE64.fullmatch(data):
                self.fail("attachment data is not base64")
            else:
                try:
                    raw = base64.b64decode(data, validate=True)
                    if attachment.get("size") not in (None, len(raw)):
                        self.fail("attachment size does not match its data")
                except (binascii.Error, ValueError):
                    self.fail("attachment data is not base64")
        content_type = attachment.get("contentType")
        if content_type is not None and (not isinstance(content_type, str) or not _MIME.fullmatch(content_type)):
            self.fail("attachment contentType is malformed")

    def r_ServiceRequest(self, request: dict) -> None:
        self.code_in(request.get("status"), REQUEST_STATUS, "ServiceRequest.status")
        self.code_in(request.get("intent"), REQUEST_INTENT, "ServiceRequest.intent")
        if not isinstance(request.get("subject"), dict):
            self.fail("ServiceRequest.subject is required")


# --- Echo keys -------------------------------------------------------------------
# Ocean reports every change, Harbour's own included (contract §2.2 "Chattiness"). When Harbour
# sends a fact it records a timeline Event with one of these keys; inbound processing builds the
# same key from what it reads (harbour.fhir.model) and so adds nothing for the echo. Times are
# compared in UTC to the second, since Ocean may echo them in another offset.


def _utc(value: datetime | None) -> str:
    if value is None:
        return "-"
    if value.tzinfo is None:
        raise BuildError("echo keys need aware datetimes")
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def task_echo_key(status: str, authored_on: datetime | None) -> str:
    """``task:<status>:<authoredOn UTC>`` (model.Task.status / .authored_on)."""
    return f"task:{status}:{_utc(authored_on)}"


def appointment_echo_key(start: datetime | None, participant_status: str | None, status: str | None) -> str:
    """``appt:<start UTC>:<patient participant status>:<status>`` (model.Appointment)."""
    return f"appt:{_utc(start)}:{participant_status or '-'}:{status or '-'}"


def communication_echo_key(text: str | None, sent: datetime | None, file: str | None = None) -> str:
    """``comm:<sha256 of the text and sent time>`` (model.Communication: first payload text, sent).

    A message without text also by its first file (its title, else its URL): two files sent
    apart in the same second are two messages (referrals/0005 rewrote the keys kept before)."""
    import hashlib

    text = (text or "").strip()
    seed = f"{text}\x00{_utc(sent)}"
    if not text and file:
        seed += f"\x00{file}"
    digest = hashlib.sha256(seed.encode()).hexdigest()[:40]
    return f"comm:{digest}"
