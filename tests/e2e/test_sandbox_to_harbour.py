"""The clinic setup article, end to end: the Ocean sandbox and Harbour as two real servers.

Both sides are driven through their HTTP interfaces (Harbour's sign-in and settings pages, the
sandbox's portal pages); the referring site, which the article does not cover, is prepared
through the sandbox's admin API. A referral sent from that site to the clinic's listing must
arrive in Harbour; the clinic's answer must come back to the sandbox and be echoed to Harbour.
"""
import html
import json
import re
import uuid

import httpx
import pytest

from tests.sandbox.receiver import Receiver
from tests.servers import admin_api, start_harbour, start_sandbox, start_together, wait_for

pytestmark = [pytest.mark.servers, pytest.mark.timeout(240)]
# 96 hours of Ocean's retry schedule pass in under a second; first attempts are unaffected.
TIME_SCALE = 360_000


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """One Harbour and one sandbox for this module, started together (sites keep tests apart)."""
    root = tmp_path_factory.mktemp("e2e")
    harbour, sandbox = start_together(
        lambda: start_harbour(root / "harbour"), lambda: start_sandbox(root / "sandbox", time_scale=TIME_SCALE),
    )
    yield harbour, sandbox
    harbour.stop()
    sandbox.stop()


@pytest.fixture
def harbour_server(servers, request):
    yield servers[0]
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        print(servers[0].logs())


@pytest.fixture
def sandbox_server(servers, request):
    yield servers[1]
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        print(servers[1].logs())

PASSWORD = "e2e-password-Harbour-1"


class Browser:
    """A cookie-keeping HTTP client that posts forms with their CSRF token, like a browser."""

    def __init__(self, base_url: str, csrf_cookie: str):
        self.http = httpx.Client(base_url=base_url, timeout=30, follow_redirects=False)
        self.csrf_cookie = csrf_cookie

    def get(self, path: str, expect: int = 200) -> str:
        response = self.http.get(path)
        assert response.status_code == expect, (path, response.status_code, response.text[:500])
        return response.text

    def post(self, path: str, data: dict, expect: int | None = None, files=None) -> httpx.Response:
        if self.csrf_cookie not in self.http.cookies:
            self.http.get(path)
        data = {**data, "csrfmiddlewaretoken": self.http.cookies[self.csrf_cookie]}
        response = self.http.post(path, data=data, files=files)
        if expect is not None:
            assert response.status_code == expect, (path, response.status_code, response.text[:1500])
        return response


def found(pattern: str, page: str) -> str:
    match = re.search(pattern, page)
    assert match, f"{pattern!r} not found in page:\n{page[:3000]}"
    return html.unescape(match.group(1))


def inbound(harbour_server, ref: str) -> list[tuple[str, str]]:
    """(event, state) of every InboundMessage Harbour stored for this referral, oldest first."""
    out = harbour_server.shell(
        "import json; from harbour.intake.models import InboundMessage as M; "
        f"print(json.dumps(list(M.objects.filter(referral_ref='{ref}').order_by('id').values_list('event_code', 'state'))))"
    )
    return [tuple(row) for row in json.loads(out.strip().splitlines()[-1])]


def test_article_steps_then_a_referral_travels_from_the_sandbox_to_harbour_and_back(harbour_server, sandbox_server):
    harbour_server.manage("create_clinic", "Clinique Soleil", "--admin", "admin-soleil", "--password", PASSWORD)
    ocean = Browser(sandbox_server.base_url, "sandbox_csrftoken")
    emr = Browser(harbour_server.base_url, "csrftoken")
    sandbox = admin_api(sandbox_server)

    # Ocean: "Sign up here!", create the site; Harbour: sign in.
    assert "Sign up here!" in ocean.get("/login/")
    ocean.post("/signup/", {"username": "soleil-admin", "email": "admin@soleil.example", "password": PASSWORD}, expect=302)
    ocean.post("/sites/new/", {"name": "Clinique Soleil"}, expect=302)
    emr.post("/accounts/login/", {"username": "admin-soleil", "password": PASSWORD}, expect=302)

    # Step 1: Ocean Menu > Admin > Site Account > Site Number, into Harbour's settings.
    number = found(r'<a href="/site/(\d+)/">', ocean.get("/"))
    assert found(r'id="site-number">(\d+)<', ocean.get(f"/site/{number}/admin/account/")) == number
    settings_path = "/settings/consultations/ocean/"
    emr.get(settings_path)
    emr.post(settings_path, {"site_number": number, "server": "custom", "custom_server_url": sandbox_server.base_url}, expect=302)

    # Step 2: the SEK (Admin > Encryption), Enable Ocean Cloud Connect, Store my encryption key.
    site = f"/site/{number}"
    sek = found(r'id="new-key">([^<]+)<', ocean.post(f"{site}/admin/encryption/", {"key": ""}, expect=200).text)
    ocean.post(f"{site}/admin/features/", {"cloud_connect": "on"}, expect=302)
    assert "Go to Cloud Connect" in ocean.get(f"{site}/admin/features/")
    ocean.post(f"{site}/cloud-connect/", {"key": sek}, expect=302)
    assert "is stored in Cloud Connect" in ocean.get(f"{site}/cloud-connect/")

    # Step 3: Harbour's « Générer » (key shown once), then Register an Integration in Ocean.
    generated = emr.post(f"{settings_path}inbound-key/", {}, expect=200).text
    inbound_key = found(r'id="copy-inbound-key"[^>]*value="([^"]+)"', generated)
    request_url = found(r'id="copy-request-url"[^>]*value="([^"]+)"', generated)
    assert request_url == f"{harbour_server.base_url}/public/ocean/fhir_bundles"
    emr.post(settings_path, {"site_number": number, "server": "custom", "custom_server_url": sandbox_server.base_url}, expect=302)
    ocean.post(f"{site}/admin/integrations/new/", {
        "kind": "eReferrals", "name": "EMR integration", "request_url": request_url, "payload_version": "0.11.1",
        "auth_type": "api_key", "header_name": "Referral-Integration-API-Key", "key": inbound_key, "send_copy": "on",
    }, expect=302)
    integration_id = found(rf'href="{site}/admin/integrations/(\d+)/"', ocean.get(f"{site}/admin/integrations/"))
    # Ocean's guide: the listing accepts eReferrals and is bound to the integration.
    ocean.post(f"{site}/admin/listings/", {
        "name": "Clinique Soleil Physiothérapie", "accepts_ereferrals": "on", "integration": integration_id, "external_service_id": "SOLEIL-PHYSIO",
    }, expect=302)

    # Step 4: Manage Credentials > Manage OAuth Credentials > Add New Credential, into Harbour.
    created = ocean.post(f"{site}/admin/credentials/oauth/", {"name": "EMR OAuth credentials"}, expect=200).text
    client_id = found(r'id="client-id">([^<]+)<', created)
    secret = found(r'id="client-secret">([^<]+)<', created)
    emr.post(settings_path, {
        "site_number": number, "server": "custom", "custom_server_url": sandbox_server.base_url,
        "oauth_client_id": client_id, "oauth_client_secret": secret,
    }, expect=302)
    # Harbour's connection test gets a token from the sandbox and reads NamingSystem/id-site-number.
    emr.post("/ocean/connection-test/", {}, expect=302)
    assert '<li class="success">' in emr.get(settings_path)

    # A referring site (not in the article) sends a referral to the clinic's listing.
    referrer = sandbox.post("sites", json={"name": "Family Practice", "number": "2001"}).json()["number"]
    referrer_key = sandbox.post(f"sites/{referrer}/encryption-key", json={}).json()["key"]
    sandbox.post(f"sites/{referrer}/site-features", json={"cloud_connect": True}).raise_for_status()
    sandbox.post(f"sites/{referrer}/cloud-connect/key", json={"key": referrer_key}).raise_for_status()
    listing = sandbox.get(f"sites/{number}").json()["listings"][0]["ref"]
    response = sandbox.post("referrals", json={
        "from_site": referrer, "listing": listing, "reason": "Back pain with no red flags",
        "patient": {"family": "Tremblay", "given": "Marie", "birth_date": "1980-02-29", "gender": "female", "hcn": "1234567890", "version_code": "AB"},
        "referrer": {"family": "Kavanagh", "given": "Doug", "cpso": "98765"},
        "answers": [{"link_id": "history", "text": "History:", "answer": "Two weeks"}],
    })
    assert response.status_code == 201, response.text
    ref = response.json()["ref"]

    # The sandbox's worker delivers it; Harbour stores it and its worker turns it into a referral.
    def delivered():
        deliveries = sandbox.get(f"referrals/{ref}").json()["deliveries"]
        return deliveries if deliveries and all(d["state"] == "delivered" for d in deliveries) else None

    deliveries = wait_for(delivered, timeout=30, what="the sandbox to deliver the referral")
    assert [(d["event"], d["last_status_code"]) for d in deliveries] == [("add-service-request", 200)]
    wait_for(lambda: ("add-service-request", "processed") in inbound(harbour_server, ref), timeout=30, what="Harbour to process it")
    referral_list = wait_for(lambda: (page := emr.get("/referrals/")) and "Tremblay" in page and page, what="the referral in Harbour's list")
    detail_path = found(r'href="(/referrals/\d+/)"', referral_list)
    detail = emr.get(detail_path)
    assert ref in detail and "Back pain with no red flags" in detail

    # The clinic accepts it in Harbour: Harbour's outbox calls $process-messages with its token,
    # the sandbox files it in Pending Booking and echoes the change back to Harbour.
    harbour_server.shell(
        "from harbour.referrals.models import Referral; from harbour.clinics.models import User; "
        "from harbour.ocean.actions import accept; "
        f"accept(Referral.objects.get(ocean_ref='{ref}'), User.objects.get(username='admin-soleil'))"
    )
    wait_for(lambda: sandbox.get(f"referrals/{ref}").json()["folder"] == "pending_booking", timeout=30, what="the sandbox to file the acceptance")
    state = sandbox.get(f"referrals/{ref}").json()
    assert state["task_status"] == "accepted" and any(e["kind"] == "status" and e["via"] == "api" for e in state["events"])
    wait_for(lambda: ("notify-update-service-request", "processed") in inbound(harbour_server, ref), timeout=30, what="the echo in Harbour")
    page = ocean.get(f"{site}/referrals/{ref}/")
    assert 'id="folder">Pending Booking' in page

    # Bulk Actions: resend "as a new referral"; Harbour keeps one referral for the ref.
    result = ocean.post(f"{site}/admin/integrations/{integration_id}/", {"refs": ref, "mode": "new"}, expect=200).text
    assert "Queued 1 referral(s)" in result
    wait_for(lambda: [e for e, _ in inbound(harbour_server, ref)].count("add-service-request") == 2, timeout=30, what="the resend in Harbour")
    count = harbour_server.shell(f"from harbour.referrals.models import Referral; print(Referral.objects.filter(ocean_ref='{ref}').count())")
    assert count.strip().splitlines()[-1] == "1"

    # The referrer cancels; Harbour hears revoke-service-request.
    sandbox.post(f"referrals/{ref}/cancel", json={"site": referrer}).raise_for_status()
    wait_for(lambda: ("revoke-service-request", "processed") in inbound(harbour_server, ref), timeout=30, what="the cancellation in Harbour")
    assert "Tremblay" in emr.get(detail_path)


def test_retry_schedule_give_up_and_bulk_resend_on_a_real_server(sandbox_server):
    api = admin_api(sandbox_server)
    endpoint = Receiver()
    try:
        for number in ("7001", "7002"):
            api.post("sites", json={"name": f"Site {number}", "number": number}).raise_for_status()
            key = api.post(f"sites/{number}/encryption-key", json={}).json()["key"]
            api.post(f"sites/{number}/site-features", json={"cloud_connect": True}).raise_for_status()
            api.post(f"sites/{number}/cloud-connect/key", json={"key": key}).raise_for_status()
        flaky = api.post("sites/7001/integrations", json={
            "name": "Flaky EMR", "request_url": endpoint.url + "/fhir_bundles", "auth_type": "api_key",
            "header_name": "Referral-Integration-API-Key", "key": "k"}).json()
        down = api.post("sites/7002/integrations", json={
            "name": "Referrer EMR, down", "request_url": "http://127.0.0.1:9/fhir_bundles", "send_copy": True}).json()
        listing = api.post("sites/7001/listings", json={"name": "Clinic", "integration": flaky["id"]}).json()["ref"]
        endpoint.answer(500, "not yet", times=3)
        ref = api.post("referrals", json={"from_site": "7002", "listing": listing, "reason": "Knee", "patient": {"family": "Roy"}}).json()["ref"]

        # The target's endpoint fails three times, then takes it: delivered on the 4th attempt.
        def states():
            by_integration = {d["integration"]: d for d in api.get(f"referrals/{ref}").json()["deliveries"]}
            done = all(d["state"] in {"delivered", "gave_up"} for d in by_integration.values())
            return by_integration if done else None

        deliveries = wait_for(states, timeout=60, what="both deliveries to finish")
        assert (deliveries[flaky["id"]]["state"], deliveries[flaky["id"]]["attempts"]) == ("delivered", 4)
        # The copy's endpoint refuses connections: Ocean's whole schedule, then it gives up.
        detail = api.get(f"integrations/{down['id']}").json()
        [copy] = detail["deliveries"]
        assert copy["state"] == "gave_up" and copy["attempts"] == 1 + 5 + 96
        assert all(a["status_code"] is None and a["error"].startswith("Connection refused") for a in copy["attempt_log"])
        assert detail["health"] == "error"
        log = api.get(f"integrations/{flaky['id']}").json()
        assert [a["status_code"] for a in log["deliveries"][0]["attempt_log"]] == [500, 500, 500, 200]
        assert log["health"] == "ok"

        # Bulk resend as an updated referral, and an unknown ref reported as such.
        result = api.post(f"integrations/{flaky['id']}/bulk-resend", json={"csv": f"{ref}\n{uuid.uuid4()}", "mode": "update"}).json()
        assert result["queued"] == [ref] and len(result["not_found"]) == 1
        wait_for(lambda: len(endpoint.bundles()) == 5, timeout=30, what="the resend")
        events = [b["entry"][0]["resource"]["eventCoding"]["code"] for b in endpoint.bundles()]
        assert events == ["add-service-request"] * 4 + ["notify-update-service-request"]
    finally:
        endpoint.stop()
