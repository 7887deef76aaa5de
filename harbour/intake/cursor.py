"""The cursor the intake's two statements per call run on (the key lookup and the INSERT).

On PostgreSQL, Django's cursors bind parameters on the client: each value, the body too, is
escaped into the statement's text (a 16 KB body becomes a 32 KB hex literal, a 25 MB body a
50 MB one held in the web worker), and the server parses and plans every statement anew. Here
the intake uses a psycopg cursor that sends the parameters apart from the statement, the body
as binary, and lets psycopg prepare the statement on the server after a few calls (a
deployment behind a PgBouncer older than 1.21 sets `prepare_threshold` to None in the database
OPTIONS, as for any server-side binding). Django's own wrapper is kept around it: its errors
are Django's, and the statements show in `connection.queries` (tests, DEBUG) with their
parameters written in, as Django's own cursors show them.

Django's per-request connection health check (a `SELECT 1` before the first statement, on
PostgreSQL) is not run for these statements: the key lookup comes first and is retried once
on a fresh connection when the reused one turns out to be gone (`lookup.key_owner`), which is
what the check would have bought, without a round trip on every call.

Elsewhere than PostgreSQL: Django's cursor, as it is.
"""
from contextlib import contextmanager

from django.db import connection
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper


@contextmanager
def intake_cursor():
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            yield cursor
        return
    import psycopg

    connection.validate_thread_sharing()
    connection.ensure_connection()
    with connection.wrap_database_errors:
        raw = psycopg.Cursor(connection.connection)
    wrapped = _ComposingDebugWrapper(raw, connection) if connection.queries_logged else connection.make_cursor(raw)
    with wrapped as cursor:
        yield cursor


class _ComposingDebugWrapper(CursorDebugWrapper):
    """Logs each statement with its parameters written in (Django would log the `$1` form)."""

    def execute(self, sql, params=None):
        with self.debug_sql(self.db.ops.compose_sql(sql, params)):
            return CursorWrapper.execute(self, sql, params)
