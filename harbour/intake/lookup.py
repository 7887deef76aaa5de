"""The intake's one read per call: whose key, the host's clinic, whether the caller is blocked, the last call.

Plain SQL built once per database vendor: the ORM spent longer composing this query (two
subqueries) than the database spent answering it, and it runs on every call. Being the call's
first statement, it also stands in for Django's connection health check (see cursor.py).
"""
from dataclasses import dataclass
from datetime import timedelta

from django.db import InterfaceError, OperationalError, connection

from harbour.clinics.models import ClinicDomain, OceanSettings
from harbour.intake.cursor import intake_cursor
from harbour.intake.models import RejectedCaller

_SQL: dict[str, str] = {}
# The settings page shows the last accepted call to the second; noting it again sooner, with
# the same result, would only add a write (a second SQLite write lock) to every call.
RECENT = timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class KeyOwner:
    clinic_id: int
    key_hash: str
    host_clinic_id: int | None  # the clinic whose domain the request's host is, if any
    blocked: bool  # the caller's address is blocked right now
    recent_result: str | None  # last_inbound_result, when noted within RECENT


def _column(model, field: str) -> str:
    return connection.ops.quote_name(model._meta.get_field(field).column)


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _sql() -> str:
    sql = _SQL.get(connection.vendor)
    if sql is None:
        s, d, r = OceanSettings, ClinicDomain, RejectedCaller
        sql = _SQL[connection.vendor] = (
            f"SELECT {_column(s, 'clinic')}, {_column(s, 'inbound_key_hash')}, "
            f"(SELECT {_column(d, 'clinic')} FROM {_table(d)} WHERE {_column(d, 'domain')} = %s), "
            f"(SELECT 1 FROM {_table(r)} WHERE {_column(r, 'address')} = %s AND {_column(r, 'blocked_until')} > %s), "
            f"CASE WHEN {_column(s, 'last_inbound_at')} > %s THEN {_column(s, 'last_inbound_result')} END "
            f"FROM {_table(s)} WHERE {_column(s, 'inbound_key_hash')} = %s"
        )
    return sql


def key_owner(key_hash: str, domain: str | None, throttle_key: str | None, now) -> KeyOwner | None:
    """The clinic holding this key hash (a unique column), or None. The caller compares the hashes."""
    adapt = connection.ops.adapt_datetimefield_value
    params = [domain or "", throttle_key or "", adapt(now), adapt(now - RECENT), key_hash]
    try:
        row = _fetch(params)
    except (OperationalError, InterfaceError):
        if connection.in_atomic_block:
            raise
        # A kept connection the server has dropped since (a restart, an idle timeout): the same
        # read once more on a new connection. A database that is really down fails again (503).
        connection.close()
        row = _fetch(params)
    if row is None:
        return None
    return KeyOwner(
        clinic_id=row[0], key_hash=row[1], host_clinic_id=row[2], blocked=row[3] is not None, recent_result=row[4]
    )


def _fetch(params):
    with intake_cursor() as cursor:
        cursor.execute(_sql(), params)
        return cursor.fetchone()
