"""The JSON admin API: the same steps as the portal, for tests and demos."""
import base64

import pytest

from harbour.sandbox.delivery import deliver_due
from harbour.sandbox.sites import OAUTH_NEEDS_SEK, SEK_RULES
from tests.sandbox.conftest import PATIENT, AdminApi


def test_the_admin_api_needs_its_token(db, settings):
    assert AdminApi(token="wrong").post("users", {"username": "a", "password": "longenough"}, expect=401) == {
        "error": "A valid X-Sandbox-Admin-Token header is required."}
    settings.SANDBOX_ADMIN_TOKEN = ""
    AdminApi(token="").post("users", {"username": "a", "password": "longenough"}, expect=401)


def test_article_steps_through_the_api(api, receiver):
    api.post("users", {"username": "clinic-admin", "password": "password-123"}, expect=201)
    site = api.post("sites", {"name": "Clinique Soleil", "username": "clinic-admin"}, expect=201)
    number = site["number"]
    assert number.isdigit() and not site["has_encryption_key"]
    assert api.post(f"sites/{number}/oauth-credentials", {"name": "EMR"}, expect=409) == {"error": OAUTH_NEEDS_SEK, "field": None}
    assert api.post(f"sites/{number}/encryption-key", {"key": "too-short"}, expect=400)["error"] == SEK_RULES
    key = api.post(f"sites/{number}/encryption-key", {}, expect=201)["key"]
    assert api.post(f"sites/{number}/encryption-key", {}, expect=409)["error"].startswith("This site already has")
    assert "not enabled" in api.post(f"sites/{number}/cloud-connect/key", {"key": key}, expect=409)["error"]
    api.post(f"sites/{number}/site-features", {"cloud_connect": True}, expect=200)
    assert api.post(f"sites/{number}/cloud-connect/key", {"key": key[::-1]}, expect=400)["error"] == "This is not the site's shared encryption key."
    assert api.post(f"sites/{number}/cloud-connect/key", {"key": key}, expect=200)["key_in_cloud_connect"] is True
    integration = api.post(f"sites/{number}/integrations", {
        "name": "EMR integration", "request_url": receiver.url + "/fhir_bundles", "payload_version": "0.11.1",
        "auth_type": "api_key", "header_name": "Referral-Integration-API-Key", "key": "secret-key", "send_copy": True,
    }, expect=201)
    assert integration["health"] == "unknown" and "secret-key" not in str(integration)
    listing = api.post(f"sites/{number}/listings", {"name": "Soleil", "integration": integration["id"], "external_service_id": "S-1"}, expect=201)
    credential = api.post(f"sites/{number}/oauth-credentials", {"name": "EMR OAuth credentials"}, expect=201)
    assert credential["client_id"] and credential["secret"]
    state = api.get(f"sites/{number}")
    assert state["oauth_credentials"] == [{"name": "EMR OAuth credentials", "client_id": credential["client_id"], "revoked": False}]
    assert state["listings"][0]["integration"] == integration["id"]
    assert credential["secret"] not in str(state)

    # A referral from another site, with an attachment.
    sender = api.post("sites", {"name": "Referrer", "number": "2001"}, expect=201)
    referral = api.post("referrals", {
        "from_site": sender["number"], "listing": listing["ref"], "patient": PATIENT, "reason": "Back pain",
        "answers": [{"link_id": "hx", "text": "History:", "answer": "None"}],
        "attachments": [{"title": "note.txt", "content_type": "text/plain", "data": base64.b64encode(b"hello").decode()}],
    }, expect=201)
    assert referral["folder"] == "new" and referral["receiver_site"] == number
    assert referral["attachments"][0]["size"] == 5
    # The referrer's site has no key in Cloud Connect, but the target's integration belongs to the clinic.
    assert [d["state"] for d in referral["deliveries"]] == ["pending"]
    assert api.post("deliveries/run", {}, expect=200) == {"attempted": 1}
    assert len(receiver.bundles()) == 1
    ref = referral["ref"]
    api.post(f"referrals/{ref}/messages", {"site": sender["number"], "text": "Hello"}, expect=201)
    edited = api.post(f"referrals/{ref}/edit", {"site": sender["number"], "reason": "Back pain, worse"}, expect=200)
    assert edited["reason"] == "Back pain, worse"
    assert api.post(f"referrals/{ref}/cancel", {"site": number}, expect=403)["error"] == "Only the referral's sender can cancel it."
    assert api.post(f"referrals/{ref}/edit", {"site": number, "reason": "x"}, expect=403)["error"] == "Only the referral's sender can edit it."
    cancelled = api.post(f"referrals/{ref}/cancel", {"site": sender["number"]}, expect=200)
    assert cancelled["folder"] == "cancelled" and cancelled["status"] == "revoked"
    assert api.post(f"referrals/{ref}/cancel", {"site": sender["number"]}, expect=409)["error"] == "This referral is already cancelled."
    deliver_due()
    detail = api.get(f"integrations/{integration['id']}")
    assert [d["event"] for d in detail["deliveries"]] == [
        "add-service-request", "send-communication-from-requester", "notify-update-service-request", "revoke-service-request"]
    assert all(d["state"] == "delivered" and d["attempt_log"][0]["status_code"] == 200 for d in detail["deliveries"])
    resent = api.post(f"integrations/{integration['id']}/bulk-resend", {"csv": f"{ref}\n", "mode": "new"}, expect=200)
    assert resent == {"queued": [ref], "not_found": [], "event": "add-service-request"}
    events = [e["kind"] for e in api.get(f"referrals/{ref}")["events"]]
    assert events == ["sent", "message", "edited", "cancelled", "resent"]


@pytest.mark.parametrize("path, body, status, error", [
    ("users", {"username": "", "password": "password-1"}, 400, "Enter a username."),
    ("sites", {"name": ""}, 400, "Enter the site's name."),
    ("sites", {"name": "X", "number": "12a"}, 400, "A site number is made of digits."),
    ("sites", {"name": "X", "username": "ghost"}, 404, "No user ghost."),
    ("sites/999/encryption-key", {}, 404, "No site 999."),
    ("referrals", {"from_site": "999"}, 404, "No site 999."),
    ("referrals/not-a-uuid/cancel", {"site": "1"}, 404, "No referral not-a-uuid."),
])
def test_admin_api_refusals(api, path, body, status, error):
    assert api.post(path, body, expect=status)["error"] == error


def test_bad_referral_input_and_bad_json(api, pair):
    listing = pair["listing"].ref
    cases = [
        ({"patient": {}, "reason": "x"}, "Enter the patient's last name."),
        ({"patient": {"family": "X", "hcn": "12"}, "reason": "x"}, "An Ontario health card number has 10 digits."),
        ({"patient": {"family": "X", "version_code": "ABC"}, "reason": "x"}, "The version code is one or two letters."),
        ({"patient": {"family": "X", "birth_date": "02/29/1980"}, "reason": "x"}, "Enter the birth date as YYYY-MM-DD."),
        ({"patient": {"family": "X"}, "reason": ""}, "Enter the reason for referral."),
        ({"patient": {"family": "X"}, "reason": "x", "attachments": [{"title": "a", "data": "***"}]}, "Attachment a: data is not valid base64."),
        ({"patient": {"family": "X"}, "reason": "x", "answers": [{"text": "no id"}]}, "Each form answer needs a link_id."),
    ]
    for body, error in cases:
        assert api.post("referrals", {"from_site": "2001", "listing": listing, **body}, expect=400)["error"] == error
    assert api.post("referrals", {"from_site": "2001", "listing": "nope", "patient": {"family": "X"}, "reason": "x"}, expect=404)["error"] == "No listing nope."
    response = api.client.post("/sandbox-api/users", b"{oops", content_type="application/json")
    assert response.status_code == 400 and response.json() == {"error": "The body is not JSON."}
    assert api.client.get("/sandbox-api/users").status_code == 405
    assert not pair["listing"].referrals.exists()


def test_integration_registration_refusals(api, pair):
    number = pair["clinic"].number
    cases = [
        ({"name": "x", "request_url": "http://a.test/", "kind": "eConsults"}, "The sandbox offers the eReferrals integration type only."),
        ({"name": "", "request_url": "http://a.test/"}, "Enter an Integration Name."),
        ({"name": "x", "request_url": "not a url"}, "Enter a valid Request URL starting with http:// or https://."),
        ({"name": "x", "request_url": "http://a.test/", "payload_version": "0.12"}, "Choose the Payload Type FHIR v0.11.1 or FHIR v0.10.0."),
        ({"name": "x", "request_url": "http://a.test/", "auth_type": "api_key", "header_name": "Bad Header", "key": "k"}, "Enter a Header Name made of letters, digits and dashes."),
        ({"name": "x", "request_url": "http://a.test/", "auth_type": "basic", "basic_username": "u"}, "Enter the password."),
        ({"name": "x", "request_url": "http://a.test/", "auth_type": "oauth2", "oauth_token_url": "http://a.test/t", "oauth_client_id": "c"}, "Enter the client secret."),
    ]
    for body, error in cases:
        assert api.post(f"sites/{number}/integrations", body, expect=400)["error"] == error


def test_admin_token_command_prints_the_setting(settings, capsys):
    from django.core.management import call_command

    call_command("admin_token")
    assert capsys.readouterr().out.strip() == settings.SANDBOX_ADMIN_TOKEN
