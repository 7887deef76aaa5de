"""Secrets at rest: MultiFernet over HARBOUR_ENCRYPTION_KEYS.

The first key encrypts; every key is tried to decrypt, so keys can be rotated by putting a
new one in front and re-saving (or running `harbour rotate-keys`).
"""
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            "HARBOUR_ENCRYPTION_KEYS must be Fernet keys (32 url-safe base64 bytes), comma-separated"
        ) from exc


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.HARBOUR_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    """Decrypt with any configured key; raises ValueError when no key fits."""
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise ValueError("the stored secret cannot be decrypted with the configured keys") from exc


def rotate(token: str) -> str:
    return fernet().rotate(token.encode()).decode()
