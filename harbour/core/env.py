"""Reading settings from the environment, and the developer defaults kept under var/.

Production (HARBOUR_ENV=production) must be given real secrets; a developer machine gets
generated ones, written once to var/dev-secrets.json so that restarts keep sessions and can
still decrypt what was encrypted.
"""
import binascii
import json
import os
import re
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


FERNET_KEY_HINT = (
    'generate one with: python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
)


def fernet_keys(name: str, value: str) -> list[str]:
    """The comma-separated Fernet keys of `value`, each checked: a bad one stops the start here,
    with the variable's name and the key's position (never the key), rather than a 500 on the
    first secret saved."""
    keys = [key.strip() for key in value.split(",")]
    if not any(keys):
        raise ImproperlyConfigured(f"{name} is empty; give at least one Fernet key ({FERNET_KEY_HINT})")
    for position, key in enumerate(keys, start=1):
        if not key:
            raise ImproperlyConfigured(f"{name}: key {position} of {len(keys)} is empty; remove the extra comma")
        try:
            Fernet(key.encode())
        except (ValueError, TypeError, binascii.Error):
            raise ImproperlyConfigured(
                f"{name}: key {position} of {len(keys)} is not a Fernet key (32 bytes, url-safe base64); "
                f"{FERNET_KEY_HINT}"
            ) from None
    return keys


def dev_secrets(var_dir: Path) -> dict:
    """The developer-only SECRET_KEY and encryption key, created on first use."""
    path = var_dir / "dev-secrets.json"
    try:
        if path.exists():
            return json.loads(path.read_text())
        var_dir.mkdir(parents=True, exist_ok=True)
        values = {
            "SECRET_KEY": secrets.token_urlsafe(50),
            "HARBOUR_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        }
        path.write_text(json.dumps(values))
        path.chmod(0o600)
    except OSError as exc:
        raise ImproperlyConfigured(
            f"cannot keep the developer secrets in {path} ({exc.strerror or type(exc).__name__}); "
            "make that folder writable, set HARBOUR_VAR_DIR to a writable folder, "
            "or set SECRET_KEY and HARBOUR_ENCRYPTION_KEYS"
        ) from exc
    return values


def required_secret(name: str, production: bool, var_dir: Path) -> str:
    value = env_str(name)
    if value:
        return value
    if production:
        raise ImproperlyConfigured(
            f"{name} must be set when HARBOUR_ENV=production; set it in the server's environment "
            "(README, 'Running in production')"
        )
    return dev_secrets(var_dir)[name]


# First lines of database driver errors that say why a connection failed and cannot hold a
# secret (libpq and SQLite name the host, port, user or file, never the password).
_SAFE_DATABASE_MESSAGES = re.compile(
    r"connection refused|could not translate host name|name or service not known|"
    r"temporary failure in name resolution|no route to host|network is unreachable|"
    r"connection timed out|timeout expired|no such file or directory|"
    r"password authentication failed for user|database \S+ does not exist|role \S+ does not exist|"
    r"too many clients|the database system is (starting up|shutting down|in recovery mode)|"
    r"server closed the connection unexpectedly|terminating connection|unable to open database file|"
    r"database is locked",
    re.IGNORECASE,
)


def safe_error_line(exc: BaseException) -> str:
    """`Type: first line` of a database error when that line is one known to hold no secret, else
    only the type: a driver may echo a connection string (and its password) in other messages."""
    kind = type(exc).__name__
    lines = str(exc).strip().splitlines()
    first = lines[0].strip() if lines else ""
    if not first or not _SAFE_DATABASE_MESSAGES.search(first):
        return kind
    # Belt and braces: a URL's user:password@ or a password=... never goes out.
    first = re.sub(r"(\w+://)[^/@\s]*@", r"\1***@", first)
    first = re.sub(r"(password\s*=\s*)\S+", r"\1***", first, flags=re.IGNORECASE)
    return f"{kind}: {first[:300]}"
