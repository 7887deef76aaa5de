"""Reading settings from the environment, and the developer defaults kept under var/.

Production (HARBOUR_ENV=production) must be given real secrets; a developer machine gets
generated ones, written once to var/dev-secrets.json so that restarts keep sessions and can
still decrypt what was encrypted.
"""
import json
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be a whole number") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def dev_secrets(var_dir: Path) -> dict:
    """The developer-only SECRET_KEY and encryption key, created on first use."""
    path = var_dir / "dev-secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    var_dir.mkdir(parents=True, exist_ok=True)
    values = {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "HARBOUR_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    }
    path.write_text(json.dumps(values))
    path.chmod(0o600)
    return values


def required_secret(name: str, production: bool, var_dir: Path) -> str:
    value = env_str(name)
    if value:
        return value
    if production:
        raise ImproperlyConfigured(
            f"{name} must be set when HARBOUR_ENV=production (see README, 'Running in production')."
        )
    return dev_secrets(var_dir)[name]
