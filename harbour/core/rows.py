"""Plain INSERTs of model rows, for the worker's hot path (every inbound message runs them).

`Model.save()` and `bulk_create` compose their INSERT anew on every call, and a conflict they
should tolerate needs a savepoint around them: two or three statements and most of the time
spent on a new referral. Here the statement is written once per model and shape, values go
through each field's own `pre_save` and `get_db_prep_save` (what the ORM would write), and a
conflict to tolerate is the database's own `ON CONFLICT DO NOTHING`, so it needs no savepoint.
On PostgreSQL the statements run on harbour.core.cursors.bound_cursor, which prepares them.

No signals are sent: a caller whose model has receivers sends them itself. The connection is
taken once per call: each use of `django.db.connection` looks it up again through asgiref's
context-local storage, and the fields ask it for every value (a tenth of a new referral's time).
"""
from __future__ import annotations

import functools
from contextlib import contextmanager
from typing import NamedTuple

from django.db import DEFAULT_DB_ALIAS, connections

from .cursors import bound_cursor

# Rows per statement: within SQLite's limit on parameters, and a handful of statement shapes.
BATCH_ROWS = 50


class _Insert(NamedTuple):
    fields: list  # the columns written, in order
    head: str  # the statement up to VALUES
    row: str  # one row's placeholders
    tail: str  # what follows the rows


_INSERTS: dict[tuple, _Insert] = {}
_UPDATES: dict[tuple, tuple[str, list]] = {}


def _db():
    return connections[DEFAULT_DB_ALIAS]


def _insert_statement(db, model, ignore_conflicts: bool, returning: bool) -> _Insert:
    """Written once per vendor and shape."""
    key = (db.vendor, model, ignore_conflicts, returning)
    if key not in _INSERTS:
        quote = db.ops.quote_name
        fields = [f for f in model._meta.concrete_fields if not f.primary_key and not f.generated]
        head = "INSERT INTO {} ({}) VALUES ".format(
            quote(model._meta.db_table), ", ".join(quote(f.column) for f in fields)
        )
        # Without a conflict target, DO NOTHING covers every unique constraint of the table;
        # unlike SQLite's INSERT OR IGNORE, it never skips a row for a NOT NULL or CHECK failure.
        tail = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
        if returning:  # the id, and what the database computes (generated columns), as save() reads them
            tail += " RETURNING " + ", ".join(quote(f.column) for f in model._meta.db_returning_fields)
        _INSERTS[key] = _Insert(fields, head, "(" + ", ".join(["%s"] * len(fields)) + ")", tail)
    return _INSERTS[key]


def _values(db, obj, fields) -> list:
    return [f.get_db_prep_save(f.pre_save(obj, True), db) for f in fields]


def _saved(db, obj, returned) -> None:
    """Set what the INSERT returned on the instance, converted as the ORM converts it."""
    for field, value in zip(obj._meta.db_returning_fields, returned):
        column = field.get_col(obj._meta.db_table)
        for converter in db.ops.get_db_converters(column) + field.get_db_converters(db):
            value = converter(value, column, db)
        setattr(obj, field.attname, value)
    obj._state.adding = False
    obj._state.db = db.alias


def insert(objs, *, ignore_conflicts: bool = False) -> None:
    """Insert these rows of one model (their ids are not read back); with ignore_conflicts, a
    row that breaks a unique constraint is skipped, as bulk_create(ignore_conflicts=True) does."""
    if not objs:
        return
    db = _db()
    statement = _insert_statement(db, type(objs[0]), ignore_conflicts, returning=False)
    with bound_cursor(db) as cursor:
        for start in range(0, len(objs), BATCH_ROWS):
            batch = objs[start:start + BATCH_ROWS]
            cursor.execute(statement.head + ", ".join([statement.row] * len(batch)) + statement.tail,
                           [value for obj in batch for value in _values(db, obj, statement.fields)])


@contextmanager
def sent_together():
    """PostgreSQL: the statements run inside are sent one after the other without waiting for
    each answer (libpq's pipeline mode), and the answers are read at the end: one round trip
    instead of one per statement. An error comes out at the end, as Django's.

    Only for statements that read nothing back: `insert` and the form answers' INSERT. Until
    the answers are read, psycopg reports `rowcount` as -1, and Django relies on it (`save()`
    of an existing row, `save(update_fields=...)`, `update()`). Elsewhere: the statements as usual.
    """
    db = _db()
    if db.vendor != "postgresql" or not _pipeline_supported():
        yield
        return
    db.ensure_connection()
    with db.wrap_database_errors, db.connection.pipeline():
        yield


@functools.cache
def _pipeline_supported() -> bool:
    import psycopg

    return psycopg.Pipeline.is_supported()  # libpq 14 or newer


def insert_one(obj, *, ignore_conflicts: bool = False) -> bool:
    """Insert one row and set its id; False (nothing written) if ignore_conflicts and the row
    breaks a unique constraint: the fact it records is already there. Any other failure (NOT
    NULL, CHECK) is an IntegrityError."""
    db = _db()
    returning = db.features.can_return_columns_from_insert
    statement = _insert_statement(db, type(obj), ignore_conflicts, returning=returning)
    with bound_cursor(db) as cursor:
        cursor.execute(statement.head + statement.row + statement.tail, _values(db, obj, statement.fields))
        if returning:
            row = cursor.fetchone()
        else:  # SQLite before 3.35: the id from lastrowid; a row skipped by ON CONFLICT changed none
            row = (cursor.lastrowid,) if cursor.rowcount else None
    if row is None:
        return False
    _saved(db, obj, row)
    if not returning:  # the other generated values were not read back with the id
        generated = [f.attname for f in obj._meta.db_returning_fields if not f.primary_key]
        if generated:
            obj.refresh_from_db(fields=generated)
    return True


def update(obj, field_names) -> None:
    """UPDATE these fields of the instance's row, as save(update_fields=...) writes them."""
    db, model = _db(), type(obj)
    key = (db.vendor, model, tuple(field_names))
    if key not in _UPDATES:
        quote = db.ops.quote_name
        fields = [model._meta.get_field(name) for name in field_names]
        _UPDATES[key] = ("UPDATE {} SET {} WHERE {} = %s".format(
            quote(model._meta.db_table), ", ".join(f"{quote(f.column)} = %s" for f in fields),
            quote(model._meta.pk.column),
        ), fields)
    sql, fields = _UPDATES[key]
    with bound_cursor(db) as cursor:
        cursor.execute(sql, [*(f.get_db_prep_save(f.pre_save(obj, False), db) for f in fields), obj.pk])
