"""Migrations run cleanly on the suite's engine (SQLite or PostgreSQL): from an empty database,
back to empty, and from every earlier schema with a row in every table.

No release is tagged yet, so "every earlier release" is taken as every state a later migration
can meet: one forward pass from empty stops just before each Harbour migration that is not its
app's first, and gives every table of that state a row (historical models, values made up from
the column types) before going on. A migration that adds a NOT NULL column without a default,
or a data migration that trips on existing rows, fails here; so does a backward migration that
cannot undo itself with rows present. Runs in a database of its own on the suite's engine.
"""
import copy
import datetime
import decimal
import uuid
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connections
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from tests.servers import _postgres_database

ALIAS = "migrations_check"


@pytest.mark.django_db
def test_makemigrations_finds_nothing_missing():
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)  # exits non-zero when a model changed
    assert "No changes detected" in out.getvalue()


@pytest.fixture
def empty_database(tmp_path, django_db_blocker):
    """A connection alias to a new, empty database on the suite's engine."""
    settings_dict = copy.deepcopy(connections["default"].settings_dict)
    drop = None
    if settings_dict["ENGINE"].endswith("sqlite3"):
        settings_dict["NAME"] = str(tmp_path / "migrations.sqlite3")
    else:
        url, drop = _postgres_database("harbour_migrations")
        settings_dict["NAME"] = url.rsplit("/", 1)[1].split("?", 1)[0]
    settings_dict["TEST"] = {**settings_dict.get("TEST", {}), "NAME": settings_dict["NAME"]}
    connections.settings[ALIAS] = settings_dict
    with django_db_blocker.unblock():
        yield connections[ALIAS]
        connections[ALIAS].close()
    del connections[ALIAS]
    del connections.settings[ALIAS]
    if drop:
        drop()


def latest(executor) -> list:
    return executor.loader.graph.leaf_nodes()


def zero(executor) -> list:
    return [(app, None) for app in {node[0] for node in executor.loader.graph.nodes}]


def migrate(connection, targets) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor


def _harbour_later_migrations(executor) -> list:
    """Every Harbour migration that is not its app's first, in the order a fresh migrate runs them."""
    plan = executor.migration_plan(latest(executor), clean_start=True)
    return [m for m, _ in plan if m.app_label in _harbour_apps() and m.name.split("_")[0] != "0001"]


def _harbour_apps() -> set:
    from django.apps import apps

    return {config.label for config in apps.get_app_configs() if config.name.startswith("harbour.")}


def _targets_before(executor, migration) -> list:
    """The state a fresh migrate reaches just before `migration` runs."""
    plan = executor.migration_plan(latest(executor), clean_start=True)
    reached: dict[str, str | None] = {app: None for app, _ in executor.loader.graph.nodes}
    for applied, _ in plan:
        if (applied.app_label, applied.name) == (migration.app_label, migration.name):
            break
        reached[applied.app_label] = applied.name
    return list(reached.items())


def _made_up(field, rows):
    kind = field.get_internal_type()
    if field.is_relation:
        return _row(field.related_model, rows)
    if kind in {"CharField", "TextField", "SlugField"}:
        return "seed"[: field.max_length or 4]
    made_up = {
        "EmailField": "seed@example.org", "URLField": "https://seed.example.org", "GenericIPAddressField": "127.0.0.1",
        "BooleanField": False, "DateTimeField": timezone.now(), "DateField": datetime.date(2025, 1, 2),
        "TimeField": datetime.time(9, 30), "DurationField": datetime.timedelta(seconds=1), "UUIDField": uuid.uuid4(),
        "BinaryField": b"seed", "JSONField": {}, "DecimalField": decimal.Decimal("0"), "FloatField": 0.0,
        "FileField": "seed.txt",
    }
    if kind in made_up:
        return made_up[kind]
    if "IntegerField" in kind:
        return 1
    raise AssertionError(f"no made-up value for {field.model.__name__}.{field.name} ({kind})")


def _row(model, rows):
    """One row of `model` (a historical model): the one already there, else a new one."""
    key = model._meta.label_lower
    if key not in rows:
        existing = model.objects.using(ALIAS).first()
        if existing is None:
            values = {}
            for field in model._meta.concrete_fields:
                if field.primary_key and field.get_internal_type().endswith("AutoField"):
                    continue
                if field.null and field.is_relation:
                    continue
                if field.has_default() and not field.is_relation:
                    continue
                values[field.name] = _made_up(field, rows)
            existing = model.objects.using(ALIAS).create(**values)
        rows[key] = existing
    return rows[key]


def _seed(executor) -> set:
    state = executor.loader.project_state(list(executor.loader.applied_migrations))
    rows: dict = {}
    for model in state.apps.get_models():
        if model._meta.app_label in _harbour_apps() and model._meta.managed and not model._meta.proxy:
            _row(model, rows)
    return set(rows)


def test_from_empty_to_latest_with_rows_in_every_table_then_back_to_empty(empty_database):
    """One forward pass that stops before each later migration to give every table a row,
    then the whole way back to an empty database (with those rows still there)."""
    executor = MigrationExecutor(empty_database)
    later = _harbour_later_migrations(executor)
    assert later, "no later migration to check: the test would check nothing"
    seeded: set = set()
    for migration in later:
        executor = migrate(empty_database, _targets_before(executor, migration))
        seeded |= _seed(executor)
    executor = migrate(empty_database, latest(executor))
    assert not executor.migration_plan(latest(executor)), "something left unapplied"
    state = executor.loader.project_state(list(executor.loader.applied_migrations))
    kept = 0
    for label in seeded:
        try:
            model = state.apps.get_model(*label.split("."))
        except LookupError:  # a model a later migration deleted
            continue
        assert model.objects.using(ALIAS).exists(), f"{label} lost its rows on the way to the latest state"
        kept += 1
    assert kept >= 10, f"only {kept} tables were checked"

    executor = migrate(empty_database, zero(executor))
    tables = set(empty_database.introspection.table_names())
    assert tables <= {"django_migrations"}, f"tables left after migrating to zero: {sorted(tables)}"
