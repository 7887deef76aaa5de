"""harbour.core.rows: the worker's plain INSERTs write what the ORM would, and skip only conflicts."""
import datetime as dt

import pytest
from django.db import IntegrityError, connection, transaction
from django.forms.models import model_to_dict

from harbour.core import rows
from harbour.referrals.models import Event, Referral

pytestmark = pytest.mark.django_db

WHEN = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.timezone.utc)


def referral(clinic, ref, **fields):
    return Referral(clinic=clinic, ocean_ref=ref, last_activity_at=WHEN, patient_family="Bélanger",
                    patient_given="Élise", patient_birth_date=dt.date(1980, 1, 2), **fields)


def stored(obj):
    """The row as the ORM reads it back, without what differs between two rows by nature."""
    fresh = type(obj).objects.get(pk=obj.pk)
    values = model_to_dict(fresh)
    for name in ("id", "ocean_ref", "dedupe_key"):
        values.pop(name, None)
    values["created_at_set"] = fresh.created_at is not None
    return values


# The fallback exists for SQLite before 3.35 only; PostgreSQL always has RETURNING.
@pytest.fixture(params=["returning"] + (["without RETURNING"] if connection.vendor == "sqlite" else []))
def returning(request, monkeypatch):
    if request.param != "returning":
        monkeypatch.setattr(connection.features, "can_return_columns_from_insert", False)
    return request.param


def test_insert_one_writes_what_save_writes(clinic, returning, django_assert_num_queries):
    by_orm = referral(clinic, "orm")
    by_orm.save()
    plain = referral(clinic, "plain")
    assert rows.insert_one(plain) is True
    assert plain.pk and not plain._state.adding
    assert stored(plain) == stored(by_orm)
    # The database's generated columns are read back, as save() reads them (no query to load them later).
    with django_assert_num_queries(0):
        key = plain.patient_family_key
    assert key == by_orm.patient_family_key == "belanger"


def test_a_conflict_is_skipped_only_when_asked(clinic, returning):
    referral(clinic, "same").save()
    again = referral(clinic, "same", status="accepted")
    assert rows.insert_one(again, ignore_conflicts=True) is False
    assert again.pk is None
    assert Referral.objects.get(ocean_ref="same").status == "new"  # the stored one is untouched
    with pytest.raises(IntegrityError), transaction.atomic():
        rows.insert_one(referral(clinic, "same"))


def test_ignoring_conflicts_never_hides_another_failure(clinic, returning):
    broken = Referral(clinic=clinic, ocean_ref="x", last_activity_at=WHEN)
    broken.clinic_id = None  # NOT NULL: an error, not a conflict (SQLite's INSERT OR IGNORE would skip it)
    with pytest.raises(IntegrityError), transaction.atomic():
        rows.insert_one(broken, ignore_conflicts=True)


def test_insert_many_in_batches_skips_known_keys(clinic):
    parent = referral(clinic, "r")
    parent.save()

    def event(key, n=0):
        return Event(clinic=clinic, referral=parent, code="note", params={"n": n, "é": [1, None]},
                     dedupe_key=key, occurred_at=WHEN)

    rows.insert([event("seen")])
    count = rows.BATCH_ROWS * 2 + 3
    rows.insert([event(f"k{i}", i) for i in range(count)] + [event("seen", -1), event("")], ignore_conflicts=True)
    assert parent.events.count() == count + 2
    assert parent.events.get(dedupe_key="seen").params == {"n": 0, "é": [1, None]}  # the first one stays
    assert parent.events.get(dedupe_key="k7").occurred_at == WHEN
    with pytest.raises(IntegrityError), transaction.atomic():
        rows.insert([event("seen")])


def _event_of(parent, key):
    return Event(clinic=parent.clinic, referral=parent, code="note", params={}, dedupe_key=key, occurred_at=WHEN)


def _protocol(run) -> list[str]:
    """The messages this connection sent to PostgreSQL while run() ran (libpq's trace), by name."""
    import tempfile

    import psycopg

    connection.ensure_connection()
    pgconn = connection.connection.pgconn
    with tempfile.TemporaryFile("w+") as out:
        pgconn.trace(out.fileno())
        pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)
        try:
            run()
        finally:
            pgconn.untrace()
        out.seek(0)
        return [line.split("\t")[2] for line in out.read().splitlines() if line.startswith("F\t")]


def test_statements_sent_together_wait_for_one_answer_on_postgresql(clinic):
    """Three INSERTs: on PostgreSQL one Sync (one wait for the server) instead of three; elsewhere
    they run as usual, each at once."""
    parent = referral(clinic, "r")
    parent.save()

    def three(prefix):
        for i in range(3):
            rows.insert([_event_of(parent, f"{prefix}{i}")])
            if connection.vendor != "postgresql":  # already written: nothing is held back
                assert parent.events.filter(dedupe_key=f"{prefix}{i}").exists()

    def together():
        with rows.sent_together():
            three("t")

    if connection.vendor == "postgresql":
        one_by_one, sent_together = _protocol(lambda: three("o")), _protocol(together)
        assert one_by_one.count("Execute") == sent_together.count("Execute") == 3
        assert one_by_one.count("Sync") == 3
        assert sent_together.count("Sync") == 1
    else:
        together()
    assert parent.events.filter(dedupe_key__startswith="t").count() == 3


def test_an_error_among_statements_sent_together_is_djangos_and_keeps_nothing(clinic):
    parent = referral(clinic, "r")
    parent.save()
    rows.insert([_event_of(parent, "seen")])
    with pytest.raises(IntegrityError), transaction.atomic():
        with rows.sent_together():
            rows.insert([_event_of(parent, "before")])
            rows.insert([_event_of(parent, "seen")])  # breaks the unique dedupe key
            rows.insert([_event_of(parent, "after")])
    assert list(parent.events.values_list("dedupe_key", flat=True)) == ["seen"]
    rows.insert([_event_of(parent, "later")])  # the connection is usable again
    assert parent.events.count() == 2
