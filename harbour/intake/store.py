"""Store first: the raw message is committed before Ocean gets its 200."""
import hashlib
import logging
import time
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime

from django.db import DEFAULT_DB_ALIAS, DatabaseError, IntegrityError, InterfaceError, connections, transaction

from harbour.clinics.models import OceanSettings
from harbour.core.cursors import again_if_gone, bound_cursor
from harbour.fhir.model import Envelope
from harbour.intake import lookup
from harbour.intake.models import InboundMessage

log = logging.getLogger("harbour.intake")

# Bodies above this size are not left in the connection's buffers (see store_message).
RELEASE_CONNECTION_ABOVE = 1024 * 1024
_FIELD_LENGTHS = {f.name: f.max_length for f in InboundMessage._meta.fields if getattr(f, "max_length", None)}


def own_transaction(db=None):
    """A savepoint inside a transaction; outside one, nothing: each statement is its own.

    Outside a transaction (how the server runs) SQLite then holds its write lock only while a
    statement runs, not while Python builds it, which is what lets concurrent deliveries
    through. Inside one (tests, ATOMIC_REQUESTS) the savepoint keeps a failed statement from
    spoiling the caller's transaction.
    """
    db = db or connections[DEFAULT_DB_ALIAS]
    return transaction.atomic(using=db.alias) if db.in_atomic_block else nullcontext()


@dataclass(frozen=True)
class Stored:
    message_id: int
    duplicate: bool


@dataclass(frozen=True)
class Guard:
    """What the INSERT checks again in its own statement before it keeps anything: that this
    clinic holds the key, that the host is this clinic's or no clinic's, that the caller is not
    blocked (the key lookup's checks, see lookup.py)."""

    clinic_id: int
    key_hash: str
    domain: str | None
    throttle_key: str | None
    now: datetime


def clean_text(value, field: str) -> str:
    """A value that fits its column on every database: no NUL, no lone surrogate, not too long.

    Ids come from the sender; a column overflow would be a database error, hence a 503, hence
    Ocean retrying a message we could have kept.
    """
    if not value:
        return ""
    text = str(value).replace("\x00", "")
    text = text.encode("utf-8", "replace").decode("utf-8")
    return text[: _FIELD_LENGTHS[field]]


def result_label(envelope: Envelope, duplicate: bool) -> str:
    """What the settings page shows as the last inbound call, e.g. "200 add-service-request"."""
    label = f"200 {clean_text(envelope.event_code, 'event_code') or '(no event code)'}"
    return f"{label} (duplicate)" if duplicate else label


def store_message(*, guard: Guard, raw: bytes, envelope: Envelope, content_type: str, remote_addr: str | None) -> Stored | None:
    """Insert the message once (the unique constraint decides) and note the call on the settings row.

    None: the INSERT's own checks refused it (the key was replaced, or the caller blocked, since
    the lookup the caller relied on); nothing was kept. Database errors of the insert propagate
    (the caller answers 503). No check-then-insert: a duplicate, even one racing in from another
    process, fails the insert and the kept copy is looked up afterwards. The row is prepared
    before the database is touched.
    """
    clinic_id, now = guard.clinic_id, guard.now
    db = connections[DEFAULT_DB_ALIAS]  # once: each use of django.db.connection looks it up again
    bundle_id = clean_text(envelope.bundle_id, "bundle_id")
    sha256 = hashlib.sha256(raw).hexdigest()
    values = {
        "clinic": clinic_id,
        "received_at": now,
        "raw": raw,
        "sha256": sha256,
        "content_type": clean_text(content_type, "content_type"),
        "remote_addr": remote_addr,
        "bundle_id": bundle_id,
        "header_id": clean_text(envelope.header_id, "header_id"),
        "event_code": clean_text(envelope.event_code, "event_code"),
        "referral_ref": clean_text(envelope.referral_ref, "referral_ref"),
    }
    try:
        message_id = _insert(db, values, guard)
    except IntegrityError:
        kept = (
            InboundMessage.objects.filter(clinic_id=clinic_id, bundle_id=bundle_id, sha256=sha256)
            .values_list("pk", flat=True)
            .first()
        )
        if kept is None:  # some other integrity failure: never answer 200 for it
            raise
        stored = Stored(kept, duplicate=True)
    else:
        if message_id is None:
            return None
        stored = Stored(message_id, duplicate=False)
    note_accepted(clinic_id, result_label(envelope, stored.duplicate), now)
    if len(raw) > RELEASE_CONNECTION_ABOVE and not db.in_atomic_block:
        # A large body stays in the thread's connection after the INSERT: sqlite3 keeps each
        # cached statement with its last bound values, libpq its buffers at the size of the
        # largest statement sent. Every server thread would hold on to the largest body it
        # stored. Closing the connection frees it; the next call opens one.
        db.close()
    return stored


class _Insert:
    """One guarded INSERT of an InboundMessage, prepared once per database vendor.

    `INSERT ... SELECT <the row> WHERE <the guard>`: the row is kept only if the guard holds
    when the statement runs, so the key check and the storing are one statement, one round trip.

    Model.save() spent more time composing the statement (fifteen fields, signals, defaults)
    than the database spent running it. The SQL and the constant columns are built once; each
    call adapts only the values it brings, through each field's own get_db_prep_save, so
    the row is the same as the ORM would write.
    """

    def __init__(self, db):
        meta = InboundMessage._meta
        quote = db.ops.quote_name
        self.fields = [field for field in meta.concrete_fields if not field.primary_key]
        self.sql = (
            f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(field.column) for field in self.fields)}) "
            f"SELECT {', '.join(['%s'] * len(self.fields))} WHERE {lookup.guard_sql(db)}"
        )
        # Not on SQLite: with RETURNING, SQLite runs the INSERT in two steps and keeps its write lock
        # between them, while this thread waits to get Python's GIL back from the others (up to
        # the 5 ms switch interval), and every other writer of the server waits behind it. Without
        # it the whole statement, commit included, is one step inside SQLite, which releases its
        # lock before the thread needs the GIL again; the new id is the connection's last rowid.
        self.returning = db.features.can_return_columns_from_insert and db.vendor != "sqlite"
        if self.returning:
            self.sql += f" RETURNING {quote(meta.pk.column)}"
        self.constants = {
            field.name: field.get_db_prep_save(field.get_default(), db)
            for field in self.fields
            if field.name not in _ROW_VALUES
        }
        # Per column: a constant, the value as it is (text and ids, already cleaned to fit), or
        # the field's own adaptation (dates, bytes, addresses).
        self.columns = []
        for field in self.fields:
            if field.name not in _ROW_VALUES:
                self.columns.append((None, self.constants[field.name], None))
            elif field.get_internal_type() in _AS_IS:
                self.columns.append((field.name, None, None))
            else:
                self.columns.append((field.name, None, field))

    def params(self, db, values: dict, guard: Guard) -> list:
        """The statement's parameters, built before it runs."""
        params = [
            constant if name is None else values[name] if field is None else field.get_db_prep_save(values[name], db)
            for name, constant, field in self.columns
        ]
        params += [  # in lookup.guard_sql's order
            guard.clinic_id, guard.key_hash, guard.throttle_key or "", db.ops.adapt_datetimefield_value(guard.now),
            guard.domain or "", guard.clinic_id, guard.clinic_id,
        ]
        return params

    def run(self, db, params: list) -> int | None:
        """The new row's id, or None when the guard refused it."""
        with bound_cursor(db) as cursor:
            cursor.execute(self.sql, params)
            if self.returning:
                row = cursor.fetchone()
                return row[0] if row else None
            return cursor.lastrowid if cursor.rowcount else None


_ROW_VALUES = frozenset(
    {"clinic", "received_at", "raw", "sha256", "content_type", "remote_addr",
     "bundle_id", "header_id", "event_code", "referral_ref"}
)
_AS_IS = frozenset({"CharField", "TextField", "ForeignKey"})
_INSERTS: dict[str, _Insert] = {}


def _insert(db, values: dict, guard: Guard) -> int | None:
    """The guarded INSERT, its parameters built before the statement runs."""
    insert = _INSERTS.get(db.vendor)
    if insert is None:
        insert = _INSERTS[db.vendor] = _Insert(db)
    params = insert.params(db, values, guard)
    with own_transaction(db):
        return again_if_gone(db, lambda: insert.run(db, params))


# The settings page shows the last accepted call to the second; noting the same result again
# sooner would only add a write (a second SQLite write lock) to every call. Each process notes
# a clinic's result at most once a second: clinic id -> (result, time.monotonic() when noted).
RECENT_SECONDS = 1.0
_noted: dict[int, tuple[str, float]] = {}


def forget_noted() -> None:
    _noted.clear()


def note_accepted(clinic_id: int, result: str, now) -> None:
    """Last accepted call, for the settings page. Best effort: the message is already kept."""
    last = _noted.get(clinic_id)
    if last is not None and last[0] == result and time.monotonic() - last[1] < RECENT_SECONDS:
        return
    db = connections[DEFAULT_DB_ALIAS]
    try:
        with own_transaction(db):
            OceanSettings.objects.filter(clinic_id=clinic_id).update(last_inbound_at=now, last_inbound_result=result)
    except (DatabaseError, InterfaceError):
        log.warning("last inbound call of clinic %s could not be noted", clinic_id)
    else:
        _noted[clinic_id] = (result, time.monotonic())
