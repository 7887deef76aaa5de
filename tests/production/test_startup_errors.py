"""A deployer's mistakes stop `harbour` with one clear line, not a traceback or a later 500.

Each test runs `.venv/bin/harbour` as a subprocess with its own environment and var folder.
"""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from harbour.core.env import fernet_keys, safe_error_line
from tests.production.conftest import PRODUCTION_ENV, settings_in_process
from tests.servers import ROOT, free_port

HARBOUR = Path(sys.executable).parent / "harbour"
GOOD_KEY = Fernet.generate_key().decode()
BAD_KEY = "notafernetkey"
PASSWORD = "s3cret-pass-word"


def clean_env(var_dir: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HARBOUR_", "SANDBOX_", "SECRET_KEY", "DJANGO_SETTINGS", "DATABASE_URL"))}
    env.update({"HARBOUR_VAR_DIR": str(var_dir), "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


def harbour(env: dict, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([str(HARBOUR), *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def assert_one_line(result: subprocess.CompletedProcess, *expected: str, code: int = 2) -> str:
    """Exit status `code`, no traceback, and stderr one 'harbour: ...; ...' line holding `expected`."""
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == code, (result.returncode, result.stderr)
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("harbour: ") and "; " in line, line
    for text in expected:
        assert text in line, line
    return line


@pytest.fixture(scope="module")
def migrated(tmp_path_factory) -> dict:
    """The environment of a development Harbour whose SQLite database is migrated."""
    env = clean_env(tmp_path_factory.mktemp("migrated-var"))
    result = harbour(env, "migrate", "--verbosity", "0", timeout=180)
    assert result.returncode == 0, result.stderr
    return env


# 1. Encryption keys --------------------------------------------------------------------------


def test_fernet_keys_names_the_position_of_a_bad_key_never_the_key():
    assert fernet_keys("HARBOUR_ENCRYPTION_KEYS", f" {GOOD_KEY} ") == [GOOD_KEY]
    with pytest.raises(ImproperlyConfigured) as error:
        fernet_keys("HARBOUR_ENCRYPTION_KEYS", f"{GOOD_KEY},{BAD_KEY}")
    assert "HARBOUR_ENCRYPTION_KEYS: key 2 of 2 is not a Fernet key" in str(error.value)
    assert BAD_KEY not in str(error.value) and GOOD_KEY not in str(error.value)
    assert error.value.__cause__ is None and error.value.__suppress_context__
    with pytest.raises(ImproperlyConfigured, match="key 1 of 1"):
        fernet_keys("HARBOUR_ENCRYPTION_KEYS", GOOD_KEY[:-2])  # 31 bytes
    with pytest.raises(ImproperlyConfigured, match="empty"):
        fernet_keys("HARBOUR_ENCRYPTION_KEYS", " , ")


@pytest.mark.parametrize("command", [["migrate"], ["check"], ["worker", "--once"], ["rotate-keys"], ["serve"]])
def test_a_malformed_encryption_key_is_refused_at_startup(tmp_path, command):
    env = clean_env(tmp_path, HARBOUR_ENCRYPTION_KEYS=f"{GOOD_KEY},{BAD_KEY}")
    result = harbour(env, *command)
    assert_one_line(result, "HARBOUR_ENCRYPTION_KEYS", "key 2 of 2", "Fernet")
    assert BAD_KEY not in result.stderr + result.stdout and GOOD_KEY not in result.stderr + result.stdout


# 2. One line for configuration and connection errors ---------------------------------------


def test_production_without_secret_key_is_one_line(tmp_path):
    env = clean_env(tmp_path, **{**PRODUCTION_ENV, "SECRET_KEY": ""})
    for command in (["check"], ["migrate"], ["worker"], ["serve"]):
        assert_one_line(harbour(env, *command), "SECRET_KEY must be set when HARBOUR_ENV=production")


@pytest.mark.parametrize("url, expected", [
    ("nonsense", "DATABASE_URL cannot be read"),
    ("postgresx://harbour:" + PASSWORD + "@db/harbour", "DATABASE_URL cannot be read"),
    ("mysql://harbour:" + PASSWORD + "@db/harbour", "Harbour runs on PostgreSQL or SQLite"),
])
def test_a_database_url_harbour_cannot_use_is_one_line(tmp_path, url, expected):
    env = clean_env(tmp_path, DATABASE_URL=url)
    for command in (["migrate"], ["check"]):
        result = harbour(env, *command)
        assert_one_line(result, expected)
        assert PASSWORD not in result.stderr


def test_an_unreachable_postgresql_is_one_line_without_the_password(tmp_path):
    url = f"postgresql://harbour:{PASSWORD}@127.0.0.1:{free_port()}/harbour"
    env = clean_env(tmp_path, DATABASE_URL=url)
    for command in (["migrate"], ["serve", "--migrate"], ["worker", "--once"]):
        result = harbour(env, *command)
        line = assert_one_line(result, "cannot connect to the database", "Connection refused", "DATABASE_URL", code=3)
        assert PASSWORD not in line and url not in line


def test_an_unusable_var_folder_is_one_line(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    env = clean_env(blocker / "var")
    assert_one_line(harbour(env, "check"), "dev-secrets.json", "HARBOUR_VAR_DIR")
    env.update(SECRET_KEY="x" * 50, HARBOUR_ENCRYPTION_KEYS=GOOD_KEY)
    assert_one_line(harbour(env, "migrate"), "SQLite database", "HARBOUR_VAR_DIR")


def test_a_real_bug_keeps_its_traceback(migrated):
    result = harbour(migrated, "manage", "shell", "-c", "raise RuntimeError('a real bug')")
    assert result.returncode != 0
    assert "Traceback" in result.stderr and "RuntimeError: a real bug" in result.stderr


def test_safe_error_line_keeps_connection_reasons_and_drops_anything_else():
    refused = Exception('connection failed: connection to server at "127.0.0.1", port 1 failed: Connection refused\nmore')
    assert safe_error_line(refused) == (
        'Exception: connection failed: connection to server at "127.0.0.1", port 1 failed: Connection refused'
    )
    assert safe_error_line(ValueError(f"invalid dsn: postgresql://u:{PASSWORD}@h/db")) == "ValueError"
    leaky = ValueError(f"Connection refused for postgresql://u:{PASSWORD}@h/db password={PASSWORD}")
    assert PASSWORD not in safe_error_line(leaky)


# The worker's backoff while the database cannot be reached -----------------------------------


def test_the_worker_backs_off_while_the_database_is_unreachable(tmp_path):
    url = f"postgresql://harbour:{PASSWORD}@127.0.0.1:{free_port()}/harbour"
    env = clean_env(tmp_path, DATABASE_URL=url, HARBOUR_WORKER_IDLE_SECONDS="0.05", HARBOUR_LOG_FORMAT="plain")
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([str(HARBOUR), "worker"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        time.sleep(5)  # waits of 1, 2 then 4 s: three warnings, not forty errors
        stopped_at = time.monotonic()
        process.send_signal(signal.SIGTERM)  # in the middle of the 4 s wait
        process.wait(timeout=10)
        assert time.monotonic() - stopped_at < 2, "SIGTERM must not wait for the backoff"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = log_path.read_text()
    assert " ERROR " not in text and "Traceback" not in text, text
    warnings = [line for line in text.splitlines() if " WARNING " in line]
    assert 2 <= len(warnings) <= 4, text
    assert all("database unavailable (OperationalError: " in line and "Connection refused" in line for line in warnings)
    assert ["in 1 s", "in 2 s"] == [w.split("again ")[1] for w in warnings[:2]]
    assert PASSWORD not in text


def test_backoff_doubles_up_to_its_cap_and_resets(caplog):
    from harbour.core.worker import Backoff

    backoff = Backoff(first=1, cap=30)
    error = Exception("connection failed: Connection refused")
    assert [backoff.failed(error) for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert len([r for r in caplog.records if r.levelname == "WARNING"]) == 7
    backoff.succeeded()
    assert backoff.failed(error) == 1


@pytest.mark.django_db
def test_a_failing_job_with_the_database_up_is_still_an_error_with_traceback(caplog):
    from django.db.utils import OperationalError

    from harbour.core.worker import run_pass

    def broken():
        raise OperationalError("no such column: nonsense")

    def fine():
        return 2

    assert run_pass([broken, fine]) == (2, None)
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and errors[0].exc_info is not None


# 3. Debug pages in production -----------------------------------------------------------------


def test_debug_is_refused_in_production(tmp_path):
    env = clean_env(tmp_path, **PRODUCTION_ENV, HARBOUR_DEBUG="1")
    assert_one_line(harbour(env, "check"), "HARBOUR_DEBUG cannot be on when HARBOUR_ENV=production")
    assert harbour(clean_env(tmp_path, HARBOUR_DEBUG="1"), "check").returncode == 0  # development: fine


# 4. The intake's rate limit from the environment ----------------------------------------------


def test_intake_rate_limit_settings_come_from_the_environment(tmp_path):
    names = ("HARBOUR_INTAKE_FAILURE_LIMIT", "HARBOUR_INTAKE_FAILURE_WINDOW", "HARBOUR_INTAKE_BLOCK_SECONDS")
    defaults = settings_in_process({"HARBOUR_VAR_DIR": str(tmp_path)}, *names)
    assert defaults == {"HARBOUR_INTAKE_FAILURE_LIMIT": 20, "HARBOUR_INTAKE_FAILURE_WINDOW": 300,
                        "HARBOUR_INTAKE_BLOCK_SECONDS": 300}
    given = settings_in_process({"HARBOUR_VAR_DIR": str(tmp_path), "HARBOUR_INTAKE_FAILURE_LIMIT": "5",
                                 "HARBOUR_INTAKE_FAILURE_WINDOW": "60", "HARBOUR_INTAKE_BLOCK_SECONDS": "900"}, *names)
    assert given == {"HARBOUR_INTAKE_FAILURE_LIMIT": 5, "HARBOUR_INTAKE_FAILURE_WINDOW": 60,
                     "HARBOUR_INTAKE_BLOCK_SECONDS": 900}
    assert_one_line(harbour(clean_env(tmp_path, HARBOUR_INTAKE_FAILURE_LIMIT="lots"), "check"),
                    "HARBOUR_INTAKE_FAILURE_LIMIT must be a whole number")


# 5. The README's Configuration table --------------------------------------------------------


def test_readme_configuration_lists_what_a_deployer_sets():
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = {line.split("`")[1]: line for line in table.splitlines() if line.startswith("| `")}
    for name in ("HARBOUR_TRUSTED_PROXY_COUNT", "HARBOUR_TIME_ZONE", "HARBOUR_MEDIA_ROOT", "HARBOUR_STATIC_ROOT",
                 "HARBOUR_CONTENT_SECURITY_POLICY", "HARBOUR_PERMISSIONS_POLICY", "HARBOUR_WORKER_IDLE_SECONDS",
                 "HARBOUR_HOST", "PORT", "HARBOUR_INTAKE_FAILURE_LIMIT", "HARBOUR_INTAKE_FAILURE_WINDOW",
                 "HARBOUR_INTAKE_BLOCK_SECONDS", "HARBOUR_DEBUG"):
        assert name in rows, name
    assert "rotate-keys" in readme.split("## The `harbour` command", 1)[1].split("\n## ", 1)[0]


# 6. CLI rough edges ---------------------------------------------------------------------------


def test_manage_passes_options_through_to_django(tmp_path):
    result = harbour(clean_env(tmp_path), "manage", "--help")
    assert result.returncode == 0, result.stderr
    assert "Available subcommands" in result.stdout and "Unknown command" not in result.stderr
    result = harbour(clean_env(tmp_path), "manage", "check", "--help")
    assert result.returncode == 0 and "usage: harbour check" in result.stdout


def test_sandbox_help_lists_the_sandbox_commands(tmp_path):
    result = harbour(clean_env(tmp_path), "sandbox", "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: harbour sandbox")
    for command in ("serve", "worker", "migrate", "admin-token", "rotate-keys"):
        assert f"\n  {command} " in result.stdout
    result = harbour(clean_env(tmp_path), "sandbox", "serve", "--help")
    assert "usage: harbour sandbox serve" in result.stdout


@pytest.mark.parametrize("command", ["create-clinic", "rotate-keys"])
def test_usage_lines_spell_commands_as_typed(tmp_path, command):
    result = harbour(clean_env(tmp_path), command, "--help")
    assert result.returncode == 0, result.stderr
    assert f"usage: harbour {command} " in result.stdout


def test_create_clinic_speaks_english(migrated):
    result = harbour(migrated, "create-clinic", "Clinique Test", "--admin", "bob", "--password", "123")
    assert result.returncode == 1
    assert "This password is too short" in result.stderr, result.stderr


def test_reprocess_of_a_message_that_does_not_exist_fails(migrated):
    result = harbour(migrated, "reprocess", "--id", "999")
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "No inbound message 999." in result.stderr


# 7. gunicorn's control socket -----------------------------------------------------------------


def test_serve_opens_no_shared_gunicorn_control_socket(migrated, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {**migrated, "HOME": str(home)}
    env.pop("XDG_RUNTIME_DIR", None)
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([str(HARBOUR), "serve", "--port", str(free_port()), "--workers", "1"],
                                   env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while "Booting worker" not in log_path.read_text():
            assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        time.sleep(1)
        assert not (home / ".gunicorn").exists(), log_path.read_text()
        assert "control" not in log_path.read_text().lower()
    finally:
        process.terminate()
        process.wait(timeout=20)
