"""The article's Ocean-side steps as pages, in Ocean's words, and the referral pages."""
import html
import re

import pytest
from django.test import Client

from harbour.sandbox.delivery import deliver_due
from harbour.sandbox.forms import COPY_LABEL
from harbour.sandbox.models import Integration, Listing, OAuthCredential, Site
from harbour.sandbox.sites import OAUTH_NEEDS_SEK

PASSWORD = "ocean-sandbox-pw-1"


def text(response) -> str:
    return response.content.decode()


@pytest.fixture
def browser(db):
    client = Client()
    response = client.post("/signup/", {"username": "dr.soleil", "email": "dr@example.org", "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"
    return client


def create_site(browser) -> Site:
    response = browser.post("/sites/new/", {"name": "Clinique Soleil"})
    site = Site.objects.get(name="Clinique Soleil")
    assert response["Location"] == f"/site/{site.number}/admin/account/"
    return site


def test_login_page_links_to_sign_up_and_pages_need_a_login(db):
    assert "Sign up here!" in text(Client().get("/login/"))
    response = Client().get("/")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


def test_sign_up_refuses_a_taken_username_and_a_short_password(browser):
    other = Client()
    response = other.post("/signup/", {"username": "DR.SOLEIL", "password": PASSWORD})
    assert response.status_code == 200 and "This username is already taken." in text(response)
    response = other.post("/signup/", {"username": "someone", "password": "short"})
    assert "at least 8 characters" in text(response)


def test_the_articles_ocean_steps_in_the_portal(browser, receiver):
    site = create_site(browser)
    base = f"/site/{site.number}"
    # Step 1a: Menu > Admin > Site Account shows the Site Number.
    account = text(browser.get(f"{base}/admin/account/"))
    assert "Site Number" in account and f'id="site-number">{site.number}<' in account
    admin = text(browser.get(f"{base}/admin/"))
    for label in ["Site Account", "Encryption", "Site Features", "Integrations", "Manage Credentials", "Directory Listings"]:
        assert label in admin
    # OAuth credentials are refused until Cloud Connect holds the key.
    refused = text(browser.get(f"{base}/admin/credentials/oauth/"))
    assert html.escape(OAUTH_NEEDS_SEK) in refused and "Add New Credential" not in refused
    assert html.escape(OAUTH_NEEDS_SEK) in text(browser.post(f"{base}/admin/credentials/oauth/", {"name": "EMR"}))
    assert not OAuthCredential.objects.exists()
    # Admin > Encryption: a typed key must follow the rules; a generated one is shown once.
    for bad in ["short1!A", "abcdefghijklmno1", "ABCDEFGHIJKLMNO!", "abcdefghijklmnoP", "abcdEFGH 1234!!!"]:
        assert "exactly 16 characters" in text(browser.post(f"{base}/admin/encryption/", {"key": bad}))
    created = text(browser.post(f"{base}/admin/encryption/", {"key": ""}))
    key = re.search(r'id="new-key">([^<]+)<', created).group(1)
    key = html.unescape(key)
    assert len(key) == 16
    again = text(browser.get(f"{base}/admin/encryption/"))
    assert "cannot be shown again" in again and html.escape(key) not in again
    # Step 2: Site Features > Enable Ocean Cloud Connect > Go to Cloud Connect > Store my encryption key.
    features = text(browser.get(f"{base}/admin/features/"))
    assert "Enable Ocean Cloud Connect" in features and "Go to Cloud Connect" not in features
    assert "not enabled" in text(browser.get(f"{base}/cloud-connect/"))
    browser.post(f"{base}/admin/features/", {"cloud_connect": "on"})
    assert "Go to Cloud Connect" in text(browser.get(f"{base}/admin/features/"))
    assert "Store my encryption key" in text(browser.get(f"{base}/cloud-connect/"))
    assert "This is not the site&#x27;s shared encryption key." in text(browser.post(f"{base}/cloud-connect/", {"key": "Wrong-key-1234!!"}))
    response = browser.post(f"{base}/cloud-connect/", {"key": key})
    assert response.status_code == 302
    site.refresh_from_db()
    assert site.key_in_cloud_connect
    # Step 3b-3h: Register an Integration.
    form = text(browser.get(f"{base}/admin/integrations/new/"))
    for label in ["eReferrals", "Integration Name", "Request URL", "Payload Type", "FHIR v0.11.1", "FHIR v0.10.0",
                  "API Key Authentication", "Header Name", "Key", COPY_LABEL, "HTTP Basic Authentication", "OAuth2 Authentication"]:
        assert html.escape(label) in form, label
    bad = text(browser.post(f"{base}/admin/integrations/new/", {"kind": "eReferrals", "name": "EMR integration", "request_url": "ftp://x", "payload_version": "0.11.1", "auth_type": "api_key"}))
    assert "Enter a valid Request URL" in bad
    no_key = text(browser.post(f"{base}/admin/integrations/new/", {"kind": "eReferrals", "name": "EMR integration", "request_url": receiver.url + "/fhir_bundles", "payload_version": "0.11.1", "auth_type": "api_key", "header_name": "Referral-Integration-API-Key"}))
    assert "Enter the Key." in no_key
    response = browser.post(f"{base}/admin/integrations/new/", {
        "kind": "eReferrals", "name": "EMR integration", "request_url": receiver.url + "/fhir_bundles", "payload_version": "0.11.1",
        "auth_type": "api_key", "header_name": "Referral-Integration-API-Key", "key": "k-123", "send_copy": "on",
    })
    assert response.status_code == 302
    integration = Integration.objects.get()
    assert (integration.auth_type, integration.header_name, integration.get_secret(), integration.send_copy) == ("api_key", "Referral-Integration-API-Key", "k-123", True)
    assert "k-123" not in integration.secret_encrypted
    listing_page = text(browser.get(f"{base}/admin/integrations/"))
    assert "EMR integration" in listing_page and 'class="hexagon unknown"' in listing_page
    # Directory listing bound to the integration with an External Service ID.
    browser.post(f"{base}/admin/listings/", {"name": "Soleil Physio", "accepts_ereferrals": "on", "integration": integration.pk, "external_service_id": "SOLEIL-1"})
    listing = Listing.objects.get()
    assert (listing.integration, listing.external_service_id) == (integration, "SOLEIL-1")
    # Step 4: Manage Credentials > Manage OAuth Credentials > Name > Add New Credential.
    assert "Manage OAuth Credentials" in text(browser.get(f"{base}/admin/credentials/"))
    created = text(browser.post(f"{base}/admin/credentials/oauth/", {"name": "EMR OAuth credentials"}))
    client_id = re.search(r'id="client-id">([^<]+)<', created).group(1)
    secret = re.search(r'id="client-secret">([^<]+)<', created).group(1)
    credential = OAuthCredential.objects.get()
    assert credential.client_id == client_id and credential.secret_matches(secret)
    assert secret not in text(browser.get(f"{base}/admin/credentials/oauth/"))
    token = Client().post("/svc/oauth2/token", {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret})
    assert token.status_code == 200


def test_a_user_sees_only_their_sites(browser, db):
    site = create_site(browser)
    stranger = Client()
    stranger.post("/signup/", {"username": "stranger", "password": PASSWORD})
    assert stranger.get(f"/site/{site.number}/admin/account/").status_code == 404
    assert stranger.get(f"/site/{site.number}/").status_code == 404


def test_referral_from_a_page_and_the_referral_page(browser, pair, receiver):
    referrer = Site.objects.get(number="2001")
    from harbour.sandbox.models import SiteUser
    from django.contrib.auth import get_user_model

    SiteUser.objects.create(site=referrer, user=get_user_model().objects.get(username="dr.soleil"))
    form = text(browser.get(f"/site/2001/referrals/new/?listing={pair['listing'].ref}"))
    assert pair["listing"].ref in form
    bad = text(browser.post("/site/2001/referrals/new/", {"listing": "nope", "family": "X", "reason": "r", "priority": "routine"}))
    assert "No listing has this reference." in bad
    bad = text(browser.post("/site/2001/referrals/new/", {"listing": pair["listing"].ref, "family": "X", "hcn": "123", "reason": "r", "priority": "routine"}))
    assert "An Ontario health card number has 10 digits." in bad
    response = browser.post("/site/2001/referrals/new/", {
        "listing": pair["listing"].ref, "family": "Gagnon", "given": "Luc", "hcn": "1234567890", "version_code": "AB",
        "birth_date": "1970-01-02", "reason": "Knee pain", "history": "Skiing", "priority": "routine",
    })
    assert response.status_code == 302
    referral = pair["listing"].referrals.get()
    assert referral.patient["family"] == "Gagnon" and referral.sender_user.username == "dr.soleil"
    deliver_due()
    [bundle] = receiver.bundles()
    assert bundle["entry"][0]["resource"]["eventCoding"]["code"] == "add-service-request"
    page = text(browser.get(f"/site/2001/referrals/{referral.ref}/"))
    assert 'id="folder">New' in page and "Knee pain" in page and "Referral sent from site 2001" in page and "Cancel referral" in page
    browser.post(f"/site/2001/referrals/{referral.ref}/message/", {"text": "Urgent-ish"})
    browser.post(f"/site/2001/referrals/{referral.ref}/edit/", {"family": "Gagnon", "hcn": "1234567890", "version_code": "AB", "reason": "Knee pain, worse"})
    browser.post(f"/site/2001/referrals/{referral.ref}/cancel/")
    page = text(browser.get(f"/site/2001/referrals/{referral.ref}/"))
    assert 'id="folder">Cancelled' in page and "Urgent-ish" in page and "Cancel referral" not in page
    deliver_due()
    assert [b["entry"][0]["resource"]["eventCoding"]["code"] for b in receiver.bundles()] == [
        "add-service-request", "send-communication-from-requester", "notify-update-service-request", "revoke-service-request"]
    # The receiving side sees it too, and cannot cancel it.
    assert "Cancelled" in text(browser.get("/site/2001/?folder=cancelled"))


def test_integration_page_shows_the_delivery_log_and_bulk_actions(browser, pair, receiver):
    from harbour.sandbox.models import SiteUser
    from django.contrib.auth import get_user_model
    from tests.sandbox.conftest import send_referral

    SiteUser.objects.create(site=pair["clinic"], user=get_user_model().objects.get(username="dr.soleil"))
    receiver.answer(500, "Harbour is down")
    referral = send_referral(pair)
    deliver_due()
    base = f"/site/1234/admin/integrations/{pair['integration'].pk}/"
    page = text(browser.get(base))
    assert "Harbour is down" in page and "add-service-request" in page
    assert "500" in text(browser.get("/site/1234/admin/integrations/"))
    assert 'class="hexagon warning"' in text(browser.get("/site/1234/admin/integrations/"))
    assert "Send as a new referral" in page and "Send as an updated referral" in page
    result = text(browser.post(base, {"refs": f"{referral.ref}\nunknown", "mode": "update"}))
    assert "Queued 1 referral(s); not found for this site: unknown" in result
    assert referral.deliveries.filter(event="notify-update-service-request", reason="resend").count() == 1


@pytest.mark.urls("harbour.sandbox.urls")
def test_the_sandbox_answers_unknown_pages_with_its_own_404(client, db):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    body = response.content.decode()
    assert "Ocean sandbox" in body and "This page does not exist in the sandbox" in body
