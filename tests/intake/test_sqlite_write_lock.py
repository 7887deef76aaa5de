"""On SQLite the intake's INSERT holds the database's write lock only inside SQLite (store._Insert).

With RETURNING, SQLite runs an INSERT in two steps and keeps its write lock between them, while the
thread waits for Python's GIL: every other writer of the server waited behind it. These tests use
a SQLite file of their own (the test database may be PostgreSQL, or SQLite in memory).
"""
import sqlite3
from datetime import datetime, timezone

import pytest
from django.db import connection
from django.db.utils import ConnectionHandler

from harbour.clinics.models import Clinic, ClinicDomain, OceanSettings
from harbour.intake import store
from harbour.intake.models import InboundMessage, RejectedCaller

KEY_HASH = "k" * 64
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def file_db(tmp_path, django_db_blocker):
    django_db_blocker.unblock()  # a database of the test's own, not the test database
    path = tmp_path / "h.sqlite3"
    db = ConnectionHandler({"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(path)}})["default"]
    with db.schema_editor() as editor:
        for model in (Clinic, OceanSettings, ClinicDomain, RejectedCaller, InboundMessage):
            editor.create_model(model)
    with db.cursor() as cursor:  # only the tables the INSERT reads exist (not the users settings rows name)
        cursor.execute("PRAGMA foreign_keys = OFF")
    row(db, Clinic, id=1, name="A")
    row(db, OceanSettings, clinic_id=1, inbound_key_hash=KEY_HASH)
    yield db, path
    db.close()
    django_db_blocker.restore()


def row(db, model, **values):
    """A row of `model` with its fields' defaults and `values` (by column), in plain SQL."""
    columns = {f.column: f.get_db_prep_save(NOW if f.get_internal_type() == "DateTimeField" and not f.null
                                            else f.get_default(), db)
               for f in model._meta.concrete_fields if not f.primary_key}
    columns.update(values)
    with db.cursor() as cursor:
        cursor.execute(f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) "
                       f"VALUES ({', '.join(['%s'] * len(columns))})", list(columns.values()))


def insert(db, bundle_id: str, on_execute=None):
    """The intake's guarded INSERT on `db`; `on_execute` runs the moment the statement's execute returns."""
    run = store._Insert(db)
    values = {"clinic": 1, "received_at": NOW, "raw": b"{}", "sha256": "0" * 64, "content_type": "", "remote_addr": None,
              "bundle_id": bundle_id, "header_id": "", "event_code": "", "referral_ref": ""}
    params = run.params(db, values, store.Guard(1, KEY_HASH, None, None, NOW))
    if on_execute is None:
        return run.run(db, params)
    with db.cursor() as cursor:
        cursor.execute(run.sql, params)
        on_execute()
        if run.returning:
            return cursor.fetchone()[0]
        return cursor.lastrowid if cursor.rowcount else None


def test_the_write_lock_is_free_once_the_statement_returns(file_db):
    db, path = file_db
    other = sqlite3.connect(path, timeout=0, isolation_level=None)  # another writer, which does not wait
    written = []

    def another_writer_gets_in():
        other.execute("BEGIN IMMEDIATE")  # takes the write lock: fails at once if the INSERT still has it
        other.execute("ROLLBACK")
        written.append(True)

    assert not store._Insert(db).returning
    first = insert(db, "b-1", on_execute=another_writer_gets_in)
    assert written == [True] and first == 1
    other.close()


def test_the_new_id_and_a_refused_guard_without_returning(file_db):
    db, _ = file_db
    first, second = insert(db, "b-1"), insert(db, "b-2")
    with db.cursor() as cursor:
        cursor.execute("SELECT id, bundle_id FROM intake_inboundmessage ORDER BY id")
        assert cursor.fetchall() == [(first, "b-1"), (second, "b-2")]
    with db.cursor() as cursor:  # the clinic no longer holds the key: nothing kept, no id
        cursor.execute("UPDATE clinics_oceansettings SET inbound_key_hash = 'other'")
    assert insert(db, "b-3") is None
    with db.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM intake_inboundmessage")
        assert cursor.fetchone() == (2,)


def test_only_sqlite_leaves_returning_out(db):
    # PostgreSQL's INSERT is one statement either way; RETURNING gives the id in the same round trip.
    assert store._Insert(connection).returning == (connection.vendor == "postgresql")
