"""Turn one stored inbound message into referral changes and timeline entries.

`process_message(inbound)` reads the raw bytes with the pure reader (harbour.fhir.read), then
applies the message in one transaction with the referral row locked, so two workers never
interleave on one referral. The caller (harbour.intake.jobs) records the outcome on the
InboundMessage.

Idempotence: facts that can arrive again (a Task status, an appointment, a message, an
attachment; Ocean repeats all of them in every cumulative bundle and echoes Harbour's own)
each get a timeline Event with a `dedupe_key` that the database keeps unique per referral.
A fact whose key already exists has happened: it changes nothing and adds no entry.

New rows are written by plain INSERTs (harbour.core.rows: the ORM's composing was most of the
time), and an expected conflict is the database's ON CONFLICT DO NOTHING, not a savepoint. They
send no signals: the referral's post_save is sent by hand (the patients queue listens to it).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone as dt_timezone

from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models.signals import post_save
from django.utils import timezone

from harbour.core import rows
from harbour.core.cursors import bound_cursor
from harbour.fhir import codes
from harbour.fhir.model import NO_REFERRAL_REFERENCE, Message
from harbour.fhir.read import is_cancelled_status, read_message
from harbour.fhir.warning_text import WarningText
from harbour.intake.body import BodyNotJSON, parse_json
from harbour.intake.models import InboundMessage

from . import dedupe, lifecycle, snapshot
from .models import (
    Appointment, Attachment, CommunicationMessage, Direction, Event, FormAnswer, Referral,
    Status, StatusChange,
)

log = logging.getLogger("harbour.referrals")

CREATING_EVENTS = frozenset({codes.ADD_SERVICE_REQUEST, codes.NOTIFY_ADD_SERVICE_REQUEST})
ATTENTION_APPOINTMENT_CANCELLED = "appointment_cancelled"
# Timeline entries that tell staff nothing new: they neither mark the referral unread nor move it up.
QUIET_CODES = frozenset({"no_change", "older_not_applied"})


class ProcessingError(Exception):
    """A failure whose message is written by us and safe to store (never patient data)."""


@dataclass
class ProcessResult:
    state: str  # an InboundMessage.State value: processed or unknown_event
    referral_id: int | None = None
    referral_ref: str = ""
    warnings: list[str] = field(default_factory=list)  # English WarningTexts (harbour.fhir.warning_text)
    events_added: int = 0


def process_message(inbound: InboundMessage) -> ProcessResult:
    """Apply one inbound message. Raises ProcessingError (safe text) or any bug's exception;
    either way nothing is half-applied (one transaction)."""
    try:
        # The endpoint's own parser: whatever it acknowledged as JSON (a byte order mark, numbers
        # beyond a double) must be readable here, since Ocean never resends what got a 200.
        obj = parse_json(bytes(inbound.raw))
    except BodyNotJSON:
        raise ProcessingError("the stored body is not valid JSON") from None
    message = read_message(obj)
    # No savepoint of its own: a failure rolls back the caller's (the job's) savepoint.
    with transaction.atomic(savepoint=False):
        return _Apply(inbound, message).run()


_iso = dedupe.iso
_digest = dedupe.digest


_FORM_INSERT: dict[str, str] = {}


def _insert_form_answers(answers: list[tuple]) -> None:
    """One INSERT of plain values for a form's answers (a real referral has dozens).

    bulk_create built a model and adapted every field of every row, most of a new referral's
    processing time; these columns are text, integers and a boolean, which every driver takes as
    is. On PostgreSQL the answers go as one array per column (`unnest`): a short statement that
    is prepared once, where a multi-row VALUES past 50 parameters is parsed by psycopg on every
    call (a third less time, measured). Elsewhere a multi-row VALUES, in batches within
    SQLite's limit on parameters.
    """
    if not answers:
        return
    db = connections[DEFAULT_DB_ALIAS]  # once: each use of django.db.connection looks it up again
    columns = ["referral_id", "position", "link_id", "label", "answers", "hidden", "form_number", "form"]
    sql = _FORM_INSERT.get(db.vendor)
    if sql is None:
        quote = db.ops.quote_name
        assert {f.column for f in FormAnswer._meta.concrete_fields} == {"id", *columns}  # no column forgotten
        sql = "INSERT INTO {} ({}) ".format(quote(FormAnswer._meta.db_table), ", ".join(quote(c) for c in columns))
        if db.vendor == "postgresql":
            types = [FormAnswer._meta.get_field(c).db_type(db) for c in ("referral", *columns[1:])]
            sql += "SELECT * FROM unnest({})".format(", ".join(f"%s::{t}[]" for t in types))
        else:
            sql += "VALUES "
        _FORM_INSERT[db.vendor] = sql
    with bound_cursor(db) as cursor:
        if db.vendor == "postgresql":
            cursor.execute(sql, [list(column) for column in zip(*answers)])
            return
        for start in range(0, len(answers), 100):
            batch = answers[start:start + 100]
            cursor.execute(sql + ", ".join([f"({', '.join(['%s'] * len(columns))})"] * len(batch)),
                           [value for row in batch for value in row])


_REFERRAL_ID: dict[str, str] = {}


def _locked_referral_id(clinic_id: int, ref: str) -> int | None:
    """The id of the clinic's referral with this reference, locked for the running transaction
    (FOR UPDATE where the database has it; SQLite's IMMEDIATE transaction already holds the
    write lock), or None when it does not exist yet.

    A plain statement: the ORM spent longer composing its 60-column `SELECT ... FOR UPDATE`
    than the database spent answering, and for a new referral the answer is "none".
    """
    db = connections[DEFAULT_DB_ALIAS]
    sql = _REFERRAL_ID.get(db.vendor)
    if sql is None:
        quote = db.ops.quote_name
        sql = "SELECT {id} FROM {table} WHERE {clinic} = %s AND {ref} = %s".format(
            id=quote("id"), table=quote(Referral._meta.db_table), clinic=quote("clinic_id"), ref=quote("ocean_ref"),
        )
        if db.features.has_select_for_update:
            sql += " FOR UPDATE"
        _REFERRAL_ID[db.vendor] = sql
    with bound_cursor(db) as cursor:
        cursor.execute(sql, [clinic_id, ref])
        row = cursor.fetchone()
    return row[0] if row else None


class _Apply:
    def __init__(self, inbound: InboundMessage, message: Message):
        self.inbound = inbound
        self.message = message
        self.clinic = inbound.clinic
        self.warnings: list[str] = list(message.warnings)
        self.events_added = 0
        self.referral: Referral | None = None
        self.booking_confirmed: bool | None = None  # None: unchanged by this message
        self.deferred_events: list[Event] = []  # inserted together at the end
        self.created = False
        self.saved_values: dict = {}
        self.news = 0  # entries added that staff have not seen (not "no change" or "older")
        self.referrer_wrote = False

    # --- entry point -----------------------------------------------------------------

    def run(self) -> ProcessResult:
        message = self.message
        # The reader's one choice (the header's identifier, else the ServiceRequest's), which the
        # intake stored with the message and `inspect` prints; it warns when the two differ.
        ref = (message.referral_ref or "").strip()[:200]

        if message.event is None:
            return self._not_understood(ref)
        if not ref:
            raise ProcessingError(NO_REFERRAL_REFERENCE)

        referral, created = self._lock_or_create(ref)
        self.referral, self.created = referral, created
        self.saved_values = self._values(referral)
        self._apply(created)
        return ProcessResult(
            state=InboundMessage.State.PROCESSED, referral_id=referral.pk, referral_ref=ref,
            warnings=self.warnings, events_added=self.events_added,
        )

    def _not_understood(self, ref: str) -> ProcessResult:
        """Unknown event: acknowledged and kept; a "not understood" entry if we know the referral."""
        referral = None
        if ref:
            referral = Referral.objects.select_for_update().filter(clinic=self.clinic, ocean_ref=ref).first()
        if referral is not None:
            self.referral = referral
            self._event("not_understood", {"event_code": (self.message.event_code or "")[:100]},
                        key=self._msg_key("not_understood"))
            self._flush_events()
            self._touch(referral)
            referral.save(update_fields=["last_activity_at", "updated_at"])
        return ProcessResult(
            state=InboundMessage.State.UNKNOWN_EVENT, referral_id=referral.pk if referral else None,
            referral_ref=ref, warnings=self.warnings, events_added=self.events_added,
        )

    # --- the referral row --------------------------------------------------------------

    def _site_number(self) -> str:
        try:
            return self.clinic.ocean.site_number
        except Exception:  # no OceanSettings row yet: nothing configured
            return ""

    def _lock_or_create(self, ref: str) -> tuple[Referral, bool]:
        creating = self.message.event in CREATING_EVENTS
        if not creating:  # an update: the referral is most likely there
            pk = _locked_referral_id(self.clinic.pk, ref)
            if pk is not None:
                return Referral.objects.get(pk=pk), False
        referral = Referral(
            clinic=self.clinic, ocean_ref=ref, last_activity_at=self.inbound.received_at or timezone.now(),
            first_seen_in_update=not creating,
        )
        snapshot.apply_snapshot(referral, snapshot.snapshot_fields(self.message))
        referral.snapshot_at = self.message.timestamp
        referral.ocean_server = self._ocean_server()
        referral.direction = lifecycle.direction_for(self.clinic, self._site_number(), self.message.target)
        referral.ocean_folder = lifecycle.ocean_folder(referral.status, referral.direction)
        if not rows.insert_one(referral, ignore_conflicts=True):
            # It exists: Ocean resent it, or another worker created it since our read. Use it, locked.
            return Referral.objects.get(pk=_locked_referral_id(self.clinic.pk, ref)), False
        # The plain INSERT sends no signal; the patients queue listens for new referrals.
        post_save.send(sender=Referral, instance=referral, created=True, update_fields=None, raw=False,
                       using=connection.alias)
        return referral, True

    def _ocean_server(self) -> str:
        endpoint = self.message.source_endpoint or ""
        marker = "/svc/fhir/"
        return endpoint.split(marker, 1)[0][:300] if marker in endpoint else ""

    def _touch(self, referral: Referral) -> None:
        received = self.inbound.received_at or timezone.now()
        if referral.last_activity_at is None or received > referral.last_activity_at:
            referral.last_activity_at = received

    # --- applying --------------------------------------------------------------------

    def _apply(self, created: bool) -> None:
        referral, message = self.referral, self.message
        event = message.event
        newer = created or self._is_newer(referral)
        old_status = referral.status

        # A new referral's form and documents: written at the end with the timeline entries, in one
        # round trip (rows.sent_together); nothing in between reads them.
        new_form, new_attachments = [], []
        if created:
            self._event("first_seen_in_update" if referral.first_seen_in_update else "referral_received",
                        {"direction": referral.direction}, key=self._msg_key("created"))
            new_attachments, _ = self._new_attachments(existing={})
            self._attachment_events(new_attachments)
            new_form = self._form_rows()
        elif newer:
            if event in CREATING_EVENTS:
                self._event("referral_resent", {}, key=self._msg_key("resent"))
            elif event == codes.NOTIFY_DATA_CORRECTION:
                self._event("data_corrected", {}, key=self._msg_key("data_corrected"))
            self._apply_snapshot()
            if referral.direction == Direction.UNKNOWN:
                referral.direction = lifecycle.direction_for(self.clinic, self._site_number(), message.target)
        else:
            self.warnings.append(WarningText("older than the referral's latest snapshot: not applied"))
            if not self._message_has_events():
                # Not when a person reprocesses a message applied before: nothing arrived late then.
                self._event("older_not_applied", {"bundle_timestamp": _iso(message.timestamp)},
                            key=self._msg_key("older"))

        if newer:
            self._apply_tasks()
            self._apply_appointments()
        # Messages are additive and deduplicated: an older bundle may still bring one.
        self._apply_communications()
        if event == codes.REVOKE_SERVICE_REQUEST or (referral.ocean_status or "").strip().lower() == "revoked":
            self._cancel_by_sender()

        if not self.events_added and not self._message_has_events():
            # Nothing new (a repeat, or Ocean's echo of our own change): still one entry per message.
            self._event("no_change", {}, key=self._msg_key("no_change"))

        if self.news:
            # Only what staff have not seen makes the referral unread and moves it up the list: not
            # a repeat, an older bundle, or Ocean's echo of Harbour's own update (§2.1 stance).
            self._touch(referral)
        confirmed = self.booking_confirmed
        if confirmed is None:
            confirmed = referral.ocean_folder == lifecycle.OceanFolder.BOOKING_CONFIRMED
        folder = lifecycle.ocean_folder(referral.status, referral.direction, confirmed)
        if (referral.ocean_folder == lifecycle.OceanFolder.AWAITING_RESPONSE and referral.status == old_status
                and not self.referrer_wrote):
            # Harbour's message to the referrer put it there (actions.send_message): it stays
            # until the referrer writes back or the referral's status moves (§3.2, §5.1).
            folder = lifecycle.OceanFolder.AWAITING_RESPONSE
        referral.ocean_folder = folder
        if referral.status != old_status and referral.status == Status.CANCELLED:
            referral.attention = ""
        with rows.sent_together():
            _insert_form_answers(new_form)
            rows.insert(new_attachments)
            self._flush_events()
        changed = [name for name, value in self._values(referral).items() if self.saved_values.get(name) != value]
        if changed:
            referral.save(update_fields=[*changed, "updated_at"])

    def _flush_events(self) -> None:
        if self.deferred_events:
            # Only message-level entries (or any entry of a brand-new referral) are deferred; on a
            # reprocess their keys exist already and the database skips them.
            rows.insert(self.deferred_events, ignore_conflicts=True)
            self.deferred_events = []

    _FIELDS = [f.attname for f in Referral._meta.concrete_fields if f.name not in ("id", "created_at", "updated_at")]

    def _values(self, referral: Referral) -> dict:
        return {name: getattr(referral, name) for name in self._FIELDS}

    def _is_newer(self, referral: Referral) -> bool:
        ts = self.message.timestamp
        if ts is None:
            self.warnings.append(WarningText("the bundle has no timestamp: applied as the newest"))
            return True
        return referral.snapshot_at is None or ts >= referral.snapshot_at

    def _apply_snapshot(self) -> None:
        referral, message = self.referral, self.message
        fields = snapshot.snapshot_fields(message)
        changed = snapshot.apply_snapshot(referral, fields)
        if message.timestamp is not None:
            referral.snapshot_at = message.timestamp
        if message.source_endpoint:
            referral.ocean_server = self._ocean_server() or referral.ocean_server
        for group, names in changed.items():
            if group == "form":
                self._replace_form()
                self._event("form_changed", {}, key=self._msg_key("form"))
                continue
            names = [n for n in names if n != "ocean_status"]
            if not names:
                continue
            params = {"group": group, "fields": names}
            if group == "patient":
                params["protected"] = sorted(snapshot.PROTECTED_PATIENT_FIELDS.intersection(names))
            self._event("fields_changed", params, key=self._msg_key(f"fields:{group}"))
        existing = {key: (pk, removed) for key, pk, removed in
                    referral.attachments.values_list("key", "id", "removed")}
        self._write_attachments(existing)

    # --- form and attachments -----------------------------------------------------------

    def _replace_form(self) -> None:
        FormAnswer.objects.filter(referral=self.referral).delete()
        _insert_form_answers(self._form_rows())

    def _form_rows(self) -> list[tuple]:
        """Every eForm's items, one form after the other (a referral may carry several)."""
        items = [(number, form, item) for number, form in enumerate(self.message.forms) for item in form.items]
        return [
            (self.referral.pk, position, (item.link_id or "")[:200], item.label or "", "\n".join(item.answers),
             bool(item.hidden), number, (form.reference or "")[:200])
            for position, (number, form, item) in enumerate(items)
        ]

    def _new_attachments(self, existing: dict) -> tuple[list[Attachment], set]:
        """The message's documents that `existing` (key -> (pk, removed)) lacks, and every key it names."""
        referral = self.referral
        seen, new = set(), []
        for att in self.message.attachments:
            key = f"{att.kind}:{att.identifier or att.url or att.title or ''}"[:500]
            if att.kind == "attachment" and att.content_index:
                # A document with several files: each is kept (the letter's other renderings are not).
                key = f"{key[:480]}#{att.content_index}"
            if key in seen:
                continue
            seen.add(key)
            if key in existing:
                continue
            new.append(Attachment(
                referral=referral, kind=att.kind, key=key, identifier=(att.identifier or "")[:200],
                url=(att.url or "")[:1000], title=(att.title or "")[:500],
                content_type=(att.content_type or "")[:100], size=att.size, created=att.creation,
                ocean_status=(att.status or "")[:30],
            ))
        return new, seen

    def _attachment_events(self, new: list[Attachment]) -> None:
        for att in new:
            self._event("attachment_added", {"kind": att.kind, "title": att.title}, key=dedupe.attachment_key(att.key))

    def _write_attachments(self, existing: dict) -> None:
        new, seen = self._new_attachments(existing)
        if new:
            rows.insert(new)
            self._attachment_events(new)
        if not self.message.attachments:
            return  # a bundle without documents says nothing about removals
        gone = [pk for key, (pk, removed) in existing.items() if key not in seen and not removed]
        back = [pk for key, (pk, removed) in existing.items() if key in seen and removed]
        if gone:
            Attachment.objects.filter(pk__in=gone).update(removed=True)
            self._event("attachments_removed", {"count": len(gone)}, key=self._msg_key("attachments_removed"))
        if back:
            Attachment.objects.filter(pk__in=back).update(removed=False)

    # --- status ---------------------------------------------------------------------------

    def _set_status(self, new: str, *, task_status: str = "", reason: str = "") -> dict:
        referral = self.referral
        old = referral.status
        referral.status = new
        rows.insert([StatusChange(
            referral=referral, from_status=old, to_status=new, task_status=task_status[:30],
            reason=reason, inbound_message=self.inbound,
        )])
        return {"from": old, "to": new}

    def _apply_tasks(self) -> None:
        """Ocean's Task statuses (§5.1). A Task with `authoredOn` is a fact keyed by status and time,
        so cumulative bundles and the echo of Harbour's own Task (which carries the time Harbour
        wrote) add nothing. Ocean does not always send `authoredOn` (§4.1 does not list it): an
        undated Task is read as Ocean's current Task status, and is a new fact only when it differs
        from the status Harbour last knew, its own updates included (`ocean_task_status`)."""
        tasks = sorted(
            (t for t in self.message.tasks if t.status),
            key=lambda t: (t.last_modified or t.authored_on or datetime.min.replace(tzinfo=dt_timezone.utc)),
        )
        dated = [t for t in tasks if t.authored_on is not None]
        undated = [t for t in tasks if t.authored_on is None][-1:]  # the latest is the current status
        for task in dated:
            self._apply_task(task, task.status.strip().lower(), dedupe.task_key(task.status, task.authored_on))
        for task in undated:
            status = task.status.strip().lower()
            if status == self.referral.ocean_task_status or self._predates_our_task_update():
                continue
            self._apply_task(task, status, self._msg_key(f"task:{status}"))

    def _apply_task(self, task, status: str, key: str) -> None:
        new = lifecycle.status_for_task(status, self.referral.status)
        params = {"task_status": status, "reason": task.status_reason or ""}
        if new:
            params.update({"from": self.referral.status, "to": new})
        if not self._event("task_status", params, key=key):
            return  # seen before (cumulative bundle, or the echo of our own Task)
        if new:
            self._set_status(new, task_status=status, reason=task.status_reason or "")
        self.referral.ocean_task_status = status[:30]

    def _predates_our_task_update(self) -> bool:
        """The bundle was written before Harbour's latest Task update (one still on its way, or
        sent while this bundle was): its Task shows the status ours replaced, not a change in Ocean.
        An update Ocean refused never reached it: it does not count."""
        from harbour.ocean.models import OutboundMessage

        ts = self.message.timestamp
        if ts is None:
            return False
        refused = OutboundMessage.objects.filter(referral=self.referral, state=OutboundMessage.State.REJECTED)
        ours = (Event.objects.filter(referral=self.referral, code="task_status", outbound_id__isnull=False)
                .exclude(outbound_id__in=refused.values("pk"))
                .order_by("-occurred_at").values_list("occurred_at", flat=True).first())
        if ours is not None and ts < ours:
            self.warnings.append(WarningText("a Task status older than Harbour's own latest update: not applied"))
            return True
        return False

    def _cancel_by_sender(self) -> None:
        if self.referral.status == Status.CANCELLED:
            return
        params = self._set_status(Status.CANCELLED)
        self._event("cancelled_by_sender", params, key="revoked")

    # --- appointments -------------------------------------------------------------------

    def _apply_appointments(self) -> None:
        appointments = self.message.appointments
        if not appointments:
            return
        referral = self.referral
        current = None
        if not referral._state.adding:
            current = referral.appointments.filter(superseded=False).order_by("-id").first()
        fingerprints = [self._fingerprint(a) for a in appointments]
        if current is None:
            todo = list(appointments)
        else:
            stored = (current.status, _iso(current.start), _iso(current.end), current.participant_status,
                      current.patient_instruction)
            matches = [i for i, fp in enumerate(fingerprints) if fp == stored]
            # Cumulative bundles repeat earlier appointments: only what follows the current one is new.
            todo = list(appointments[matches[-1] + 1:]) if matches else [appointments[-1]]
        for appt in todo:
            current = self._apply_appointment(appt, current)

    @staticmethod
    def _fingerprint(appt) -> tuple:
        return (appt.status or "", _iso(appt.start), _iso(appt.end), appt.participant_status or "",
                appt.patient_instruction or "")

    def _apply_appointment(self, appt, current: Appointment | None) -> Appointment:
        """One new appointment statement. Effects follow the stored appointments; the dedupe key
        only keeps the timeline free of repeats (e.g. Ocean's echo of Harbour's own booking)."""
        referral = self.referral
        row = Appointment(
            referral=referral, status=(appt.status or "")[:30], start=appt.start, end=appt.end,
            minutes=appt.minutes_duration if appt.minutes_duration and appt.minutes_duration > 0 else None,
            participant_status=(appt.participant_status or "")[:30],
            confirmed=(appt.participant_status or "").lower() == "accepted",
            patient_instruction=appt.patient_instruction or "",
            appointment_type=(appt.appointment_type or "")[:200], inbound_message=self.inbound,
        )
        dated_before = current is not None and current.start is not None and not current.cancelled
        cancelled_status = is_cancelled_status(appt.status)
        if appt.is_cancellation_signal:  # undated, or a cancelled status (the reader's rule)
            if dated_before or (cancelled_status and appt.start is not None):
                # §5.2: an undated appointment after a dated one = cancelled in Ocean.
                start = current.start if dated_before else row.start
                self._event("appointment_cancelled", {"start": _iso(start)},
                            key=dedupe.appointment_cancelled_key(start))
                if dated_before:
                    current.cancelled = True
                row.cancelled = cancelled_status
                if referral.status == Status.BOOKED:
                    self._set_status(Status.ACCEPTED)
                referral.attention = ATTENTION_APPOINTMENT_CANCELLED
                self.booking_confirmed = False
            elif appt.patient_instruction:
                self._event("appointment_instructions", {},
                            key="appointment:instructions:" + _digest(appt.patient_instruction))
        else:
            code = "appointment_changed" if dated_before else "appointment_booked"
            params = {"start": _iso(appt.start), "end": _iso(appt.end), "confirmed": row.confirmed}
            self._event(code, params, key=dedupe.appointment_key(appt.start, row.participant_status, row.status))
            # A booking re-opens a declined referral (§5.1: Declined is re-openable by a later event).
            if referral.status not in (Status.BOOKED, Status.COMPLETED) \
                    and referral.status not in lifecycle.TERMINAL_FOR_OCEAN:
                self._set_status(Status.BOOKED)
            if referral.attention == ATTENTION_APPOINTMENT_CANCELLED:
                referral.attention = ""
            self.booking_confirmed = row.confirmed
        if current is not None:
            current.superseded = True
            current.save(update_fields=["superseded", "cancelled"])
        rows.insert_one(row)
        return row

    # --- messages ---------------------------------------------------------------------------

    def _apply_communications(self) -> None:
        referral = self.referral
        for comm in self.message.communications:
            text = "\n\n".join(t for t in comm.payload_texts if t)
            if not text and not comm.attachment_titles and not comm.attachment_urls:
                continue
            key = dedupe.communication_key(comm.payload_texts, comm.sent, comm.attachment_titles or comm.attachment_urls)
            direction = self._communication_direction(comm.sender)
            if not rows.insert_one(CommunicationMessage(
                referral=referral, direction=direction, text=text, sent_at=comm.sent,
                sender_name=(comm.sender or "")[:300], identifier=(comm.identifier or "")[:200],
                attachment_titles=list(comm.attachment_titles), attachment_urls=list(comm.attachment_urls),
                in_response_to=list(comm.in_response_to), dedupe_key=key, inbound_message=self.inbound,
            ), ignore_conflicts=True):
                continue  # already in the thread (cumulative bundle, or our own message echoed)
            self._event("message_received", {"direction": direction, "sender": comm.sender or ""}, key=key)
            self._after_message(direction)

    def _communication_direction(self, sender: str | None) -> str:
        if self.referral.direction != Direction.SENT:
            return CommunicationMessage.Direction.FROM_REFERRER
        # On a copy of a referral the clinic sent, the referrer is the clinic itself.
        same = sender and self.referral.referrer_name and sender.strip().lower() == self.referral.referrer_name.lower()
        return CommunicationMessage.Direction.FROM_US if same else CommunicationMessage.Direction.FROM_RECEIVER

    def _after_message(self, direction: str) -> None:
        referral = self.referral
        if direction == CommunicationMessage.Direction.FROM_REFERRER:
            self.referrer_wrote = True
        if referral.status in lifecycle.TERMINAL_FOR_OCEAN:
            return
        if direction == CommunicationMessage.Direction.FROM_RECEIVER and referral.status != Status.AWAITING_REPLY:
            # Ocean: the receiver asked, the sender must reply; a declined referral re-opens (§5.1).
            self._set_status(Status.AWAITING_REPLY)
        elif direction == CommunicationMessage.Direction.FROM_REFERRER and referral.status == Status.AWAITING_REPLY:
            # The referrer answered our question: back where the referral was before.
            before = (referral.status_changes.filter(to_status=Status.AWAITING_REPLY)
                      .order_by("-id").values_list("from_status", flat=True).first())
            self._set_status(before or Status.ACCEPTED)

    # --- timeline -----------------------------------------------------------------------------

    def _msg_key(self, what: str) -> str:
        return f"msg:{self.inbound.pk}:{what}"

    def _message_has_events(self) -> bool:
        # Reprocessing an already processed message: its entries exist, add nothing.
        return Event.objects.filter(referral=self.referral, inbound_message=self.inbound).exists()

    def _event(self, code: str, params: dict, *, key: str) -> bool:
        """Add a timeline entry; False if one with this key exists (the fact is not new)."""
        event = Event(
            clinic=self.clinic, referral=self.referral, kind=(self.message.event_code or "")[:100],
            code=code, params=params, dedupe_key=key[:300], occurred_at=self.message.timestamp,
            inbound_message=self.inbound,
        )
        if self.created or key.startswith("msg:"):
            # Cannot be a repeat (a new referral has no entries; message keys are ours alone):
            # no need to ask the database now.
            self.deferred_events.append(event)
        elif not rows.insert_one(event, ignore_conflicts=True):
            return False
        self.events_added += 1
        if code not in QUIET_CODES:
            self.news += 1
        return True
