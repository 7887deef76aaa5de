"""Warnings kept for translation, and "needs attention": processed messages that had warnings.

Two columns, added without copying the table: on SQLite a new column comes after the raw bytes,
so the table is then remade once with them last again (0005 says why, and what it costs: about
6 s and the table's size in free disk space for 20,000 messages of 17 KB); Django's own AddField
would have copied it twice more. PostgreSQL adds them in place. Messages already processed with
warnings are marked, so they are in the list at once; their warnings stay as stored (English).
"""
import importlib

from django.db import migrations, models

raw_bytes_last = importlib.import_module("harbour.intake.migrations.0005_raw_bytes_last").raw_bytes_last

NEW_COLUMNS = {"has_warnings": "0", "warning_templates": "'[]'"}  # SQLite's default for the rows there


def add_columns(apps, schema_editor):
    model = apps.get_model("intake", "InboundMessage")
    quote = schema_editor.quote_name
    for name, default in NEW_COLUMNS.items():
        field = model._meta.get_field(name)
        if schema_editor.connection.vendor != "sqlite":
            schema_editor.add_field(model, field)
            continue
        definition, params = schema_editor.column_sql(model, field)
        assert not params
        schema_editor.execute("ALTER TABLE {} ADD COLUMN {} {} DEFAULT {}".format(
            quote(model._meta.db_table), quote(field.column), definition, default))


def drop_columns(apps, schema_editor):
    model = apps.get_model("intake", "InboundMessage")
    for name in reversed(list(NEW_COLUMNS)):
        schema_editor.remove_field(model, model._meta.get_field(name))


def mark_processed_with_warnings(apps, schema_editor):
    model = apps.get_model("intake", "InboundMessage")
    model.objects.filter(state="processed").exclude(warnings=[]).update(has_warnings=True)


class Migration(migrations.Migration):
    dependencies = [
        ("clinics", "0002_domain_is_a_host_name"),
        ("intake", "0006_rate_limit_per_host"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name="inboundmessage",
                    name="warning_templates",
                    field=models.JSONField(blank=True, default=list),
                ),
                migrations.AddField(
                    model_name="inboundmessage",
                    name="has_warnings",
                    field=models.BooleanField(default=False),
                ),
            ],
        ),
        migrations.RunPython(add_columns, drop_columns),
        # Column order means nothing to the models, so there is nothing to undo.
        migrations.RunPython(raw_bytes_last, migrations.RunPython.noop),
        migrations.RunPython(mark_processed_with_warnings, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="inboundmessage",
            index=models.Index(
                condition=models.Q(("has_warnings", True), ("state", "processed")),
                fields=["clinic", "received_at"], name="inbound_attention",
            ),
        ),
    ]
