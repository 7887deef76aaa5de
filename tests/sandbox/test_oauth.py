"""POST /svc/oauth2/token: client credentials in the body or HTTP Basic, OAuth2 JSON errors."""
import base64
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from harbour.sandbox import sites
from harbour.sandbox.models import AccessToken
from tests.sandbox.conftest import ready_site

TOKEN_URL = "/svc/oauth2/token"
CHECK_URL = "/svc/fhir/v1/NamingSystem/id-site-number"


@pytest.fixture
def credential(db):
    site = ready_site("Clinic", "1234")
    return sites.create_oauth_credential(site, "EMR OAuth credentials")


def basic(client_id, secret):
    return "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()


def test_token_with_form_credentials_works_on_the_api(credential, settings):
    settings.SANDBOX_TOKEN_LIFETIME_SECONDS = 1800
    row, secret = credential
    response = Client().post(TOKEN_URL, {"grant_type": "client_credentials", "client_id": row.client_id, "client_secret": secret})
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 1800
    assert body["access_token"] not in str(list(AccessToken.objects.values_list("token_hash", flat=True)))
    check = Client().get(CHECK_URL, HTTP_AUTHORIZATION=f"Bearer {body['access_token']}", HTTP_ACCEPT="application/fhir+json")
    assert check.status_code == 200 and check.json()["resourceType"] == "NamingSystem"
    assert check.json()["uniqueId"][0]["value"] == "http://sandbox.test:8081/svc/fhir/v1/NamingSystem/id-site-number"


def test_token_with_http_basic(credential):
    row, secret = credential
    response = Client().post(TOKEN_URL, {"grant_type": "client_credentials"}, HTTP_AUTHORIZATION=basic(row.client_id, secret))
    assert response.status_code == 200 and response.json()["access_token"]


@pytest.mark.parametrize("data, auth, status, error", [
    ({"client_id": "x", "client_secret": "y"}, None, 400, "invalid_request"),
    ({"grant_type": "password", "client_id": "x", "client_secret": "y"}, None, 400, "unsupported_grant_type"),
    ({"grant_type": "client_credentials"}, None, 401, "invalid_client"),
    ({"grant_type": "client_credentials", "client_id": "CID", "client_secret": "wrong"}, None, 401, "invalid_client"),
    ({"grant_type": "client_credentials"}, "basic-wrong", 401, "invalid_client"),
    ({"grant_type": "client_credentials"}, "Basic !!!notbase64", 401, "invalid_client"),
    ({"grant_type": "client_credentials", "client_secret": "SECRET"}, "basic-right", 400, "invalid_request"),
])
def test_token_errors_are_oauth2_json(credential, data, auth, status, error):
    row, secret = credential
    data = {k: (row.client_id if v == "CID" else secret if v == "SECRET" else v) for k, v in data.items()}
    headers = {}
    if auth == "basic-wrong":
        headers["HTTP_AUTHORIZATION"] = basic(row.client_id, "nope")
    elif auth == "basic-right":
        headers["HTTP_AUTHORIZATION"] = basic(row.client_id, secret)
    elif auth:
        headers["HTTP_AUTHORIZATION"] = auth
    response = Client().post(TOKEN_URL, data, **headers)
    assert response.status_code == status
    assert response.json()["error"] == error and response.json()["error_description"]
    assert secret not in response.content.decode()
    if status == 401:
        assert response["WWW-Authenticate"].startswith("Basic")


def test_token_endpoint_only_takes_post(db):
    assert Client().get(TOKEN_URL).status_code == 405


def test_revoked_credentials_get_no_token_and_lose_theirs(credential):
    row, secret = credential
    token = Client().post(TOKEN_URL, {"grant_type": "client_credentials", "client_id": row.client_id, "client_secret": secret}).json()["access_token"]
    sites.revoke_oauth_credential(row)
    assert Client().post(TOKEN_URL, {"grant_type": "client_credentials", "client_id": row.client_id, "client_secret": secret}).status_code == 401
    assert Client().get(CHECK_URL, HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 401


@pytest.mark.parametrize("header, message", [
    (None, "A Bearer access token is required."),
    ("Bearer not-a-token", "The access token is not valid."),
    ("Basic abc", "A Bearer access token is required."),
    ("expired", "The access token has expired."),
])
def test_api_refuses_missing_wrong_and_expired_tokens(credential, header, message):
    row, secret = credential
    if header == "expired":
        token = Client().post(TOKEN_URL, {"grant_type": "client_credentials", "client_id": row.client_id, "client_secret": secret}).json()["access_token"]
        AccessToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
        header = f"Bearer {token}"
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    for method, url in [("get", CHECK_URL), ("post", "/svc/fhir/v1/$process-messages"), ("get", "/svc/fhir/v1/ServiceRequest/x/$letter"), ("get", "/svc/fhir/v1/DocumentReference/x/$binary")]:
        response = getattr(Client(), method)(url, **extra)
        assert response.status_code == 401, url
        assert response["Content-Type"] == "application/fhir+json"
        assert response["WWW-Authenticate"] == 'Bearer error="invalid_token"'
        issue = response.json()["issue"][0]
        assert response.json()["resourceType"] == "OperationOutcome" and issue["code"] == "login" and issue["diagnostics"] == message


def test_token_lifetime_setting(credential, settings):
    settings.SANDBOX_TOKEN_LIFETIME_SECONDS = 60
    row, secret = credential
    before = timezone.now()
    Client().post(TOKEN_URL, {"grant_type": "client_credentials", "client_id": row.client_id, "client_secret": secret})
    expires = AccessToken.objects.get().expires_at
    assert timedelta(seconds=59) <= expires - before <= timedelta(seconds=61)
