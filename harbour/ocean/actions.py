"""What staff do to a received referral, sent back to Ocean (contract §3.2, §5).

Each action, in ONE transaction: lock the referral row, check it may act (received, of this
clinic's site, not cancelled / forwarded / externally managed, and in a state the action fits;
a message may also go on a copy of a referral the clinic sent when the setting
HARBOUR_OCEAN_MESSAGES_ON_SENT_COPIES is on, see `send_message`),
update the local state, record the timeline Event with the key Ocean's echo will carry (so the
echo adds nothing), build and validate the bundle, and enqueue it. Nothing reaches Ocean here;
the worker delivers.

Idempotency (double-clicked submits): the referral row is locked (select_for_update; SQLite
takes the write lock up front) and each action checks the state, so a second "accept" finds the
referral accepted and is refused. When the form posts an `idempotency_key` (a hidden random
value), the same key for the same referral and kind returns the first message instead
(unique constraint `outbound_unique_submit`), so the double click is silent.

Stale pages: actions that change the referral take `expected_state`, the state token the page
was rendered with (harbour.referrals.staleness). Under the lock, a different current state
refuses the action with `StaleReferral` (saying what changed), so a tab opened earlier cannot
silently undo a colleague's decision. The idempotency replay comes first: a double-clicked
submit whose first click changed the state still gets the first click's result.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import formats, timezone
from django.utils.translation import gettext_lazy as _

from harbour.fhir import build
from harbour.fhir.build import AppointmentBooking, BuildError, OutgoingAttachment, OutgoingMessage, TaskUpdate

from . import outbox
from .models import OutboundMessage
from .refusals import referral_fields

Kind = OutboundMessage.Kind


class ActionNotAllowed(Exception):
    """The action does not fit this referral now. `message` is translatable, for the person."""

    def __init__(self, message):
        super().__init__(str(message))
        self.message = message


class StaleReferral(ActionNotAllowed):
    """The page the action came from showed an older state of the referral; nothing was done."""


# Bookings further ahead are typing mistakes (e.g. 3026 for 2026), refused by the forms and here.
BOOKING_HORIZON_YEARS = 2


def booking_horizon(today=None):
    """The last day an appointment may be booked on: today plus BOOKING_HORIZON_YEARS (28 Feb for 29 Feb)."""
    today = today or timezone.localdate()
    try:
        return today.replace(year=today.year + BOOKING_HORIZON_YEARS)
    except ValueError:  # 29 February
        return today.replace(year=today.year + BOOKING_HORIZON_YEARS, day=28)


@dataclass(frozen=True)
class FileUpload:
    name: str
    content_type: str
    data: bytes


def messages_on_sent_copies() -> bool:
    """Whether staff may message the receiver from a copy of a referral the clinic sent.

    On by default (issue #5). Off, sent copies are read-only as the contract's stance has them
    (§3.2, §5.4): for a clinic whose Ocean answers `send-communication-from-requester` with a 400
    and an email to its administrator (§6)."""
    return bool(getattr(settings, "HARBOUR_OCEAN_MESSAGES_ON_SENT_COPIES", True))


SENT_COPY_MESSAGES_IN_OCEAN = _("Messages about a referral your clinic sent are written in Ocean: Harbour's copy "
                                "is read-only.")


def max_attachment_bytes() -> int:
    return int(getattr(settings, "HARBOUR_OCEAN_MESSAGE_MAX_BYTES", 10 * 1024 * 1024))


def allowed_attachment_types() -> tuple[str, ...]:
    return tuple(getattr(settings, "HARBOUR_OCEAN_MESSAGE_TYPES",
                         ("application/pdf", "image/png", "image/jpeg", "text/plain")))


_MAGIC = {
    "application/pdf": lambda d: d.startswith(b"%PDF-"),
    "image/png": lambda d: d.startswith(b"\x89PNG\r\n\x1a\n"),
    "image/jpeg": lambda d: d.startswith(b"\xff\xd8\xff"),
}


# --- Shared steps ---------------------------------------------------------------------------


def _models():
    from harbour.referrals import models

    return models


def _lock(referral, *, sent_copy_ok: bool = False):
    """The referral row, locked for this transaction, after the checks every action shares.

    `sent_copy_ok`: the action may also run on a copy of a referral the clinic sent (messages
    only, when `messages_on_sent_copies()`: both sides message [F 34], only the receiver changes
    the status, §5.4)."""
    m = _models()
    locked = m.Referral.objects.select_for_update().select_related("clinic").get(pk=referral.pk)
    sent_copy = sent_copy_ok and locked.direction == m.Direction.SENT
    if locked.direction != m.Direction.RECEIVED and not sent_copy:
        raise ActionNotAllowed(_("Only referrals your clinic received can be acted on; copies of referrals "
                                 "you sent are read-only."))
    if locked.status == m.Status.CANCELLED:
        raise ActionNotAllowed(_("The sender cancelled this referral; it can no longer be changed."))
    if locked.status == m.Status.FORWARDED:
        raise ActionNotAllowed(_("This referral was forwarded; only its new recipient can act on it."))
    if locked.status == m.Status.EXTERNALLY_MANAGED:
        raise ActionNotAllowed(_("This referral is managed outside Ocean; it can no longer be changed here."))
    from harbour.clinics.models import ocean_settings_for

    ocean = ocean_settings_for(locked.clinic)
    # A sent copy's site number is the receiver's: the clinic writes as the referral's sender.
    if (not sent_copy and ocean.site_number and locked.site_number
            and ocean.site_number.strip() != locked.site_number.strip()):
        raise ActionNotAllowed(_("This referral was sent to another Ocean site than the one configured."))
    return locked, ocean


def _require_status(referral, allowed, message) -> None:
    if referral.status not in allowed:
        raise ActionNotAllowed(message)


def _existing(referral, kind, idempotency_key):
    if not idempotency_key:
        return None
    return OutboundMessage.objects.filter(referral=referral, kind=kind, idempotency_key=idempotency_key).first()


def _enqueue(referral, kind, bundle, user, idempotency_key, echo_key) -> OutboundMessage:
    try:
        with transaction.atomic():
            return outbox.enqueue(referral, kind, bundle, user=user, idempotency_key=idempotency_key,
                                  echo_key=echo_key)
    except IntegrityError:
        # A racing submit with the same key won: undo this one entirely (the caller returns the
        # winner's message). Only when that message really exists: any other IntegrityError (a
        # check constraint, a bug) is a real error, never reported to the person as done.
        if idempotency_key and _existing(referral, kind, idempotency_key):
            raise _Duplicate() from None
        raise
    except outbox.CannotSend as exc:  # in the action's transaction: nothing is changed either
        raise ActionNotAllowed(_("Nothing was changed or sent: this referral's data cannot be sent back to Ocean "
                                 "(%(why)s).") % {"why": exc}) from None


class _Duplicate(Exception):
    pass


def _run(referral, kind, idempotency_key, body, *, sent_copy_ok: bool = False, expected_state: str | None = None):
    """Lock, replay a known submit, refuse a stale page's submit, or run `body(locked, ocean)` -> OutboundMessage."""
    try:
        with transaction.atomic():
            existing = _existing(referral, kind, idempotency_key)
            if existing:
                return existing
            locked, ocean = _lock(referral, sent_copy_ok=sent_copy_ok)
            if expected_state is not None:
                from harbour.referrals.staleness import stale_message

                why = stale_message(locked, expected_state)
                if why:
                    raise StaleReferral(why)
            before = _local_state(locked)
            message = body(locked, ocean)
            _remember(message, locked, before)
            return message
    except _Duplicate:
        return _existing(referral, kind, idempotency_key)


def _local_state(referral) -> dict:
    """What a final refusal of the action puts back (ocean.refusals): the referral's own fields
    and its current appointment."""
    current = _current_appointment(referral)
    return {**referral_fields(referral), "attention": referral.attention,
            "appointment": current.pk if current else None,
            "appointment_cancelled": bool(current and current.cancelled)}


def _remember(message, referral, before) -> None:
    """Store, with the message, the state before the action and the state it left: Ocean refusing
    the message later undoes the action only if the referral is still in that state."""
    from harbour.referrals.staleness import state_token

    after = {**referral_fields(referral), "state_token": state_token(referral)}
    message.undo = {"before": before, "after": after}
    message.save(update_fields=["undo"])


def _set_status(referral, new_status, *, task_status="", reason="", user=None, outbound=None,
                confirmed=False) -> dict:
    m = _models()
    from harbour.referrals import lifecycle

    old = referral.status
    if new_status != old:
        m.StatusChange.objects.create(referral=referral, from_status=old, to_status=new_status,
                                      task_status=task_status[:30], reason=reason, actor=user,
                                      outbound_id=outbound.pk if outbound else None)
    referral.status = new_status
    referral.ocean_folder = lifecycle.ocean_folder(new_status, referral.direction, confirmed)
    return {"from": old, "to": new_status}


def _event(referral, code, params, key, user, outbound, kind) -> None:
    """Every update sent to Ocean leaves its timeline entry.

    The entry carries the key Ocean's echo will build, so the echo adds nothing. When an earlier
    entry already holds that key (e.g. a second change of the same appointment, same date, new
    instructions), this one still gets its entry, under the key made unique by the outbound id."""
    m = _models()
    key = key[:300]
    if key and m.Event.objects.filter(referral=referral, dedupe_key=key).exists():
        key = f"{key[:280]}#out:{outbound.pk}"
    m.Event.objects.create(clinic_id=referral.clinic_id, referral=referral, kind=f"harbour:{kind}", code=code,
                           params=params, dedupe_key=key, occurred_at=timezone.now(), actor=user,
                           outbound_id=outbound.pk)


def _save(referral, now) -> None:
    referral.last_activity_at = now
    referral.save(update_fields=["status", "ocean_folder", "ocean_task_status", "attention",
                                 "last_activity_at", "updated_at"])


def _first_task(referral) -> bool:
    """The first Task Harbour sends goes as notify-add-process-request (contract §3.2)."""
    sent = OutboundMessage.objects.filter(
        referral=referral, kind__in=[Kind.ACCEPT, Kind.DECLINE, Kind.COMPLETE, Kind.STATUS]).exists()
    return not sent and referral.ocean_task_status in ("", "requested", "received")


def _task_action(referral, user, kind, task_status, new_status, allowed, refused, reason, idempotency_key,
                 expected_state=None):
    def body(locked, ocean):
        _require_status(locked, allowed, refused)
        now = timezone.now()
        update = TaskUpdate(task_status, reason=reason or None, authored_on=now)
        try:
            bundle = build.build_task_message(outbox.context_for(locked, ocean), update,
                                              first=_first_task(locked), now=now)
        except BuildError as exc:
            raise ActionNotAllowed(_("This update cannot be sent to Ocean: %(why)s") % {"why": exc}) from None
        key = build.task_echo_key(task_status, now)
        message = _enqueue(locked, kind, bundle, user, idempotency_key, key)
        params = {"task_status": task_status, "reason": reason or "",
                  **_set_status(locked, new_status, task_status=task_status, reason=reason or "", user=user,
                                outbound=message)}
        locked.ocean_task_status = task_status
        _event(locked, "task_status", params, key, user, message, kind)
        _save(locked, now)
        return message

    return _run(referral, kind, idempotency_key, body, expected_state=expected_state)


# --- Actions ----------------------------------------------------------------------------------


def accept(referral, user, *, idempotency_key: str = "", expected_state: str | None = None) -> OutboundMessage:
    S = _models().Status
    return _task_action(referral, user, Kind.ACCEPT, "accepted", S.ACCEPTED,
                        (S.NEW, S.DECLINED, S.AWAITING_REPLY),
                        _("Only a new or declined referral can be accepted."), None, idempotency_key,
                        expected_state)


def decline(referral, user, reason: str, *, idempotency_key: str = "",
            expected_state: str | None = None) -> OutboundMessage:
    if not (reason or "").strip():
        raise ActionNotAllowed(_("Give the reason for declining; Ocean shows it to the referrer."))
    S = _models().Status
    return _task_action(referral, user, Kind.DECLINE, "rejected", S.DECLINED,
                        (S.NEW, S.ACCEPTED, S.AWAITING_REPLY),
                        _("Only a new or accepted referral can be declined."), reason.strip(), idempotency_key,
                        expected_state)


def complete(referral, user, *, idempotency_key: str = "", expected_state: str | None = None) -> OutboundMessage:
    S = _models().Status
    return _task_action(referral, user, Kind.COMPLETE, "completed", S.COMPLETED,
                        (S.ACCEPTED, S.BOOKED, S.AWAITING_REPLY),
                        _("Only an accepted or booked referral can be completed."), None, idempotency_key,
                        expected_state)


def _current_appointment(referral):
    return referral.appointments.filter(superseded=False).order_by("-id").first()


def _booking(start, end, duration, location, confirmed, instructions) -> AppointmentBooking:
    if start is not None and timezone.is_naive(start):
        start = timezone.make_aware(start)
    if end is not None and timezone.is_naive(end):
        end = timezone.make_aware(end)
    minutes = None
    if duration is not None:
        minutes = int(duration.total_seconds() // 60) if isinstance(duration, timedelta) else int(duration)
    if start is not None and timezone.localtime(start).date() > booking_horizon():
        raise ActionNotAllowed(_("An appointment can be booked at most %(years)d years ahead (until %(date)s); "
                                 "check the year.") % {"years": BOOKING_HORIZON_YEARS,
                                                        "date": formats.date_format(booking_horizon(), "DATE_FORMAT")})
    return AppointmentBooking(start=start, end=end, minutes_duration=minutes, confirmed=bool(confirmed),
                              instructions=(instructions or "").strip() or None,
                              location=(location or "").strip() or None)


def _appointment_changes(current, booking, minutes, start) -> list[str]:
    """What a rebooking changes in the current appointment, for its timeline entry."""
    changed = []
    if current.start != start:
        changed.append("start")
    if (current.minutes or None) != (minutes or None):
        changed.append("duration")
    if current.location != (booking.location or ""):
        changed.append("location")
    if bool(current.confirmed) != bool(booking.confirmed):
        changed.append("confirmed")
    if current.patient_instruction != (booking.instructions or ""):
        changed.append("instructions")
    return changed


def _appointment_action(referral, user, kind, booking, *, rebooking, idempotency_key, expected_state=None):
    m = _models()
    S = m.Status

    def body(locked, ocean):
        current = _current_appointment(locked)
        has_dated = current is not None and current.start is not None and not current.cancelled
        if rebooking:
            _require_status(locked, (S.BOOKED,), _("Only a booked referral can be rebooked."))
            if booking.start is None:
                raise ActionNotAllowed(_("Give the new date and time of the appointment."))
        else:
            _require_status(locked, (S.NEW, S.ACCEPTED, S.AWAITING_REPLY),
                            _("Only a new or accepted referral can be booked; use rebook to change a booking."))
            if has_dated:
                raise ActionNotAllowed(_("This referral already has an appointment; use rebook to change it."))
        now = timezone.now()
        ctx = outbox.context_for(locked, ocean)
        try:
            if rebooking:
                bundle = build.build_appointment_message(ctx, booking, update=TaskUpdate("accepted", authored_on=now),
                                                         now=now)
            else:
                bundle = build.build_appointment_message(ctx, booking, now=now)
        except BuildError as exc:
            raise ActionNotAllowed(_("This booking cannot be sent to Ocean: %(why)s") % {"why": exc}) from None
        appointment = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Appointment")
        start = booking.start
        end = datetime.fromisoformat(appointment["end"]) if appointment.get("end") else None
        participant = appointment["participant"][0]["status"]
        if start is not None:
            key = build.appointment_echo_key(start, participant, appointment["status"])
        else:
            from harbour.referrals.dedupe import digest

            key = "appointment:instructions:" + digest(booking.instructions)
        message = _enqueue(locked, kind, bundle, user, idempotency_key, key)
        changed = _appointment_changes(current, booking, appointment.get("minutesDuration"), start) \
            if rebooking and has_dated else []
        if current is not None:
            current.superseded = True
            current.save(update_fields=["superseded"])
        location = (booking.location or "")[:200] if start is not None else ""
        m.Appointment.objects.create(
            referral=locked, status=appointment["status"], start=start, end=end,
            minutes=appointment.get("minutesDuration"), participant_status=participant,
            confirmed=booking.confirmed and start is not None, patient_instruction=booking.instructions or "",
            location=location, outbound_id=message.pk,
        )
        if start is not None:
            code = "appointment_changed" if rebooking else "appointment_booked"
            params = {"start": start.isoformat(), "end": end.isoformat() if end else "", "confirmed": booking.confirmed,
                      "location": location}
            if rebooking:
                params["changed"] = changed
            _set_status(locked, S.BOOKED, user=user, outbound=message, confirmed=booking.confirmed)
            if locked.attention == "appointment_cancelled":
                locked.attention = ""
        else:
            code, params = "appointment_instructions", {}
            if locked.status != S.ACCEPTED:
                _set_status(locked, S.ACCEPTED, user=user, outbound=message)
        if rebooking:
            locked.ocean_task_status = "accepted"
        _event(locked, code, params, key, user, message, kind)
        _save(locked, now)
        return message

    return _run(referral, kind, idempotency_key, body, expected_state=expected_state)


def book(referral, user, start: datetime | None, end: datetime | None = None, *, duration=None,
         location: str = "", confirmed: bool = False, instructions: str = "",
         idempotency_key: str = "", expected_state: str | None = None) -> OutboundMessage:
    """Book (start with end or duration), or send booking instructions only (start None)."""
    booking = _booking(start, end, duration, location, confirmed, instructions)
    return _appointment_action(referral, user, Kind.BOOK, booking, rebooking=False, idempotency_key=idempotency_key,
                               expected_state=expected_state)


def rebook(referral, user, start: datetime, end: datetime | None = None, *, duration=None,
           location: str = "", confirmed: bool = False, instructions: str = "",
           idempotency_key: str = "", expected_state: str | None = None) -> OutboundMessage:
    booking = _booking(start, end, duration, location, confirmed, instructions)
    return _appointment_action(referral, user, Kind.REBOOK, booking, rebooking=True, idempotency_key=idempotency_key,
                               expected_state=expected_state)


def cancel_appointment(referral, user, reason: str, *, idempotency_key: str = "",
                       expected_state: str | None = None) -> OutboundMessage:
    if not (reason or "").strip():
        raise ActionNotAllowed(_("Give the reason for cancelling the appointment."))
    reason = reason.strip()
    m = _models()
    S = m.Status

    def body(locked, ocean):
        _require_status(locked, (S.BOOKED,), _("Only a booked referral has an appointment to cancel."))
        current = _current_appointment(locked)
        if current is None or current.start is None or current.cancelled:
            raise ActionNotAllowed(_("This referral has no appointment to cancel."))
        now = timezone.now()
        bundle = build.build_appointment_cancel_message(
            outbox.context_for(locked, ocean), reason, TaskUpdate("accepted", reason=reason, authored_on=now), now=now)
        from harbour.referrals.dedupe import appointment_cancelled_key

        key = appointment_cancelled_key(current.start)  # what processing builds from Ocean's echo
        message = _enqueue(locked, Kind.CANCEL_APPOINTMENT, bundle, user, idempotency_key, key)
        current.cancelled = True
        current.superseded = True
        current.save(update_fields=["cancelled", "superseded"])
        m.Appointment.objects.create(referral=locked, status="proposed", participant_status="needs-action",
                                     outbound_id=message.pk)
        params = {"start": current.start.isoformat(), "reason": reason, "by": "clinic",
                  **_set_status(locked, S.ACCEPTED, task_status="accepted", reason=reason, user=user,
                                outbound=message)}
        locked.ocean_task_status = "accepted"
        _event(locked, "appointment_cancelled", params, key, user, message, Kind.CANCEL_APPOINTMENT)
        _save(locked, now)
        return message

    return _run(referral, Kind.CANCEL_APPOINTMENT, idempotency_key, body, expected_state=expected_state)


def check_attachment(upload: FileUpload) -> OutgoingAttachment:
    """Size, type and content checks of a file attached to a message."""
    if not upload.data:
        raise ActionNotAllowed(_("The attached file is empty."))
    if len(upload.data) > max_attachment_bytes():
        raise ActionNotAllowed(_("The attached file is too large (at most %(mb)s MB).")
                               % {"mb": max_attachment_bytes() // (1024 * 1024)})
    content_type = (upload.content_type or "").split(";")[0].strip().lower()
    if content_type not in allowed_attachment_types():
        raise ActionNotAllowed(_("This type of file cannot be sent to Ocean. Send a PDF, PNG, JPEG or text file."))
    looks_right = _MAGIC.get(content_type)
    if looks_right and not looks_right(upload.data):
        raise ActionNotAllowed(_("The file's content does not match its type."))
    if content_type == "text/plain":
        try:
            upload.data.decode("utf-8")
        except UnicodeDecodeError:
            raise ActionNotAllowed(_("The file's content does not match its type.")) from None
    name = (upload.name or "").replace("\\", "/").rsplit("/", 1)[-1].strip()[:200] or "attachment"
    return OutgoingAttachment(title=name, content_type=content_type, data=upload.data)


def send_message(referral, user, text: str, attachment: FileUpload | None = None, *,
                 in_response_to: str | None = None, idempotency_key: str = "") -> OutboundMessage:
    """A message to the other side of the referral.

    On a received referral: to the referrer (send-communication-from-provider); Ocean files it
    under Awaiting Reply. On a copy of a referral the clinic sent: to the receiver
    (send-communication-from-requester, written as the referrer); a reply to the receiver's
    question takes the copy out of "Awaiting reply", as Ocean does. Nothing else changes on a
    sent copy: its status is the receiver's to change (§5.4).

    Messages on sent copies only when `messages_on_sent_copies()`; otherwise refused before
    anything else, nothing queued."""
    m = _models()
    on_sent_copies = messages_on_sent_copies()
    if not on_sent_copies and referral.direction == m.Direction.SENT:
        raise ActionNotAllowed(SENT_COPY_MESSAGES_IN_OCEAN)
    text = (text or "").strip()
    if not text and attachment is None:
        raise ActionNotAllowed(_("Write a message or attach a file."))
    outgoing_attachment = check_attachment(attachment) if attachment is not None else None

    def body(locked, ocean):
        now = timezone.now()
        # A person's name, else the clinic's: a login name is not shown to the other side as a name.
        sender = user.get_full_name().strip() if user else ""
        outgoing = OutgoingMessage(text=text, sender_name=sender or locked.clinic.name,
                                   attachment=outgoing_attachment, in_response_to=in_response_to, sent=now)
        from_requester = locked.direction == m.Direction.SENT
        try:
            bundle = build.build_communication_message(outbox.context_for(locked, ocean), outgoing, now=now,
                                                       from_requester=from_requester)
        except BuildError as exc:
            raise ActionNotAllowed(_("This message cannot be sent to Ocean: %(why)s") % {"why": exc}) from None
        key = build.communication_echo_key(text, now, outgoing_attachment.title if outgoing_attachment else None)
        if m.CommunicationMessage.objects.filter(referral=locked, dedupe_key=key).exists():
            # The same text in the same second (a second submit with another key): one is enough.
            raise ActionNotAllowed(_("The same message was just sent; it is not sent twice."))
        message = _enqueue(locked, Kind.MESSAGE, bundle, user, idempotency_key, key)
        m.CommunicationMessage.objects.create(
            referral=locked, direction=m.CommunicationMessage.Direction.FROM_US, text=text, sent_at=now,
            sender_name=outgoing.sender_name[:300],
            attachment_titles=[outgoing_attachment.title] if outgoing_attachment else [],
            in_response_to=[in_response_to] if in_response_to else [], dedupe_key=key, read_at=now,
            outbound_id=message.pk,
        )
        if not from_requester:
            # Ocean files the referral under Awaiting Reply; Harbour's own status stays (it is ours to track).
            locked.ocean_folder = m.OceanFolder.AWAITING_RESPONSE
        elif locked.status == m.Status.AWAITING_REPLY:
            # The clinic answered the receiver's question: back where the referral was before it.
            before = (locked.status_changes.filter(to_status=m.Status.AWAITING_REPLY)
                      .order_by("-id").values_list("from_status", flat=True).first())
            current = _current_appointment(locked)
            _set_status(locked, before or m.Status.NEW, user=user, outbound=message,
                        confirmed=bool(current and current.confirmed))
        _event(locked, "message_received", {"direction": "from_us", "sender": outgoing.sender_name}, key, user,
               message, Kind.MESSAGE)
        _save(locked, now)
        return message

    return _run(referral, Kind.MESSAGE, idempotency_key, body, sent_copy_ok=on_sent_copies)
