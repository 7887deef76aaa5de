"""The Ocean client against a fake Ocean on loopback: tokens, 401 retry, errors, documents."""
import socket
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from harbour.core import crypto
from harbour.ocean import tokens
from harbour.ocean.client import OceanClient
from harbour.ocean.errors import CredentialsRejected, OceanRejected, OceanUnreachable, RefusedHost
from harbour.ocean.models import OceanToken
from tests.ocean.conftest import configure
from tests.ocean.fake_ocean import Reply, outcome

BUNDLE = {"resourceType": "Bundle", "type": "message", "entry": []}


def test_token_request_form_and_cache(ocean_settings, fake_ocean, http):
    client = OceanClient(ocean_settings, http=http)
    client.process_messages(BUNDLE)
    client.process_messages(BUNDLE)
    [token_call] = fake_ocean.calls("token")
    assert token_call.form == {"grant_type": "client_credentials", "client_id": "harbour-client",
                               "client_secret": "s3cret-value"}
    assert "scope" not in token_call.form
    posts = fake_ocean.calls("process")
    assert [p.headers["authorization"] for p in posts] == ["Bearer tok-1", "Bearer tok-1"]
    assert posts[0].headers["content-type"] == "application/fhir+json"
    assert posts[0].path == "/svc/fhir/v1/$process-messages"
    # Stored encrypted in the database, shared by every process.
    stored = OceanToken.objects.get(clinic=ocean_settings.clinic)
    assert "tok-1" not in stored.access_token_encrypted
    assert crypto.decrypt(stored.access_token_encrypted) == "tok-1"
    assert stored.expires_at > timezone.now() + timedelta(minutes=59)


def test_token_renewed_before_expiry(ocean_settings, fake_ocean, http):
    first = tokens.get_token(ocean_settings, http)
    now = timezone.now()
    assert tokens.get_token(ocean_settings, http, now=first.expires_at - timedelta(seconds=61)).value == "tok-1"
    # Inside the 60 s margin: a new token, not the one about to expire.
    assert tokens.get_token(ocean_settings, http, now=first.expires_at - timedelta(seconds=59)).value == "tok-2"
    assert len(fake_ocean.calls("token")) == 2
    assert now < first.expires_at


def test_token_without_expires_in_uses_default_lifetime(ocean_settings, fake_ocean, http, settings):
    settings.HARBOUR_OCEAN_TOKEN_DEFAULT_LIFETIME = 120
    fake_ocean.expires_in = None
    now = timezone.now()
    token = tokens.get_token(ocean_settings, http, now=now)
    assert token.expires_at == now + timedelta(seconds=120)


def test_new_credentials_do_not_reuse_old_token(ocean_settings, fake_ocean, http, clinic):
    tokens.get_token(ocean_settings, http)
    fake_ocean.secret = "rotated"
    ocean = configure(clinic, fake_ocean.url, secret="rotated")
    assert tokens.get_token(ocean, http).value == "tok-2"


def test_one_retry_with_new_token_on_401(ocean_settings, fake_ocean, http):
    client = OceanClient(ocean_settings, http=http)
    client.process_messages(BUNDLE)
    fake_ocean.revoked.add("tok-1")  # Ocean forgot the token before its expiry
    client.process_messages(BUNDLE)
    auths = [p.headers["authorization"] for p in fake_ocean.calls("process")]
    assert auths == ["Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]
    assert crypto.decrypt(OceanToken.objects.get().access_token_encrypted) == "tok-2"


def test_only_one_retry_on_401(ocean_settings, fake_ocean, http):
    fake_ocean.queue("process", Reply(401, outcome("no")), Reply(401, outcome("still no")))
    with pytest.raises(OceanRejected) as caught:
        OceanClient(ocean_settings, http=http).process_messages(BUNDLE)
    assert caught.value.status == 401
    assert len(fake_ocean.calls("process")) == 2 and len(fake_ocean.calls("token")) == 2


def test_4xx_keeps_operation_outcome(ocean_settings, fake_ocean, http):
    fake_ocean.queue("process", Reply(422, outcome("Harbour is not the current receiver")))
    with pytest.raises(OceanRejected) as caught:
        OceanClient(ocean_settings, http=http).process_messages(BUNDLE)
    assert caught.value.status == 422 and not caught.value.retryable
    assert caught.value.text == "Harbour is not the current receiver"


@pytest.mark.parametrize("status, retryable", [(500, True), (503, True), (429, True), (408, True),
                                               (400, False), (404, False)])
def test_retryable_statuses(ocean_settings, fake_ocean, http, status, retryable):
    fake_ocean.queue("process", Reply(status, outcome("x")))
    with pytest.raises(OceanRejected) as caught:
        OceanClient(ocean_settings, http=http).process_messages(BUNDLE)
    assert caught.value.retryable is retryable


def test_timeout_is_unreachable(ocean_settings, fake_ocean):
    fake_ocean.queue("process", Reply(200, outcome("late"), delay=0.5))
    with httpx.Client(timeout=httpx.Timeout(0.2)) as quick:
        client = OceanClient(ocean_settings, http=quick)
        with pytest.raises(OceanUnreachable, match="Timeout"):
            client.process_messages(BUNDLE)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_connection_refused_is_unreachable(clinic, http):
    ocean = configure(clinic, closed_port_url())
    with pytest.raises(OceanUnreachable):
        OceanClient(ocean, http=http).process_messages(BUNDLE)


@pytest.mark.parametrize("client_id, secret, which", [
    ("wrong-id", "s3cret-value", "client_id"),
    ("harbour-client", "wrong", "secret"),
])
def test_credentials_rejected_says_which(clinic, fake_ocean, http, client_id, secret, which):
    ocean = configure(clinic, fake_ocean.url, client_id=client_id, secret=secret)
    with pytest.raises(CredentialsRejected) as caught:
        OceanClient(ocean, http=http).process_messages(BUNDLE)
    assert caught.value.which == which
    assert secret not in str(caught.value)


def test_credentials_rejected_without_detail(ocean_settings, fake_ocean, http):
    fake_ocean.queue("token", Reply(400, {"error": "invalid_client"}, "application/json"))
    with pytest.raises(CredentialsRejected) as caught:
        tokens.get_token(ocean_settings, http)
    assert caught.value.which == "unknown"


def test_letter_and_binary(ocean_settings, fake_ocean, http):
    client = OceanClient(ocean_settings, http=http)
    letter = client.fetch_letter("ref-1", attachments=True)
    assert letter.content == fake_ocean.letter and letter.content_type == "application/pdf"
    assert fake_ocean.calls("letter")[0].path == "/svc/fhir/v1/ServiceRequest/ref-1/$letter?attachments=true"
    assert client.fetch_binary("doc-9").content == fake_ocean.binary
    assert fake_ocean.calls("binary")[0].path == "/svc/fhir/v1/DocumentReference/doc-9/$binary"
    url = f"{fake_ocean.url}/svc/fhir/v1/DocumentReference/doc-10/$binary"
    assert client.fetch_binary(url).content == fake_ocean.binary


@pytest.mark.parametrize("url", [
    "http://evil.example.org/svc/fhir/v1/DocumentReference/1/$binary",
    "https://127.0.0.1/svc/fhir/v1/DocumentReference/1/$binary",  # other scheme and port
    "{base}/other/DocumentReference/1/$binary",  # outside the FHIR base
    "{base}/svc/fhir/v1/../../x/$binary",
    "{base}x/svc/fhir/v1/DocumentReference/1/$binary",  # malformed port
    "http://user@evil.example.org@127.0.0.1/svc/fhir/v1/X/$binary",
])
def test_documents_only_from_configured_host(ocean_settings, fake_ocean, http, url):
    client = OceanClient(ocean_settings, http=http)
    with pytest.raises(RefusedHost):
        client.fetch_binary(url.format(base=fake_ocean.url))
    assert fake_ocean.requests == []  # not even a token was asked for


def test_other_port_on_same_host_refused(ocean_settings, fake_ocean, http):
    other = fake_ocean.url.rsplit(":", 1)[0] + ":1"
    with pytest.raises(RefusedHost):
        OceanClient(ocean_settings, http=http).fetch_document(other + "/svc/fhir/v1/X/$binary")


def test_download_size_cap(ocean_settings, fake_ocean, http, settings):
    settings.HARBOUR_OCEAN_MAX_DOWNLOAD_BYTES = 5
    with pytest.raises(OceanRejected, match="larger"):
        OceanClient(ocean_settings, http=http).fetch_letter("ref-1")


def test_check_connection_results(clinic, fake_ocean, http):
    ok = OceanClient(configure(clinic, fake_ocean.url), http=http).check_connection()
    assert ok.ok and ok.code == "works"
    assert fake_ocean.calls("naming")[0].headers["accept"] == "application/fhir+json"
    assert OceanClient(configure(clinic, fake_ocean.url, client_id="nope"), http=http).check_connection().code \
        == "wrong_client_id"
    assert OceanClient(configure(clinic, fake_ocean.url, secret="nope"), http=http).check_connection().code \
        == "wrong_secret"
    assert OceanClient(configure(clinic, closed_port_url()), http=http).check_connection().code == "unreachable"
    fake_ocean.queue("naming", Reply(500, outcome("down")))
    other = OceanClient(configure(clinic, fake_ocean.url), http=http).check_connection()
    assert other.code == "other" and "500" in other.message
    assert OceanClient(configure(clinic, fake_ocean.url, client_id=""), http=http).check_connection().code \
        == "not_configured"


def test_default_timeouts(ocean_settings):
    client = OceanClient(ocean_settings)
    try:
        assert client.http.timeout.connect == 5.0 and client.http.timeout.read == 20.0
    finally:
        client.close()
