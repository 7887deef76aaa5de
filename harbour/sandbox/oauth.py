"""Ocean's OAuth2 token endpoint (client credentials) and Bearer token checks.

`POST /svc/oauth2/token` with `grant_type=client_credentials`; the client authenticates with
`client_id`/`client_secret` in the form body or with HTTP Basic. Errors are OAuth2 JSON
(RFC 6749 §5.2). Tokens last SANDBOX_TOKEN_LIFETIME_SECONDS (default an hour) and are stored
hashed.
"""
import base64
import binascii
import secrets
from datetime import timedelta
from urllib.parse import unquote_plus

from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from harbour.sandbox import conf
from harbour.sandbox.models import AccessToken, OAuthCredential, Site, sha256


def oauth_error(status: int, error: str, description: str) -> JsonResponse:
    response = JsonResponse({"error": error, "error_description": description}, status=status)
    response["Cache-Control"] = "no-store"
    if status == 401:
        response["WWW-Authenticate"] = 'Basic realm="ocean-sandbox"'
    return response


def _basic_credentials(request) -> tuple[str, str] | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return ("", "")
    client_id, _, secret = decoded.partition(":")
    # RFC 6749 §2.3.1: the id and secret are form-urlencoded before Basic encoding.
    return unquote_plus(client_id), unquote_plus(secret)


@csrf_exempt
@require_POST
def token(request):
    grant_type = request.POST.get("grant_type", "")
    if not grant_type:
        return oauth_error(400, "invalid_request", "grant_type is required.")
    if grant_type != "client_credentials":
        return oauth_error(400, "unsupported_grant_type", "Only the client_credentials grant is supported.")
    basic = _basic_credentials(request)
    body_id, body_secret = request.POST.get("client_id", ""), request.POST.get("client_secret", "")
    if basic is not None and (body_secret or (body_id and body_id != basic[0])):
        return oauth_error(400, "invalid_request", "Use one way of authenticating the client, not both.")
    client_id, secret = basic if basic is not None else (body_id, body_secret)
    if not client_id or not secret:
        return oauth_error(401, "invalid_client", "Client authentication failed: client_id and client_secret are required.")
    credential = OAuthCredential.objects.filter(client_id=client_id, revoked=False).select_related("site").first()
    if credential is None or not credential.secret_matches(secret):
        return oauth_error(401, "invalid_client", "Client authentication failed.")
    raw = secrets.token_urlsafe(32)
    lifetime = conf.token_lifetime_seconds()
    AccessToken.objects.create(
        credential=credential, token_hash=sha256(raw), expires_at=timezone.now() + timedelta(seconds=lifetime)
    )
    response = JsonResponse({"access_token": raw, "token_type": "Bearer", "expires_in": lifetime})
    response["Cache-Control"] = "no-store"
    return response


def bearer_site(request) -> tuple[Site | None, str]:
    """The site the request's Bearer token acts for, or (None, why not)."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header.lower().startswith("bearer ") or not header[7:].strip():
        return None, "A Bearer access token is required."
    row = (
        AccessToken.objects.filter(token_hash=sha256(header[7:].strip()))
        .select_related("credential", "credential__site").first()
    )
    if row is None or row.credential.revoked:
        return None, "The access token is not valid."
    if row.expires_at <= timezone.now():
        return None, "The access token has expired."
    return row.credential.site, ""
