import io
import os
import subprocess
import sys

import pytest

from harbour.clinics.models import Clinic, ClinicDomain, User, hash_inbound_key
from harbour.clinics.tenancy import clinic_for_host
from harbour.core import crypto
from tests.conftest import make_clinic


def run_python(code: str, **env) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "HARBOUR_ENCRYPTION_KEYS"}}
    full_env.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full_env, timeout=60)


def test_production_refuses_to_start_without_real_secrets(tmp_path):
    result = run_python(
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='harbour.settings'; django.setup()",
        HARBOUR_ENV="production",
        HARBOUR_VAR_DIR=str(tmp_path),
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set when HARBOUR_ENV=production" in result.stderr
    assert not (tmp_path / "dev-secrets.json").exists()


def test_development_generates_secrets_once_under_var(tmp_path):
    code = "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='harbour.settings'; django.setup(); from django.conf import settings; print(settings.SECRET_KEY)"
    first = run_python(code, HARBOUR_VAR_DIR=str(tmp_path))
    second = run_python(code, HARBOUR_VAR_DIR=str(tmp_path))
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout and len(first.stdout.strip()) > 40
    assert (tmp_path / "dev-secrets.json").stat().st_mode & 0o077 == 0


def test_secrets_round_trip_and_survive_key_rotation(settings):
    from cryptography.fernet import Fernet

    old_key = settings.HARBOUR_ENCRYPTION_KEYS[0]
    token = crypto.encrypt("s3cret")
    assert "s3cret" not in token
    settings.HARBOUR_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), old_key]
    assert crypto.decrypt(token) == "s3cret"
    settings.HARBOUR_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(ValueError):
        crypto.decrypt(token)


def test_inbound_key_is_hashed_and_compared(clinic):
    ocean = clinic.ocean
    raw = ocean.generate_inbound_key()
    assert len(raw) >= 43
    assert ocean.inbound_key_hash == hash_inbound_key(raw) != raw
    assert ocean.inbound_key_matches(raw)
    assert not ocean.inbound_key_matches(raw + "x")
    assert not ocean.inbound_key_matches("")


def test_request_host_selects_the_clinic(clinic, other_clinic):
    assert clinic_for_host("soleil.example.org") == clinic
    assert clinic_for_host("LUNE.example.org:8443") == other_clinic
    assert clinic_for_host("unknown.example.org") is None


@pytest.mark.django_db
def test_a_single_clinic_needs_no_domain():
    only = Clinic.objects.create(name="Seule")
    assert clinic_for_host("localhost:8000") == only
    assert not ClinicDomain.objects.exists()


@pytest.mark.django_db
def test_adding_a_clinic_with_a_domain_leaves_the_first_one_on_every_other_host():
    """A deployer's finding: the first clinic (no domain) was unreachable once a second was added."""
    first = Clinic.objects.create(name="Première")
    second = Clinic.objects.create(name="Deuxième")
    ClinicDomain.objects.create(clinic=second, domain="deux.example.org")
    assert clinic_for_host("deux.example.org") == second
    assert clinic_for_host("localhost:8000") == first
    third = Clinic.objects.create(name="Troisième")  # two clinics without a domain: no host says which
    assert clinic_for_host("localhost:8000") is None
    ClinicDomain.objects.create(clinic=third, domain="trois.example.org")
    assert clinic_for_host("localhost:8000") == first


def test_create_clinic_refuses_a_second_clinic_without_a_domain_and_a_bad_domain(db, settings):
    from django.core.management import CommandError, call_command

    settings.ALLOWED_HOSTS = ["un.example.org"]
    password = ["--password", "a-long-enough-pass-42"]
    call_command("create_clinic", "Une", "--admin", "une", *password, stdout=io.StringIO())
    with pytest.raises(CommandError, match=r"has no domain and already answers on every host .* own --domain"):
        call_command("create_clinic", "Deux", "--admin", "deux", *password)
    with pytest.raises(CommandError, match=r"Not a host name: 'not a domain!'"):
        call_command("create_clinic", "Deux", "--domain", "not a domain!", "--admin", "deux", *password)
    assert Clinic.objects.count() == 1 and not User.objects.filter(username="deux").exists()
    out, err = io.StringIO(), io.StringIO()
    call_command("create_clinic", "Deux", "--domain", "Deux.Example.org.", "--admin", "deux", *password,
                 stdout=out, stderr=err)
    assert ClinicDomain.objects.get().domain == "deux.example.org"
    first = Clinic.objects.get(name="Une")  # its id: PostgreSQL does not restart sequences between tests
    assert f"Clinic {first.pk} (Une) has no domain: it keeps every other host." in out.getvalue()
    assert "deux.example.org is not in HARBOUR_ALLOWED_HOSTS" in err.getvalue()


def test_harbour_help_lists_the_operator_commands():
    result = subprocess.run([sys.executable, "-m", "harbour.cli", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for command in ["serve", "worker", "sandbox", "create-clinic", "inspect", "demo"]:
        assert f"  {command} " in result.stdout


def test_create_clinic_command(db):
    from django.core.management import call_command

    call_command("create_clinic", "Clinique Test", "--domain", "test.example.org", "--admin", "boss", "--password", "a-long-enough-pass-42")
    clinic = Clinic.objects.get(name="Clinique Test")
    admin = clinic.users.get()
    assert admin.has_perm("clinics.manage_consultation_settings")
    assert admin.check_password("a-long-enough-pass-42")
    assert clinic.ocean.site_number == ""


def test_prepared_statements_can_be_turned_off_for_connection_poolers(monkeypatch):
    # Only bound_cursor binds on the server; psycopg prepares its statements after five runs
    # (tests/faults/test_prepared_statements.py), which a pooler in transaction mode (PgBouncer
    # before 1.21) does not keep.
    from harbour.settings import database_from_url

    url = "postgresql://harbour@db.example:5432/harbour"
    assert database_from_url(url)["OPTIONS"]["prepare_threshold"] == 5  # Django's default is None: never
    monkeypatch.setenv("HARBOUR_DB_PREPARED_STATEMENTS", "false")
    assert database_from_url(url)["OPTIONS"]["prepare_threshold"] is None
    assert "prepare_threshold" not in database_from_url("sqlite:////tmp/harbour-test.sqlite3")["OPTIONS"]


@pytest.mark.django_db
def test_a_clinic_domain_must_be_a_host_name_in_the_admin_too():
    from django.core.exceptions import ValidationError
    from django.utils import translation

    clinic = Clinic.objects.create(name="Une")
    for bad in ["not a domain!", "https://clinique.example.org", "clinique.example.org/path", "-bad.example.org"]:
        with translation.override("fr"), pytest.raises(ValidationError, match="Entrez un nom d'hôte"):
            ClinicDomain(clinic=clinic, domain=bad).full_clean()
        with translation.override("en"), pytest.raises(ValidationError, match="Enter a host name"):
            ClinicDomain(clinic=clinic, domain=bad).full_clean()
    for good in ["Clinique.Example.org", "localhost", "10.0.0.5", "clinique.example.org."]:
        ClinicDomain(clinic=clinic, domain=good).full_clean()
