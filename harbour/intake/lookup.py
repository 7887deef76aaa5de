"""Whose key is it: the intake's read before it takes a body, and the memory that spares it.

`key_owner` reads in one statement the clinic holding a key hash, the clinic whose domain the
request's host is, and whether the caller's address is blocked. Plain SQL built once per
database vendor: the ORM spent longer composing this query (two subqueries) than the database
spent answering it. Being a call's first statement, it also stands in for Django's connection
health check (see cursor.py).

A key that passed is remembered (`remembered`/`remember`/`forget`) for the calls after it,
which then go straight to the INSERT: that INSERT checks the key, the host and the block again
in the same statement (store.py), so nothing remembered here can let a replaced key, another
clinic's host or a blocked caller in; a refusal there forgets the key and the call is answered
from a fresh read. What the memory saves is a round trip per delivery.
"""
import threading
import time
from dataclasses import dataclass

from django.db import DEFAULT_DB_ALIAS, connections

from harbour.clinics.models import ClinicDomain, OceanSettings
from harbour.core.cursors import again_if_gone, bound_cursor
from harbour.intake.models import RejectedCaller

_SQL: dict[str, str] = {}
REMEMBER_SECONDS = 60
REMEMBER_MAX = 4096  # (key, host) pairs per process; a deployment of thousands of clinics only reads more
_remembered: dict[tuple[str, str], tuple[int, float]] = {}
_remembered_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class KeyOwner:
    clinic_id: int
    key_hash: str
    host_clinic_id: int | None  # the clinic whose domain the request's host is, if any
    blocked: bool  # the caller's address is blocked right now


def remembered(key_hash: str, domain: str | None) -> int | None:
    """The clinic whose key this was on this host, if a call passed with it lately."""
    entry = _remembered.get((key_hash, domain or ""))
    if entry is None or entry[1] < time.monotonic():
        return None
    return entry[0]


def remember(key_hash: str, domain: str | None, clinic_id: int) -> None:
    with _remembered_lock:
        if len(_remembered) >= REMEMBER_MAX:
            _remembered.clear()
        _remembered[(key_hash, domain or "")] = (clinic_id, time.monotonic() + REMEMBER_SECONDS)


def forget(key_hash: str, domain: str | None) -> None:
    with _remembered_lock:
        _remembered.pop((key_hash, domain or ""), None)


def forget_all() -> None:
    with _remembered_lock:
        _remembered.clear()


def _column(db, model, field: str) -> str:
    return db.ops.quote_name(model._meta.get_field(field).column)


def _table(db, model) -> str:
    return db.ops.quote_name(model._meta.db_table)


def _sql(db) -> str:
    sql = _SQL.get(db.vendor)
    if sql is None:
        s, d, r = OceanSettings, ClinicDomain, RejectedCaller
        sql = _SQL[db.vendor] = (
            f"SELECT {_column(db, s, 'clinic')}, {_column(db, s, 'inbound_key_hash')}, "
            f"(SELECT {_column(db, d, 'clinic')} FROM {_table(db, d)} WHERE {_column(db, d, 'domain')} = %s), "
            f"(SELECT 1 FROM {_table(db, r)} WHERE {_column(db, r, 'address')} = %s "
            f"AND {_column(db, r, 'blocked_until')} > %s) "
            f"FROM {_table(db, s)} WHERE {_column(db, s, 'inbound_key_hash')} = %s"
        )
    return sql


def guard_sql(db) -> str:
    """The lookup's checks as a condition, for the WHERE of store.py's `INSERT ... SELECT`: the
    clinic holds the key, the caller is not blocked, the host is this clinic's or no clinic's.

    Parameters, in order: clinic id, key hash, caller (throttle key), now, host, clinic id, clinic id.
    """
    s, d, r = OceanSettings, ClinicDomain, RejectedCaller
    return (
        f"EXISTS (SELECT 1 FROM {_table(db, s)} WHERE {_column(db, s, 'clinic')} = %s "
        f"AND {_column(db, s, 'inbound_key_hash')} = %s) "
        f"AND NOT EXISTS (SELECT 1 FROM {_table(db, r)} WHERE {_column(db, r, 'address')} = %s "
        f"AND {_column(db, r, 'blocked_until')} > %s) "
        f"AND COALESCE((SELECT {_column(db, d, 'clinic')} FROM {_table(db, d)} WHERE {_column(db, d, 'domain')} = %s), %s) = %s"
    )


def key_owner(key_hash: str, domain: str | None, throttle_key: str | None, now) -> KeyOwner | None:
    """The clinic holding this key hash (a unique column), or None. The caller compares the hashes."""
    db = connections[DEFAULT_DB_ALIAS]
    params = [domain or "", throttle_key or "", db.ops.adapt_datetimefield_value(now), key_hash]
    row = again_if_gone(db, lambda: _fetch(db, params))
    if row is None:
        return None
    return KeyOwner(clinic_id=row[0], key_hash=row[1], host_clinic_id=row[2], blocked=row[3] is not None)


def _fetch(db, params):
    with bound_cursor(db) as cursor:
        cursor.execute(_sql(db), params)
        return cursor.fetchone()
