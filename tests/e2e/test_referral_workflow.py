"""Issue #5 end to end: staff work a referral in Harbour's pages and every decision reaches Ocean.

Real servers (tests/servers.py): Harbour (web + worker) and the Ocean sandbox (web + worker).
Harbour is driven only through its HTTP pages (sign-in form, CSRF cookie, the referral page's
forms); the sandbox is prepared and read through its admin API. A referral sent from a sandbox
site arrives, is matched to a chart, accepted, booked, rebooked, messaged and completed, and the
sandbox files each change in the right Ocean folder, once and in order. Then the same with the
sandbox down for a while (Harbour shows "not synced", its outbox catches up after the restart),
and with access tokens that expire (the sandbox issues 2-second tokens).
"""
import html
import json
import os
import re
import signal
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.servers import admin_api, start_harbour, start_sandbox, start_together, wait_for

pytestmark = [pytest.mark.servers, pytest.mark.timeout(240)]
PASSWORD = "e2e-password-Harbour-5"
CLINIC_SITE, REFERRER_SITE = "3001", "2001"
PATIENT = {"family": "Tremblay", "given": "Marie", "birth_date": "1980-02-29", "gender": "female",
           "hcn": "1234567890", "version_code": "AB"}


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    root = tmp_path_factory.mktemp("workflow")
    harbour, sandbox = start_together(
        # Short outbox backoff so the catch-up after an outage takes a second, not minutes.
        lambda: start_harbour(root / "harbour", env={
            "HARBOUR_OUTBOX_BACKOFF_BASE": "0.2", "HARBOUR_OUTBOX_BACKOFF_CAP": "1",
            "HARBOUR_OUTBOX_MAX_ATTEMPTS": "1000"}),
        lambda: start_sandbox(root / "sandbox", env={"SANDBOX_TOKEN_LIFETIME_SECONDS": "2"}),
    )
    yield harbour, sandbox
    harbour.stop()
    sandbox.stop()


@pytest.fixture(scope="module")
def world(servers):
    """The clinic set up on both sides (settings through Harbour's pages), signed in as its admin."""
    harbour, sandbox = servers
    harbour.manage("create_clinic", "Clinique Soleil", "--admin", "admin-soleil", "--password", PASSWORD)
    api = admin_api(sandbox)
    for number, name in ((CLINIC_SITE, "Clinique Soleil"), (REFERRER_SITE, "Family Practice")):
        api.post("sites", json={"name": name, "number": number}).raise_for_status()
        key = api.post(f"sites/{number}/encryption-key", json={}).json()["key"]
        api.post(f"sites/{number}/site-features", json={"cloud_connect": True}).raise_for_status()
        api.post(f"sites/{number}/cloud-connect/key", json={"key": key}).raise_for_status()

    emr = Browser(harbour.base_url)
    emr.login("admin-soleil", PASSWORD)
    settings_path = "/settings/consultations/ocean/"
    server = {"site_number": CLINIC_SITE, "server": "custom", "custom_server_url": sandbox.base_url}
    emr.post(settings_path, server, expect=302)
    generated = emr.post(f"{settings_path}inbound-key/", {}, expect=200).text
    inbound_key = found(r'id="copy-inbound-key"[^>]*value="([^"]+)"', generated)
    credentials = api.post(f"sites/{CLINIC_SITE}/oauth-credentials", json={"name": "EMR"}).json()
    emr.post(settings_path, {**server, "oauth_client_id": credentials["client_id"],
                             "oauth_client_secret": credentials["secret"]}, expect=302)
    integration = api.post(f"sites/{CLINIC_SITE}/integrations", json={
        "name": "Harbour", "request_url": f"{harbour.base_url}/public/ocean/fhir_bundles", "auth_type": "api_key",
        "header_name": "Referral-Integration-API-Key", "key": inbound_key}).json()
    listing = api.post(f"sites/{CLINIC_SITE}/listings", json={
        "name": "Physiothérapie", "integration": integration["id"]}).json()["ref"]
    # The settings page carries the connection test and the outbox panel.
    page = emr.get(settings_path)
    assert "Test the connection to Ocean" in page or "Tester la connexion" in page
    emr.post("/ocean/connection-test/", {}, expect=302)
    assert '<li class="success">' in emr.get(settings_path)
    return {"harbour": harbour, "sandbox": sandbox, "api": api, "emr": emr, "listing": listing,
            "inbound_key": inbound_key}


class Browser:
    """Harbour in a cookie-keeping HTTP client: forms posted with the CSRF cookie, in English."""

    def __init__(self, base_url: str):
        import httpx

        self.http = httpx.Client(base_url=base_url, timeout=30, follow_redirects=False,
                                 headers={"Accept-Language": "en"})

    def login(self, username, password):
        self.get("/accounts/login/")
        self.post("/accounts/login/", {"username": username, "password": password}, expect=302)

    def get(self, path: str, expect: int = 200) -> str:
        response = self.http.get(path)
        assert response.status_code == expect, (path, response.status_code, response.text[:800])
        return html.unescape(response.text)

    def post(self, path: str, data: dict, expect: int | None = None):
        response = self.http.post(path, data={**data, "csrfmiddlewaretoken": self.http.cookies["csrftoken"]})
        if expect is not None:
            assert response.status_code == expect, (path, response.status_code, response.text[:1500])
        return response

    def submit(self, page: str, form_id: str, data: dict | None = None, expect: int = 302):
        """Post one of the page's forms with its action and hidden fields (idempotency key, seen state), like a click."""
        form = found(rf'(<form[^>]*id="{form_id}".*?</form>)', page, flags=re.S)
        action = found(r'action="([^"]+)"', form)
        fields = {name: value for name in ("idempotency_key", "seen_state")
                  if (value := (re.search(rf'name="{name}" value="([^"]*)"', form) or [None, None])[1]) is not None}
        return self.post(action, {**fields, **(data or {})}, expect=expect)


def found(pattern: str, text: str, flags=0) -> str:
    match = re.search(pattern, text, flags)
    assert match, f"{pattern!r} not found in:\n{text[:3000]}"
    return match.group(1)


def send_referral(world, reason: str) -> str:
    response = world["api"].post("referrals", json={
        "from_site": REFERRER_SITE, "listing": world["listing"], "reason": reason, "patient": PATIENT,
        "referrer": {"family": "Kavanagh", "given": "Doug", "cpso": "98765"}})
    assert response.status_code == 201, response.text
    return response.json()["ref"]


def referral_page_path(world, ref: str) -> str:
    """Wait for the referral in the Received list (found by its reference), return its page's path."""
    emr = world["emr"]

    def listed():
        page = emr.get(f"/referrals/?ref={ref}")
        match = re.search(r'<tr id="referral-(\d+)"', page)
        return f"/referrals/{match.group(1)}/" if match else None

    return wait_for(listed, timeout=30, what=f"referral {ref} in Harbour's Received list")


def ocean(world, ref: str) -> dict:
    return world["api"].get(f"referrals/{ref}").json()


def api_events(world, ref: str) -> list[str]:
    """What the clinic's EMR changed in the sandbox, in order (each accepted $process-messages call)."""
    events = [e for e in ocean(world, ref)["events"] if e["via"] == "api" and e["kind"] != "sent"]
    print("sandbox events:", [(e["kind"], e["text"]) for e in events])
    return [e["kind"] for e in events]


def synced(world, path: str) -> str | None:
    page = world["emr"].get(path)
    return page if 'id="not-synced"' not in page and 'data-sync="pending"' not in page else None


def future(days: int, hour: int) -> tuple[str, str]:
    day = (timezone.localtime() + timedelta(days=days)).date().isoformat()
    return day, f"{hour:02d}:00"


def booking(days: int, hour: int, confirmed: bool) -> dict:
    day, at = future(days, hour)
    data = {"date": day, "time": at, "duration": "30", "location": "Salle 2", "instructions": "Apportez votre carte santé."}
    if confirmed:
        data["confirmed"] = "on"
    return data


def test_a_referral_is_matched_accepted_booked_rebooked_messaged_and_completed(world):
    emr = world["emr"]
    ref = send_referral(world, "Back pain with no red flags")
    path = referral_page_path(world, ref)
    # Unread for the admin, counted in the navigation.
    assert 'id="unread-count"' in emr.get("/referrals/")
    page = emr.get(path)
    assert ref in page and "Back pain with no red flags" in page and "Doug Kavanagh" in page
    assert f'siteNum={CLINIC_SITE}#/referrals/{ref}/edit' in page  # View in Ocean

    # Matched: a chart created from the referral (the patients POST), linked.
    emr.post(f"/patients/referral/{path.split('/')[2]}/create/", {}, expect=302)
    page = emr.get(path)
    assert "Linked to chart" in page

    # Accept -> Pending Booking.
    emr.submit(page, "form-accept")
    wait_for(lambda: ocean(world, ref)["folder"] == "pending_booking", what="Pending Booking in the sandbox")
    assert ocean(world, ref)["task_status"] == "accepted"
    page = wait_for(lambda: synced(world, path), what="the acceptance delivered")
    assert 'data-sync="delivered"' in page

    # Book (confirmed) -> Booked, confirmed.
    emr.submit(page, "form-book", booking(7, 10, confirmed=True))
    wait_for(lambda: ocean(world, ref)["folder"] == "booked", what="Booked in the sandbox")
    [appointment] = [a for a in ocean(world, ref)["appointments"] if not a["cancelled"]]
    assert appointment["confirmed"] is True and appointment["patient_instruction"] == "Apportez votre carte santé."
    first_start = appointment["start"]
    page = wait_for(lambda: synced(world, path), what="the booking delivered")

    # Rebook (unconfirmed, another day).
    emr.submit(page, "form-rebook", booking(9, 14, confirmed=False))

    def rebooked():
        current = [a for a in ocean(world, ref)["appointments"] if not a["cancelled"]]
        return current and current[-1]["start"] != first_start and current[-1]

    appointment = wait_for(rebooked, what="the new appointment in the sandbox")
    assert appointment["confirmed"] is False and ocean(world, ref)["folder"] == "booked"
    expected_day, _ = future(9, 14)
    assert appointment["start"].startswith(expected_day)
    page = wait_for(lambda: synced(world, path), what="the rebooking delivered")

    # A message to the referrer.
    emr.submit(page, "form-message", {"text": "Please bring the X-ray report."})
    wait_for(lambda: any(m["text"] == "Please bring the X-ray report." and m["side"] == "receiver"
                         for m in ocean(world, ref)["messages"]), what="the message in the sandbox")
    page = wait_for(lambda: synced(world, path), what="the message delivered")

    # Completed.
    emr.submit(page, "form-complete")
    wait_for(lambda: ocean(world, ref)["folder"] == "completed", what="Completed in the sandbox")
    page = wait_for(lambda: synced(world, path), what="the completion delivered")
    assert "Completed" in page and 'id="form-complete"' not in page

    # Each decision reached Ocean exactly once, in order (a rebooking carries the Task, still
    # accepted, with the new Appointment: the sandbox logs both).
    assert api_events(world, ref) == ["status", "appointment", "status", "appointment", "message", "status"]
    # The list filters find it in Completed, not in Not synced.
    assert f'href="{path}"' in emr.get(f"/referrals/?folder=completed&ref={ref}")
    assert f'href="{path}"' not in emr.get("/referrals/?folder=not_synced")


def thread_of(page: str) -> str:
    """The referral page's Messages section."""
    return found(r'(<section[^>]*aria-labelledby="h-messages".*?</section>)', page, flags=re.S)


def test_the_clinic_messages_the_receiver_of_a_referral_it_sent(world):
    """Both sides message [F 34]: on the copy of a referral the clinic sent, Harbour offers only a
    message (HARBOUR_OCEAN_MESSAGES_ON_SENT_COPIES, on by default), which reaches the receiver as
    send-communication-from-requester from the sender site."""
    emr, api = world["emr"], world["api"]
    # The clinic's copy integration ("send a copy of referrals sent from this site") and a listing elsewhere.
    api.post(f"sites/{CLINIC_SITE}/integrations", json={
        "name": "Harbour copies", "request_url": f"{world['harbour'].base_url}/public/ocean/fhir_bundles",
        "auth_type": "api_key", "header_name": "Referral-Integration-API-Key", "key": world["inbound_key"],
        "send_copy": True}).raise_for_status()
    elsewhere = api.post(f"sites/{REFERRER_SITE}/listings", json={"name": "Cardiology clinic"}).json()["ref"]
    response = api.post("referrals", json={
        "from_site": CLINIC_SITE, "listing": elsewhere, "reason": "Palpitations", "patient": PATIENT,
        "referrer": {"family": "Roy", "given": "Ana", "cpso": "12345"}})
    assert response.status_code == 201, response.text
    ref = response.json()["ref"]

    def listed():
        page = emr.get(f"/referrals/?direction=sent&ref={ref}")
        match = re.search(r'<tr id="referral-(\d+)"', page)
        return f"/referrals/{match.group(1)}/" if match else None

    path = wait_for(listed, timeout=30, what=f"referral {ref} in Harbour's Sent list")
    page = emr.get(path)
    assert "Send a message to the receiver" in page
    assert 'id="form-accept"' not in page and 'id="form-decline"' not in page and 'id="form-book"' not in page
    emr.submit(page, "form-message", {"text": "Any news on the booking?"})

    def from_sender():
        return [m for m in ocean(world, ref)["messages"] if m["text"] == "Any news on the booking?"]

    [message] = wait_for(from_sender, what="the clinic's message in the sandbox")
    assert (message["side"], message["site"], message["via"]) == ("sender", CLINIC_SITE, "api")
    assert ocean(world, ref)["folder"] == "new"  # a message changes no status
    page = wait_for(lambda: synced(world, path), what="the message delivered")
    assert "Message sent by" in page

    # The receiver answers in Ocean: its message reaches the copy with ours (cumulative), ours stays once.
    api.post(f"referrals/{ref}/messages", json={"site": REFERRER_SITE, "text": "Booked for Tuesday."}).raise_for_status()
    page = wait_for(lambda: (lambda p: p if "Booked for Tuesday." in p else None)(emr.get(path)),
                    what="the receiver's reply on the sent copy")
    thread = thread_of(page)
    assert thread.count("Any news on the booking?") == 1 and thread.count("Booked for Tuesday.") == 1
    # The sender's message reached Ocean once (then the receiver's, posted through the sandbox's API).
    assert [(e["kind"], e["text"]) for e in ocean(world, ref)["events"] if e["via"] == "api" and e["kind"] != "sent"] == [
        ("message", "Message from the referrer."), ("message", "Message from the receiver.")]
    [ours] = from_sender()
    assert ours["side"] == "sender"


def stop_web(server) -> None:
    """Stop the sandbox's web process (ours, by its id); its database and worker stay."""
    process = server.processes.pop("serve")
    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=15)


def start_web(server) -> None:
    server.start_web()
    server.wait_ready()


def outbound_states(world, ref: str) -> list[tuple[str, str, int]]:
    out = world["harbour"].shell(
        "import json; from harbour.ocean.models import OutboundMessage as M; "
        f"print(json.dumps(list(M.objects.filter(referral__ocean_ref='{ref}').order_by('id')"
        ".values_list('kind', 'state', 'attempts'))))")
    return [tuple(row) for row in json.loads(out.strip().splitlines()[-1])]


def test_sandbox_down_for_a_while_then_the_outbox_catches_up(world):
    emr, sandbox = world["emr"], world["sandbox"]
    ref = send_referral(world, "Knee pain")
    path = referral_page_path(world, ref)
    # Same health card and birth date as the chart created earlier: linked automatically.
    wait_for(lambda: "Linked to chart" in emr.get(path), what="the automatic chart link")
    emr.submit(emr.get(path), "form-accept")
    page = wait_for(lambda: synced(world, path), what="the acceptance delivered")

    stop_web(sandbox)
    try:
        emr.submit(page, "form-book", booking(5, 9, confirmed=True))
        page = emr.get(path)
        assert 'id="not-synced"' in page and "Not synced to Ocean" in page
        emr.submit(page, "form-message", {"text": "We booked you in."})
        emr.submit(emr.get(path), "form-rebook", booking(6, 11, confirmed=True))
        # The first waiting message fails against the stopped server; the others wait their turn.
        wait_for(lambda: outbound_states(world, ref)[1][2] >= 2, what="retries against the stopped sandbox")
        states = outbound_states(world, ref)
        assert [kind for kind, _, _ in states] == ["accept", "book", "message", "rebook"]
        assert states[1][1] in ("failed", "sending", "pending") and states[2][2] == 0 and states[3][2] == 0
        assert f'href="{path}"' in emr.get("/referrals/?folder=not_synced")
        assert "not synced to Ocean" in emr.get(f"/referrals/?ref={ref}")
    finally:
        start_web(sandbox)

    wait_for(lambda: synced(world, path), timeout=60, what="the outbox to catch up")
    assert [state for _, state, _ in outbound_states(world, ref)] == ["delivered"] * 4
    assert api_events(world, ref) == ["status", "appointment", "message", "status", "appointment"]
    state = ocean(world, ref)
    assert state["folder"] == "booked"
    current = [a for a in state["appointments"] if not a["cancelled"]]
    assert current[-1]["start"].startswith(future(6, 11)[0]) and current[-1]["confirmed"] is True
    assert [m["text"] for m in state["messages"] if m["side"] == "receiver"] == ["We booked you in."]
    assert f'href="{path}"' not in emr.get("/referrals/?folder=not_synced")


def sandbox_tokens(world) -> int:
    out = world["sandbox"].shell("from harbour.sandbox.models import AccessToken; print(AccessToken.objects.count())")
    return int(out.strip().splitlines()[-1])


def test_expired_tokens_are_renewed_once(world):
    """2-second tokens: Harbour renews before using an expired one; and when Ocean refuses a token
    Harbour still believes valid (401), it asks for one new token and the message goes through."""
    emr = world["emr"]
    ref = send_referral(world, "Shoulder")
    path = referral_page_path(world, ref)
    emr.submit(emr.get(path), "form-accept")
    page = wait_for(lambda: synced(world, path), what="the acceptance delivered")

    # Harbour's stored token outlives the sandbox's: the next call meets a 401.
    world["harbour"].shell(
        "from datetime import timedelta; from django.utils import timezone; from harbour.ocean.models import OceanToken; "
        "OceanToken.objects.update(expires_at=timezone.now() + timedelta(hours=1))")
    expired = world["sandbox"].shell(
        "from django.utils import timezone; from harbour.sandbox.models import AccessToken; "
        "print(AccessToken.objects.order_by('-id').values_list('expires_at', flat=True).first().isoformat())")
    deadline = expired.strip().splitlines()[-1]
    wait_for(lambda: timezone.now().isoformat() > deadline, timeout=10, interval=0.2, what="the token to expire")
    before = sandbox_tokens(world)
    emr.submit(page, "form-book", booking(4, 15, confirmed=False))
    wait_for(lambda: ocean(world, ref)["folder"] == "booked", what="the booking in the sandbox")
    page = wait_for(lambda: synced(world, path), what="the booking delivered")
    assert sandbox_tokens(world) == before + 1  # one renewal
    assert outbound_states(world, ref)[-1] == ("book", "delivered", 1)  # in one attempt (401, new token, sent)

    # Later calls after natural expiry: a fresh token each time the old one is past its margin.
    wait_for(lambda: timezone.now().isoformat() > world["sandbox"].shell(
        "from harbour.sandbox.models import AccessToken; "
        "print(AccessToken.objects.order_by('-id').values_list('expires_at', flat=True).first().isoformat())"
    ).strip().splitlines()[-1], timeout=10, interval=0.2, what="the new token to expire")
    emr.submit(page, "form-complete")
    wait_for(lambda: ocean(world, ref)["folder"] == "completed", what="Completed in the sandbox")
    assert outbound_states(world, ref)[-1] == ("complete", "delivered", 1)
    assert api_events(world, ref) == ["status", "appointment", "status"]
