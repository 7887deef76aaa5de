"""The OAuth secret never reaches the database file in clear (checked on the bytes of a real SQLite file).

This runs in a subprocess with its own HARBOUR_VAR_DIR and no DATABASE_URL, so it checks a SQLite
file even when the suite runs on PostgreSQL (there the cursor test in test_ocean_settings covers
the server's column).
"""
import os
import subprocess
import sys
from pathlib import Path

SECRET = "Plain-Oauth-Secret-4f1c9a"
CLIENT_ID = "visible-client-id-77aa"

SCRIPT = f"""
import os, django
os.environ["DJANGO_SETTINGS_MODULE"] = "harbour.settings"
django.setup()
from django.core.management import call_command
from django.db import connection
call_command("migrate", verbosity=0)
from harbour.clinics.models import Clinic, OceanSettings
clinic = Clinic.objects.create(name="Fichier")
ocean = OceanSettings.objects.create(clinic=clinic, oauth_client_id={CLIENT_ID!r})
ocean.set_client_secret({SECRET!r})
ocean.save()
assert OceanSettings.objects.get(pk=ocean.pk).get_client_secret() == {SECRET!r}
with connection.cursor() as cursor:
    cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
connection.close()
print(connection.settings_dict["NAME"])
"""


def test_the_sqlite_file_does_not_contain_the_secret(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "SECRET_KEY", "HARBOUR_ENCRYPTION_KEYS"}}
    env["HARBOUR_VAR_DIR"] = str(tmp_path)
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=120, cwd=Path(__file__).parents[2])
    assert result.returncode == 0, result.stderr
    database = Path(result.stdout.strip().splitlines()[-1])
    assert database.parent == tmp_path and database.exists()
    files = [path for path in tmp_path.iterdir() if path.name.startswith(database.name)]
    contents = b"".join(path.read_bytes() for path in files)
    assert CLIENT_ID.encode() in contents  # the right file: the row is there
    assert SECRET.encode() not in contents
