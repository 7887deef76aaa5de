"""The clinic's OAuth2 access token for Ocean, cached in the database so every process shares it.

`POST {server}/svc/oauth2/token` with form `grant_type=client_credentials`, `client_id`,
`client_secret` and no scope (contract §2.2, §7 #6). The token is renewed a margin before
`expires_in` runs out; a 401 from Ocean asks for a new one once (`rejected=` the refused token).
"""
from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from django.conf import settings
from django.utils import timezone

from harbour.core import crypto

from .errors import CredentialsRejected, OceanRejected, OceanUnreachable, operation_outcome_text
from .models import OceanToken

log = logging.getLogger("harbour.ocean")


def renew_margin() -> timedelta:
    return timedelta(seconds=getattr(settings, "HARBOUR_OCEAN_TOKEN_MARGIN_SECONDS", 60))


def default_lifetime() -> timedelta:
    """Used when Ocean's reply has no expires_in (its lifetime is undocumented)."""
    return timedelta(seconds=getattr(settings, "HARBOUR_OCEAN_TOKEN_DEFAULT_LIFETIME", 600))


def token_url(ocean_base_url: str) -> str:
    return f"{ocean_base_url.rstrip('/')}/svc/oauth2/token"


def credentials_digest(client_id: str, secret: str) -> str:
    # Ties a cached token to the credentials it came from (both high-entropy; never logged).
    return hashlib.sha256(f"{client_id}\x00{secret}".encode()).hexdigest()


@dataclass(frozen=True)
class Token:
    value: str
    expires_at: datetime


def get_token(ocean, http: httpx.Client, *, rejected: str | None = None, now: datetime | None = None) -> Token:
    """A valid token for the clinic of `ocean` (its OceanSettings).

    Reuses the stored token unless it expires within the margin, belongs to other credentials,
    or is `rejected` (Ocean just answered 401 to it). Raises CredentialsRejected (and
    OceanUnreachable / OceanRejected for the token endpoint's other failures).
    """
    now = now or timezone.now()
    client_id = ocean.oauth_client_id.strip()
    secret = ocean.get_client_secret() if ocean.has_client_secret else ""
    if not client_id or not secret:
        raise CredentialsRejected("missing")
    digest = credentials_digest(client_id, secret)
    stored = OceanToken.objects.filter(clinic_id=ocean.clinic_id).first()
    if stored and hmac.compare_digest(stored.credentials_fingerprint, digest) and stored.expires_at - renew_margin() > now:
        try:
            value = crypto.decrypt(stored.access_token_encrypted)
        except ValueError:
            value = None
        # Another process may already have renewed the token that was refused: use that one.
        if value and value != rejected:
            return Token(value, stored.expires_at)
    token = request_token(ocean.ocean_base_url, client_id, secret, http, now=now)
    OceanToken.objects.update_or_create(
        clinic_id=ocean.clinic_id,
        defaults={
            "access_token_encrypted": crypto.encrypt(token.value),
            "credentials_fingerprint": digest,
            "expires_at": token.expires_at,
            "obtained_at": now,
        },
    )
    log.info("new Ocean token for clinic %s", ocean.clinic_id)
    return token


def forget_token(clinic_id: int) -> None:
    OceanToken.objects.filter(clinic_id=clinic_id).delete()


def request_token(ocean_base_url: str, client_id: str, secret: str, http: httpx.Client, *,
                  now: datetime | None = None) -> Token:
    now = now or timezone.now()
    try:
        response = http.post(
            token_url(ocean_base_url),
            data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
            headers={"Accept": "application/json"},
        )
    except (httpx.TimeoutException, httpx.NetworkError, httpx.ProtocolError) as exc:
        raise OceanUnreachable(type(exc).__name__) from None
    if response.status_code in (400, 401, 403):
        raise CredentialsRejected(_which_credential(response))
    if not response.is_success:
        raise OceanRejected(response.status_code, operation_outcome_text(response))
    try:
        data = response.json()
        value = data["access_token"]
        if not isinstance(value, str) or not value:
            raise ValueError
    except (ValueError, KeyError, TypeError):
        raise OceanRejected(response.status_code, "the token reply has no access_token") from None
    lifetime = default_lifetime()
    expires_in = data.get("expires_in")
    if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool) and expires_in > 0:
        lifetime = timedelta(seconds=int(expires_in))
    elif isinstance(expires_in, str) and expires_in.isdigit() and int(expires_in) > 0:
        lifetime = timedelta(seconds=int(expires_in))
    return Token(value, now + lifetime)


def _which_credential(response: httpx.Response) -> str:
    """'client_id', 'secret' or 'unknown', from the OAuth error JSON when it says which one."""
    try:
        data = response.json()
    except ValueError:
        return "unknown"
    if not isinstance(data, dict):
        return "unknown"
    error = str(data.get("error") or "").lower()
    description = str(data.get("error_description") or data.get("message") or "").lower()
    if "secret" in description or "password" in description:
        return "secret"
    if any(w in description for w in ("client id", "client_id", "unknown client", "no such client",
                                      "client not found", "invalid client id")):
        return "client_id"
    if error == "unauthorized_client":
        return "client_id"
    return "unknown"
