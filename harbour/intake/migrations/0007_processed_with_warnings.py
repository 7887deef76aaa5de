"""Warnings kept for translation, and "needs attention": processed messages with a warning that
may mean the referral was read wrong or in part (harbour.fhir.warning_text.ATTENTION_TEMPLATES).

Two columns, added without copying the table: on SQLite a new column comes after the raw bytes,
so the table is then remade once with them last again (0005 says why, and what it costs: about
6 s and the table's size in free disk space for 20,000 messages of 17 KB); Django's own AddField
would have copied it twice more. PostgreSQL adds them in place. Messages already processed with
such a warning are marked, so they are in the list at once; their warnings stay as stored (English).
"""
import importlib
import re

from django.db import migrations, models

raw_bytes_last = importlib.import_module("harbour.intake.migrations.0005_raw_bytes_last").raw_bytes_last

NEW_COLUMNS = {"needs_attention": "0", "warning_templates": "'[]'"}  # SQLite's default for the rows there


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


# ATTENTION_TEMPLATES as they were when this migration was written, as patterns of the English
# sentences stored so far (a migration does not follow the code's later changes).
ATTENTION_SENTENCES = re.compile("|".join(f"(?:{p})" for p in [
    r"the body is not a JSON object", r".+ is not an object", r".+ has no resource",
    r".+ resource has no resourceType", r".+ does not match any entry in the bundle",
    r".+ points to a .+, expected .+",
    r"the bundle could not be read completely \(internal reader error\)",
    r"the MessageHeader has no event code", r"the first entry is not a MessageHeader",
    r"the bundle has no MessageHeader", r"the MessageHeader focus does not resolve to any resource",
    r"the bundle has no ServiceRequest",
    r"no focus resource leads to a ServiceRequest; the bundle's first one was used",
    r"the referral ref in the MessageHeader differs from the ServiceRequest identifier",
    r"the header's referral reference differs from the ServiceRequest's",
    r"the message carries no referral ref", r"no referrer could be found",
    r"no referral target could be found", r"form items are nested too deeply; the deepest were left out",
    r"the bundle has no Patient", r"the ServiceRequest has no subject; the bundle's first Patient was used",
]))


def mark_messages_needing_attention(apps, schema_editor):
    model = apps.get_model("intake", "InboundMessage")
    rows = model.objects.filter(state="processed").exclude(warnings=[]).values_list("pk", "warnings")
    marked = [pk for pk, warnings in rows.iterator()
              if any(isinstance(w, str) and ATTENTION_SENTENCES.fullmatch(w) for w in warnings or [])]
    for start in range(0, len(marked), 500):
        model.objects.filter(pk__in=marked[start:start + 500]).update(needs_attention=True)


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
                    name="needs_attention",
                    field=models.BooleanField(default=False),
                ),
            ],
        ),
        migrations.RunPython(add_columns, drop_columns),
        # Column order means nothing to the models, so there is nothing to undo.
        migrations.RunPython(raw_bytes_last, migrations.RunPython.noop),
        migrations.RunPython(mark_messages_needing_attention, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="inboundmessage",
            index=models.Index(
                condition=models.Q(("needs_attention", True), ("state", "processed")),
                fields=["clinic", "received_at"], name="inbound_attention",
            ),
        ),
    ]
