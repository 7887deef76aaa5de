"""The portal's setup steps (the clinic setup article, Ocean side): one function per step.

Portal views and the JSON admin API both call these, so a page and a test refuse the same
things with the same messages.
"""
import re
import secrets
import string

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from harbour.sandbox.errors import SandboxError
from harbour.sandbox.models import Delivery, Integration, Listing, OAuthCredential, Site, SiteUser, sha256

SEK_LENGTH = 16
SEK_PUNCTUATION = string.punctuation
SEK_RULES = (
    "The shared encryption key must be exactly 16 characters, with at least one digit, one "
    "upper-case letter, one lower-case letter and one punctuation character, and no spaces."
)
# Ocean's guidance: "In order to set the OAuth2 Credentials in the Ocean Portal, you must have
# the site's Shared Encryption Key (SEK)" stored in Cloud Connect (contract §1, §6).
OAUTH_NEEDS_SEK = (
    "In order to set the OAuth2 Credentials, the site's Shared Encryption Key (SEK) must be stored "
    "in Ocean Cloud Connect: Admin > Site Features > Enable Ocean Cloud Connect, then Go to Cloud "
    "Connect > Store my encryption key."
)
HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$")


# --- Accounts and sites ----------------------------------------------------------------------

def create_user(username: str, password: str, email: str = ""):
    User = get_user_model()
    username = (username or "").strip()
    if not username:
        raise SandboxError("Enter a username.", field="username")
    if len(password or "") < 8:
        raise SandboxError("The password must have at least 8 characters.", field="password")
    if User.objects.filter(username__iexact=username).exists():
        raise SandboxError("This username is already taken.", status=409, field="username")
    # Sandbox users belong to no clinic: they are Ocean users, not Harbour staff.
    return User.objects.create_user(username=username, password=password, email=email or "", clinic=None)


def create_site(user, name: str, number: str | None = None) -> Site:
    name = (name or "").strip()
    if not name:
        raise SandboxError("Enter the site's name.", field="name")
    number = (number or "").strip()
    if number and not number.isdigit():
        raise SandboxError("A site number is made of digits.", field="number")
    try:
        with transaction.atomic():
            site = Site.objects.create(name=name, number=number or f"p{secrets.token_hex(8)}")
            if not number:
                # Ocean site numbers are plain integers; ours follow the row id.
                site.number = str(1000 + site.pk)
                site.save(update_fields=["number"])
            if user is not None:
                SiteUser.objects.create(site=site, user=user, is_admin=True)
    except IntegrityError:
        raise SandboxError(f"Site number {number} is already in use.", status=409, field="number") from None
    return site


def sites_for(user):
    return Site.objects.filter(memberships__user=user).order_by("number")


def site_for(user, number: str) -> Site | None:
    return sites_for(user).filter(number=number).first()


# --- Admin > Encryption -----------------------------------------------------------------------

def sek_problem(key: str) -> str | None:
    if (
        len(key) != SEK_LENGTH
        or any(ch.isspace() or not ch.isascii() or not ch.isprintable() for ch in key)
        or not any(ch.isdigit() for ch in key)
        or not any(ch.isupper() for ch in key)
        or not any(ch.islower() for ch in key)
        or not any(ch in SEK_PUNCTUATION for ch in key)
    ):
        return SEK_RULES
    return None


def generate_sek() -> str:
    pools = [string.digits, string.ascii_uppercase, string.ascii_lowercase, SEK_PUNCTUATION]
    chars = [secrets.choice(pool) for pool in pools]
    everything = "".join(pools)
    chars += [secrets.choice(everything) for _ in range(SEK_LENGTH - len(chars))]
    secrets.SystemRandom().shuffle(chars)
    return "".join(chars)


def create_encryption_key(site: Site, key: str = "") -> str:
    """Create the site's SEK (typed, or generated when empty); returns it, shown this once."""
    if site.has_sek:
        raise SandboxError(
            "This site already has a shared encryption key. It cannot be shown again.", status=409, field="key"
        )
    key = key or generate_sek()
    problem = sek_problem(key)
    if problem:
        raise SandboxError(problem, field="key")
    site.set_sek(key)
    site.sek_created_at = timezone.now()
    site.save(update_fields=["sek_salt", "sek_hash", "sek_created_at"])
    return key


# --- Admin > Site Features and Cloud Connect -------------------------------------------------

def set_cloud_connect(site: Site, enabled: bool) -> None:
    site.cloud_connect_enabled = bool(enabled)
    site.save(update_fields=["cloud_connect_enabled"])
    if site.key_in_cloud_connect:
        release_held_deliveries(site)


def store_key_in_cloud_connect(site: Site, key: str) -> None:
    """Cloud Connect > Store my encryption key: it must be the site's own SEK."""
    if not site.cloud_connect_enabled:
        raise SandboxError(
            "Ocean Cloud Connect is not enabled for this site: tick Enable Ocean Cloud Connect in "
            "Admin > Site Features first.",
            status=409,
        )
    if not site.has_sek:
        raise SandboxError(
            "This site has no shared encryption key yet: create it in Admin > Encryption.", status=409, field="key"
        )
    if not site.sek_matches((key or "").strip()):
        raise SandboxError("This is not the site's shared encryption key.", field="key")
    site.cloud_connect_key_stored_at = timezone.now()
    site.save(update_fields=["cloud_connect_key_stored_at"])
    release_held_deliveries(site)


def release_held_deliveries(site: Site) -> int:
    """Deliveries held for want of the key go out now that Cloud Connect has it."""
    now = timezone.now()
    return Delivery.objects.filter(integration__site=site, state=Delivery.State.HELD).update(
        state=Delivery.State.PENDING, schedule_start=now, next_attempt_at=now, last_error=""
    )


# --- Admin > Integrations ---------------------------------------------------------------------

def register_integration(
    site: Site,
    *,
    name: str,
    request_url: str,
    payload_version: str = "0.11.1",
    auth_type: str = "none",
    header_name: str = "",
    key: str = "",
    basic_username: str = "",
    basic_password: str = "",
    oauth_token_url: str = "",
    oauth_client_id: str = "",
    oauth_secret: str = "",
    send_copy: bool = False,
    kind: str = "eReferrals",
) -> Integration:
    if kind != "eReferrals":
        raise SandboxError("The sandbox offers the eReferrals integration type only.", field="kind")
    name = (name or "").strip()
    if not name:
        raise SandboxError("Enter an Integration Name.", field="name")
    request_url = _check_url(request_url, "Request URL", "request_url")
    if payload_version not in dict(Integration.PAYLOAD_VERSIONS):
        raise SandboxError("Choose the Payload Type FHIR v0.11.1 or FHIR v0.10.0.", field="payload_version")
    if auth_type not in Integration.Auth.values:
        raise SandboxError("Choose an authentication type.", field="auth_type")
    integration = Integration(
        site=site, kind=kind, name=name, request_url=request_url, payload_version=payload_version,
        auth_type=auth_type, send_copy=bool(send_copy),
    )
    if auth_type == Integration.Auth.API_KEY:
        header_name = (header_name or "").strip()
        if not HEADER_NAME.match(header_name):
            raise SandboxError("Enter a Header Name made of letters, digits and dashes.", field="header_name")
        if not key:
            raise SandboxError("Enter the Key.", field="key")
        integration.header_name = header_name
        integration.set_secret(key)
    elif auth_type == Integration.Auth.BASIC:
        if not basic_username or ":" in basic_username:
            raise SandboxError("Enter a user name (without a colon).", field="basic_username")
        if not basic_password:
            raise SandboxError("Enter the password.", field="basic_password")
        integration.basic_username = basic_username
        integration.set_secret(basic_password)
    elif auth_type == Integration.Auth.OAUTH2:
        integration.oauth_token_url = _check_url(oauth_token_url, "token URL", "oauth_token_url")
        if not oauth_client_id:
            raise SandboxError("Enter the client ID.", field="oauth_client_id")
        if not oauth_secret:
            raise SandboxError("Enter the client secret.", field="oauth_secret")
        integration.oauth_client_id = oauth_client_id
        integration.set_secret(oauth_secret)
    integration.save()
    return integration


def _check_url(value: str, label: str, field: str) -> str:
    value = (value or "").strip()
    try:
        URLValidator(schemes=["http", "https"])(value)
    except ValidationError:
        raise SandboxError(f"Enter a valid {label} starting with http:// or https://.", field=field) from None
    return value


# --- Admin > Directory Listings ---------------------------------------------------------------

def create_listing(
    site: Site, *, name: str, integration: Integration | None = None, external_service_id: str = "",
    ref: str = "", accepts_ereferrals: bool = True, address_line: str = "", city: str = "", postal_code: str = "",
) -> Listing:
    name = (name or "").strip()
    if not name:
        raise SandboxError("Enter the listing's name.", field="name")
    if integration is not None and integration.site_id != site.pk:
        raise SandboxError("Choose one of this site's integrations.", field="integration")
    # Ocean listing refs look like 'autorouter_test49721437': a slug and eight digits.
    ref = (ref or "").strip() or f"{slugify(name).replace('-', '_')[:40]}{secrets.randbelow(10**8):08d}"
    if Listing.objects.filter(ref=ref).exists():
        raise SandboxError(f"Listing reference {ref} is already in use.", status=409, field="ref")
    return Listing.objects.create(
        site=site, name=name, ref=ref, integration=integration, external_service_id=(external_service_id or "").strip(),
        accepts_ereferrals=accepts_ereferrals, address_line=address_line, city=city, postal_code=postal_code,
    )


# --- Admin > Manage Credentials > Manage OAuth Credentials ------------------------------------

def create_oauth_credential(site: Site, name: str) -> tuple[OAuthCredential, str]:
    """Add New Credential: returns the credential and its Secret, shown this once."""
    if not site.key_in_cloud_connect:
        raise SandboxError(OAUTH_NEEDS_SEK, status=409)
    name = (name or "").strip()
    if not name:
        raise SandboxError("Enter a Name for the credential.", field="name")
    secret = secrets.token_urlsafe(32)
    credential = OAuthCredential.objects.create(
        site=site, name=name, client_id=secrets.token_hex(16), secret_hash=sha256(secret)
    )
    return credential, secret


def revoke_oauth_credential(credential: OAuthCredential) -> None:
    credential.revoked = True
    credential.save(update_fields=["revoked"])
    credential.tokens.all().delete()
