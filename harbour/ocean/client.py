"""The Ocean client of one clinic: every URL derives from OceanSettings.ocean_base_url.

    client = OceanClient(clinic.ocean)
    client.process_messages(bundle)          # POST {fhir}/$process-messages
    client.fetch_letter(ref, attachments=True)  # GET {fhir}/ServiceRequest/{ref}/$letter
    client.fetch_binary(url_or_id)           # GET {fhir}/DocumentReference/{id}/$binary
    client.check_connection()                # token + GET {fhir}/NamingSystem/id-site-number

Timeouts everywhere; a 401 gets one new token and one retry; documents are fetched only from
the configured Ocean host so the token goes nowhere else (contract §2.2).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import httpx
from django.conf import settings
from django.utils.translation import gettext as _

from harbour.fhir.parse import dump_json

from . import tokens
from .errors import (
    CredentialsRejected, OceanError, OceanRejected, OceanUnreachable, RefusedHost, operation_outcome_text,
)

log = logging.getLogger("harbour.ocean")

FHIR_JSON = "application/fhir+json"
_TRANSPORT_ERRORS = (httpx.TimeoutException, httpx.NetworkError, httpx.ProtocolError, httpx.UnsupportedProtocol)


def default_timeout() -> httpx.Timeout:
    return httpx.Timeout(
        connect=getattr(settings, "HARBOUR_OCEAN_CONNECT_TIMEOUT", 5.0),
        read=getattr(settings, "HARBOUR_OCEAN_READ_TIMEOUT", 20.0),
        write=getattr(settings, "HARBOUR_OCEAN_READ_TIMEOUT", 20.0),
        pool=getattr(settings, "HARBOUR_OCEAN_CONNECT_TIMEOUT", 5.0),
    )


def max_download_bytes() -> int:
    return getattr(settings, "HARBOUR_OCEAN_MAX_DOWNLOAD_BYTES", 100 * 1024 * 1024)


@dataclass(frozen=True)
class Fetched:
    content: bytes
    content_type: str


@dataclass(frozen=True)
class ConnectionCheck:
    """The result of "Test the connection to Ocean", in plain words (already translated)."""

    ok: bool
    code: str  # works, wrong_client_id, wrong_secret, credentials_rejected, not_configured, unreachable, other
    message: str


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    try:
        port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
    except ValueError:
        raise RefusedHost("the document URL is malformed") from None
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


class OceanClient:
    def __init__(self, ocean, http: httpx.Client | None = None):
        """`ocean` is the clinic's OceanSettings; `http` an httpx.Client (tests pass their own)."""
        self.ocean = ocean
        self.base_url = ocean.ocean_base_url.rstrip("/")
        self.fhir_url = f"{self.base_url}/svc/fhir/v1"
        self._own_http = http is None
        self.http = http or httpx.Client(timeout=default_timeout(), follow_redirects=False)

    def close(self) -> None:
        if self._own_http:
            self.http.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- Requests with the token -------------------------------------------------

    def _send(self, method: str, url: str, *, headers: dict | None = None, content: bytes | None = None,
              stream: bool = False) -> httpx.Response:
        """One request with the Bearer token; on 401 one new token and one retry."""
        token = tokens.get_token(self.ocean, self.http)
        response = self._once(method, url, token.value, headers, content, stream)
        if response.status_code == 401:
            response.close()
            log.info("Ocean answered 401 for clinic %s; asking for a new token", self.ocean.clinic_id)
            token = tokens.get_token(self.ocean, self.http, rejected=token.value)
            response = self._once(method, url, token.value, headers, content, stream)
        return response

    def _once(self, method, url, token, headers, content, stream) -> httpx.Response:
        all_headers = {"Authorization": f"Bearer {token}", **(headers or {})}
        try:
            request = self.http.build_request(method, url, headers=all_headers, content=content)
            return self.http.send(request, stream=stream)
        except _TRANSPORT_ERRORS as exc:
            raise OceanUnreachable(type(exc).__name__) from None

    # --- Operations ------------------------------------------------------------------

    def process_messages(self, bundle: dict) -> httpx.Response:
        """POST the bundle; returns the 2xx response, raises OceanRejected/OceanUnreachable/CredentialsRejected."""
        response = self._send(
            "POST", f"{self.fhir_url}/$process-messages",
            headers={"Content-Type": FHIR_JSON, "Accept": FHIR_JSON},
            content=dump_json(bundle),  # the bytes the outbox stored (strict JSON, any depth)
        )
        if not response.is_success:
            raise OceanRejected(response.status_code, operation_outcome_text(response))
        return response

    def letter_url(self, ref: str, attachments: bool = False) -> str:
        url = f"{self.fhir_url}/ServiceRequest/{quote(ref, safe='')}/$letter"
        return url + "?attachments=true" if attachments else url

    def fetch_letter(self, ref: str, attachments: bool = False) -> Fetched:
        return self._download(self.letter_url(ref, attachments))

    def fetch_binary(self, url_or_id: str) -> Fetched:
        """A DocumentReference's content: its $binary URL (must be on the configured host) or its id."""
        if "://" in url_or_id:
            return self._download(self.checked_url(url_or_id))
        return self._download(f"{self.fhir_url}/DocumentReference/{quote(url_or_id, safe='')}/$binary")

    def fetch_document(self, url: str) -> Fetched:
        """Any $letter/$binary URL Ocean gave us, only from the configured host."""
        return self._download(self.checked_url(url))

    def checked_url(self, url: str) -> str:
        """`url` if it is on the configured Ocean server (scheme, host and port), else RefusedHost."""
        path = urlsplit(url).path
        if _origin(url) != _origin(self.base_url) or not path.startswith(urlsplit(self.fhir_url).path + "/") \
                or "/../" in path or "\\" in url or "@" in urlsplit(url).netloc:
            raise RefusedHost("the document URL is not on the configured Ocean server")
        return url

    def _download(self, url: str) -> Fetched:
        limit = max_download_bytes()
        response = self._send("GET", url, headers={"Accept": "application/pdf, */*"}, stream=True)
        try:
            if not response.is_success:
                response.read()
                raise OceanRejected(response.status_code, operation_outcome_text(response))
            chunks, size = [], 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > limit:
                    raise OceanRejected(response.status_code, f"the document is larger than {limit} bytes")
                chunks.append(chunk)
        except _TRANSPORT_ERRORS as exc:
            raise OceanUnreachable(type(exc).__name__) from None
        finally:
            response.close()
        content_type = response.headers.get("content-type", "application/octet-stream").split(";")[0].strip()
        return Fetched(b"".join(chunks), content_type)

    def check_connection(self) -> ConnectionCheck:
        """Token + GET {fhir}/NamingSystem/id-site-number (OceanMD's own check)."""
        try:
            response = self._send("GET", f"{self.fhir_url}/NamingSystem/id-site-number",
                                  headers={"Accept": FHIR_JSON})
            response.read()
        except CredentialsRejected as exc:
            return credentials_check(exc)
        except OceanUnreachable:
            return ConnectionCheck(False, "unreachable", _(
                "Ocean could not be reached at %(url)s. Check the Ocean server setting and this server's "
                "internet access, then try again.") % {"url": self.base_url})
        except OceanRejected as exc:
            return _other(exc.status)
        except OceanError:
            return _other(None)
        if response.is_success:
            # Only Harbour → Ocean was tested: the inbound key (Ocean → Harbour) is shown by the settings page.
            return ConnectionCheck(True, "works", _(
                "Harbour can reach Ocean with your OAuth credentials: Ocean accepted the Client ID and Secret "
                "and answered. This does not test what Ocean sends to Harbour: for that, see “Last inbound "
                "message” below."))
        return _other(response.status_code)


def credentials_check(exc: CredentialsRejected) -> ConnectionCheck:
    if exc.which == "missing":
        return ConnectionCheck(False, "not_configured", _(
            "Enter the Client ID and the Secret from Ocean, save, then test again."))
    if exc.which == "client_id":
        return ConnectionCheck(False, "wrong_client_id", _(
            "Ocean does not know this Client ID. Copy it again from Ocean (Menu > Admin > Manage Credentials)."))
    if exc.which == "secret":
        return ConnectionCheck(False, "wrong_secret", _(
            "Ocean knows the Client ID but refused the Secret. Paste the Secret again, or create a new credential "
            "in Ocean."))
    return ConnectionCheck(False, "credentials_rejected", _(
        "Ocean refused the Client ID or the Secret. Copy both again from Ocean (Menu > Admin > Manage Credentials)."))


def _other(status: int | None) -> ConnectionCheck:
    if status is None:
        return ConnectionCheck(False, "other", _("The test failed for an unexpected reason. Try again later."))
    return ConnectionCheck(False, "other", _(
        "Ocean accepted the credentials but answered with an error (HTTP %(status)s). Try again later; if it "
        "persists, contact Ocean support.") % {"status": status})


def client_for(clinic, http: httpx.Client | None = None) -> OceanClient:
    from harbour.clinics.models import ocean_settings_for

    return OceanClient(ocean_settings_for(clinic), http=http)
