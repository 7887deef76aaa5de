"""A cursor that binds parameters on the server, for the statements that run on every call.

Used by the intake (the key lookup, the INSERT that stores a delivery) and by the worker's
plain INSERTs (harbour.core.rows). On PostgreSQL, Django's cursors bind parameters on the
client: each value, a body too, is escaped into the statement's text (a 16 KB body becomes a
32 KB hex literal, a 25 MB body a 50 MB one held in the web worker), and the server parses and
plans every statement anew. `bound_cursor` is a psycopg cursor that sends the parameters apart
from the statement, bytes as binary, and lets psycopg prepare the statement on the server after
five calls (unless HARBOUR_DB_PREPARED_STATEMENTS=false, for poolers that do not keep prepared
statements). Django's own wrapper is kept around it: its errors are Django's, and the
statements show in `connection.queries` (tests, DEBUG) with their parameters written in, as
Django's own cursors show them.

Django's per-request connection health check (a `SELECT 1` before the first statement, on
PostgreSQL) is not run for the intake's statements: instead `again_if_gone` runs a statement once
more on a new connection when the kept one turns out to be gone (a restart, an idle timeout),
which is what the check would have bought, without a round trip on every call. Safe for both
statements: the lookup only reads, and an INSERT that did reach the database before the
connection broke meets the unique delivery constraint the second time (a duplicate, answered 200).

Elsewhere than PostgreSQL: Django's cursor, as it is.
"""
from contextlib import contextmanager

from django.db import InterfaceError, OperationalError
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper


@contextmanager
def bound_cursor(db):
    """A cursor on `db` (a connection of django.db.connections)."""
    if db.vendor != "postgresql":
        with db.cursor() as cursor:
            yield cursor
        return
    import psycopg

    db.validate_thread_sharing()
    db.ensure_connection()
    with db.wrap_database_errors:
        raw = psycopg.Cursor(db.connection)
    wrapped = _ComposingDebugWrapper(raw, db) if db.queries_logged else db.make_cursor(raw)
    with wrapped as cursor:
        yield cursor


def again_if_gone(db, run):
    """run(); on PostgreSQL outside a transaction, once more on a new connection if that fails.

    A database that is really down fails the second time too (the endpoint answers 503). Not on
    SQLite: an embedded file has no connection to lose, and its "database is locked" would only
    be waited for twice.
    """
    try:
        return run()
    except (OperationalError, InterfaceError):
        if db.vendor != "postgresql" or db.in_atomic_block:
            raise
        db.close()
        return run()


class _ComposingDebugWrapper(CursorDebugWrapper):
    """Logs each statement with its parameters written in (Django would log the `$1` form)."""

    def execute(self, sql, params=None):
        with self.debug_sql(self.db.ops.compose_sql(sql, params)):
            return CursorWrapper.execute(self, sql, params)
