"""The inbound table's layout: the raw bytes out of the way of the columns the pages read.

On SQLite a row's columns are stored in order and a large value's tail goes to overflow pages, so
a column after the body is read through all of them (bench/inbound_list.py: the page filtered by
outcome went from a median of 146-193 ms to 33-39 ms with 20,000 messages once the body was last).
"""
import hashlib
import importlib

import pytest
from django.apps import apps
from django.db import IntegrityError, connection

from harbour.intake.models import InboundMessage

raw_bytes_last = importlib.import_module("harbour.intake.migrations.0005_raw_bytes_last").raw_bytes_last

TABLE = InboundMessage._meta.db_table
BODY = b'{"resourceType": "Bundle", "type": "message"}' + b" " * 20_000  # larger than a SQLite page


def columns() -> list[str]:
    with connection.cursor() as cursor:
        return [column.name for column in connection.introspection.get_table_description(cursor, TABLE)]


def add(clinic, n: int) -> InboundMessage:
    raw = BODY + str(n).encode()
    return InboundMessage.objects.create(
        clinic=clinic, raw=raw, sha256=hashlib.sha256(raw).hexdigest(), bundle_id=f"bundle-{n}",
        event_code="add-service-request", referral_ref=f"ref-{n}", state=InboundMessage.State.FAILED,
    )


def indexes() -> set[str]:
    with connection.cursor() as cursor:
        return set(connection.introspection.get_constraints(cursor, TABLE))


def move_raw_forward() -> None:
    """The layout before migration 0005 (SQLite): the other columns remade after the body (the
    clinic's key aside: a cloned foreign key cannot be resolved outside a migration's state)."""
    model = InboundMessage
    others = [field for field in model._meta.local_concrete_fields
              if not field.primary_key and not field.is_relation and field.name != "raw"]
    moved = []
    for field in others:
        same = field.clone()
        same.set_attributes_from_name(field.name)
        moved.append((field, same))
    with connection.schema_editor() as editor:
        editor._remake_table(model, alter_fields=moved)


@pytest.mark.django_db
def test_raw_bytes_are_out_of_the_way_of_the_other_columns():
    if connection.vendor == "sqlite":
        assert columns()[-1] == "raw"
    else:  # PostgreSQL moves large values out of the row itself (TOAST) whatever the column order
        with connection.cursor() as cursor:
            cursor.execute("SELECT attstorage FROM pg_attribute WHERE attrelid = %s::regclass AND attname = 'raw'",
                           [TABLE])
            assert cursor.fetchone() == ("x",)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("deleted", ["the newest", "all"])
def test_the_migration_keeps_every_message_and_never_reuses_an_id(clinic, deleted):
    if connection.vendor == "sqlite":
        move_raw_forward()
        assert columns()[:3] == ["id", "clinic_id", "raw"]
    before, indexes_before = columns(), indexes()
    assert {"inbound_unique_delivery", "inbound_by_clinic", "inbound_pending", "inbound_failed"} <= indexes_before
    messages = [add(clinic, n) for n in range(3)]
    newest = messages[-1].pk
    if deleted == "all":
        InboundMessage.objects.all().delete()
        kept = []
    else:
        InboundMessage.objects.filter(pk=newest).delete()
        kept = messages[:-1]

    with connection.schema_editor() as editor:
        raw_bytes_last(apps, editor)

    if connection.vendor == "sqlite":
        assert columns()[-1] == "raw"
        assert sorted(columns()) == sorted(before)
    else:
        assert columns() == before
    rows = {m.pk: m for m in InboundMessage.objects.all()}
    assert sorted(rows) == [m.pk for m in kept]
    for message in kept:
        row = rows[message.pk]
        assert bytes(row.raw) == bytes(message.raw)
        assert (row.clinic_id, row.bundle_id, row.sha256, row.state, row.received_at) == (
            clinic.pk, message.bundle_id, message.sha256, "failed", message.received_at)
    assert indexes() == indexes_before
    assert add(clinic, 9).pk > newest
    with pytest.raises(IntegrityError):  # the unique delivery constraint still holds
        add(clinic, 9)
