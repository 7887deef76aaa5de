"""On SQLite, rebuild the inbound table with the raw bytes as its last column (models.py says why).

SQLite cannot move a column: the table is copied into a new one (Django's own way of altering a
SQLite table), which takes time and free disk space in proportion to the table: about 6 s for
20,000 messages of 17 KB (344 MB) here. PostgreSQL keeps large values out of the row already:
nothing to do there.
"""
from django.db import migrations


def raw_bytes_last(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "sqlite":
        return
    model = apps.get_model("intake", "InboundMessage")
    table = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = %s", [table])
        row = cursor.fetchone()
    raw = model._meta.get_field("raw")
    same = raw.clone()
    same.set_attributes_from_name(raw.name)
    # Altering a field remakes the table with that field last; this "alteration" changes nothing else.
    schema_editor._remake_table(model, alter_fields=[(raw, same)])
    if row is not None:
        # The copy restarts AUTOINCREMENT's counter at the highest id left; keep the old one, so
        # the id of a message ever deleted is never given to another.
        with connection.cursor() as cursor:
            cursor.execute("UPDATE sqlite_sequence SET seq = MAX(seq, %s) WHERE name = %s", [row[0], table])
            if cursor.rowcount == 0:  # no row copied: the new table has no counter yet
                cursor.execute("INSERT INTO sqlite_sequence (name, seq) VALUES (%s, %s)", [table, row[0]])


class Migration(migrations.Migration):
    dependencies = [
        ("intake", "0004_inbound_by_clinic_ascending"),
    ]

    operations = [
        # Column order means nothing to the models, so there is nothing to undo.
        migrations.RunPython(raw_bytes_last, migrations.RunPython.noop, elidable=True),
    ]
