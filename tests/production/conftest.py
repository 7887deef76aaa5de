"""Fixtures of the production tests: captured JSON log lines, the production settings as a
separate process sees them."""
import io
import json
import logging
import os
import subprocess
import sys

import pytest

from harbour.core.logging import ContextFilter, JsonFormatter
from tests.servers import ROOT


class Captured:
    def __init__(self):
        self.stream = io.StringIO()

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def records(self) -> list[dict]:
        return [json.loads(line) for line in self.text.splitlines() if line.strip()]


@pytest.fixture
def json_logs():
    """Every record (DEBUG and up) of every logger, as the production JSON formatter writes it."""
    captured = Captured()
    handler = logging.StreamHandler(captured.stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield captured
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


PRODUCTION_ENV = {
    "HARBOUR_ENV": "production",
    "SECRET_KEY": "production-test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",
    "HARBOUR_ENCRYPTION_KEYS": "3ZrO1Yw2bC6oG3Vb0nqC0nQn5y6pPZlqgYfS4n9JX3A=",
    "HARBOUR_ALLOWED_HOSTS": "harbour.example.org",
}


def settings_in_process(env: dict, *names: str) -> dict:
    """The values of `names` in harbour.settings as a fresh process with `env` sees them."""
    code = (
        "import json, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'harbour.settings'; "
        "from django.conf import settings; "
        f"print(json.dumps({{n: getattr(settings, n, None) for n in {list(names)!r}}}, default=str))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HARBOUR_", "SECRET_KEY", "DJANGO_SETTINGS"))}
    result = subprocess.run([sys.executable, "-c", code], env={**clean, **env}, cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def production_settings(tmp_path_factory) -> dict:
    env = {**PRODUCTION_ENV, "HARBOUR_VAR_DIR": str(tmp_path_factory.mktemp("production-var"))}
    return settings_in_process(
        env, "LOGGING", "HARBOUR_LOG_FORMAT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_HSTS_SECONDS",
        "SECURE_PROXY_SSL_HEADER", "SECURE_SSL_REDIRECT", "DEBUG", "SESSION_COOKIE_HTTPONLY",
    )
