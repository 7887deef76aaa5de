"""After a whole referral's life on real servers, no log line and no audit entry holds patient data
or a secret.

One module-scoped run (Harbour and the Ocean sandbox as subprocesses, tests/servers.py): the setup
article's steps, a referral with a distinctive patient (name, health card number, birth date,
address, phone, email, reason) and a letter and an attachment; Harbour receives, processes and
matches it, fetches its documents; a person searches for the patient, opens it, downloads the
documents, accepts, books and messages through the pages; Ocean's echoes come back. Then the
servers stop and every log file either wrote (web and worker processes) is read, with Harbour's
audit log: none may hold any form of the patient's data, the inbound key, the OAuth secret, the
site's encryption key (SEK) or the access token.
"""
import base64
import datetime
import json
import re

import pytest

from tests.e2e.test_sandbox_to_harbour import Browser, found, inbound
from tests.servers import admin_api, start_harbour, start_sandbox, start_together, wait_for

pytestmark = [pytest.mark.servers, pytest.mark.timeout(300)]
PASSWORD = "phi-password-Harbour-7"
PATIENT = {
    "family": "Brightwaterson", "given": "Philomène", "birth_date": "1957-03-09", "gender": "female",
    "hcn": "4728391056", "version_code": "KQ", "phone": "613-555-0199", "email": "p.brightwaterson@example.org",
    "address_line": "4471 Chemin Quillfeather", "city": "Pointe-Zéphyrine", "postal_code": "K7Q 3Z9",
}
REASON = "Persistent tinnitus after quinine overdose"
LETTER_TEXT = b"%PDF-1.4\n% Letter about Brightwaterson\n%%EOF\n"


def patient_forms() -> dict[str, str]:
    """Every way the patient's data could be written in a log: label -> text."""
    forms = {
        "family": "Brightwaterson", "given": "Philomène", "given (folded)": "Philomene",
        "given (JSON escaped)": "Philom\\u00e8ne", "hcn": "4728391056", "hcn (dashes)": "4728-391-056",
        "hcn (spaces)": "4728 391 056", "birth date": "1957-03-09", "birth date (compact)": "19570309",
        "birth date (d/m/y)": "09/03/1957", "birth date (m/d/y)": "03/09/1957", "birth date (y/m/d)": "1957/03/09",
        "birth date (repr)": "1957, 3, 9", "birth date (words)": "9 mars 1957", "birth date (English)": "March 9, 1957",
        "address": "Quillfeather", "phone": "613-555-0199", "phone (digits)": "6135550199",
        "email": "p.brightwaterson@example.org", "postal code": "K7Q 3Z9", "reason": "tinnitus after quinine",
    }
    return forms


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Drive the whole workflow once; return the servers (stopped) and the secrets met on the way."""
    root = tmp_path_factory.mktemp("phi")
    harbour, sandbox = start_together(
        lambda: start_harbour(root / "harbour"), lambda: start_sandbox(root / "sandbox", time_scale=360_000),
    )
    try:
        secrets = _workflow(harbour, sandbox)
        secrets["access token"] = harbour.shell(
            "from harbour.core import crypto; from harbour.ocean.models import OceanToken; "
            "print(crypto.decrypt(OceanToken.objects.get().access_token_encrypted))").strip().splitlines()[-1]
        audit = harbour.shell(
            "import json; from harbour.audit.models import AuditEntry as A; "
            "print(json.dumps([[a.action, a.target, a.actor_username, a.details] for a in A.objects.order_by('id')], "
            "ensure_ascii=False))").strip().splitlines()[-1]
    except Exception:
        print(harbour.logs())
        print(sandbox.logs())
        raise
    finally:
        harbour.stop()
        sandbox.stop()
    return {"harbour": harbour, "sandbox": sandbox, "secrets": secrets, "audit": json.loads(audit)}


def _workflow(harbour, sandbox) -> dict[str, str]:
    harbour.manage("create_clinic", "Clinique Soleil", "--admin", "admin-soleil", "--password", PASSWORD)
    ocean = Browser(sandbox.base_url, "sandbox_csrftoken")
    emr = Browser(harbour.base_url, "csrftoken")
    api = admin_api(sandbox)

    # The article's steps, as in tests/e2e: site number, SEK, inbound key, integration, OAuth credentials.
    ocean.post("/signup/", {"username": "soleil-admin", "email": "admin@soleil.example", "password": PASSWORD}, expect=302)
    ocean.post("/sites/new/", {"name": "Clinique Soleil"}, expect=302)
    emr.post("/accounts/login/", {"username": "admin-soleil", "password": PASSWORD}, expect=302)
    number = found(r'<a href="/site/(\d+)/">', ocean.get("/"))
    settings_path = "/settings/consultations/ocean/"
    server = {"site_number": number, "server": "custom", "custom_server_url": sandbox.base_url}
    emr.get(settings_path)
    emr.post(settings_path, server, expect=302)
    site = f"/site/{number}"
    sek = found(r'id="new-key">([^<]+)<', ocean.post(f"{site}/admin/encryption/", {"key": ""}, expect=200).text)
    ocean.post(f"{site}/admin/features/", {"cloud_connect": "on"}, expect=302)
    ocean.post(f"{site}/cloud-connect/", {"key": sek}, expect=302)
    generated = emr.post(f"{settings_path}inbound-key/", {}, expect=200).text
    inbound_key = found(r'id="copy-inbound-key"[^>]*value="([^"]+)"', generated)
    request_url = found(r'id="copy-request-url"[^>]*value="([^"]+)"', generated)
    ocean.post(f"{site}/admin/integrations/new/", {
        "kind": "eReferrals", "name": "EMR integration", "request_url": request_url, "payload_version": "0.11.1",
        "auth_type": "api_key", "header_name": "Referral-Integration-API-Key", "key": inbound_key, "send_copy": "on",
    }, expect=302)
    integration_id = found(rf'href="{site}/admin/integrations/(\d+)/"', ocean.get(f"{site}/admin/integrations/"))
    ocean.post(f"{site}/admin/listings/", {
        "name": "Clinique Soleil ORL", "accepts_ereferrals": "on", "integration": integration_id,
        "external_service_id": "SOLEIL-ORL",
    }, expect=302)
    created = ocean.post(f"{site}/admin/credentials/oauth/", {"name": "EMR OAuth credentials"}, expect=200).text
    client_id = found(r'id="client-id">([^<]+)<', created)
    oauth_secret = found(r'id="client-secret">([^<]+)<', created)
    emr.post(settings_path, {**server, "oauth_client_id": client_id, "oauth_client_secret": oauth_secret}, expect=302)
    emr.post("/ocean/connection-test/", {}, expect=302)
    assert '<li class="success">' in emr.get(settings_path)

    # A referring site sends the referral, with an attachment besides Ocean's letter.
    referrer = api.post("sites", json={"name": "Family Practice", "number": "2001"}).json()["number"]
    referrer_sek = api.post(f"sites/{referrer}/encryption-key", json={}).json()["key"]
    api.post(f"sites/{referrer}/site-features", json={"cloud_connect": True}).raise_for_status()
    api.post(f"sites/{referrer}/cloud-connect/key", json={"key": referrer_sek}).raise_for_status()
    listing = api.get(f"sites/{number}").json()["listings"][0]["ref"]
    response = api.post("referrals", json={
        "from_site": referrer, "listing": listing, "reason": REASON, "patient": PATIENT,
        "referrer": {"family": "Kavanagh", "given": "Doug", "cpso": "98765"},
        "answers": [{"link_id": "history", "text": "History:", "answer": "Since the quinine"}],
        "attachments": [{"title": "Audiogram", "content_type": "application/pdf",
                         "data": base64.b64encode(LETTER_TEXT).decode()}],
    })
    assert response.status_code == 201, response.text
    ref = response.json()["ref"]
    wait_for(lambda: ("add-service-request", "processed") in inbound(harbour, ref), timeout=60, what="processing")

    # A person finds the patient by name and by card number, opens the referral, reads the documents.
    assert "Brightwaterson" in emr.get("/referrals/?patient=Brightwaterson")
    listed = emr.get("/referrals/?patient=4728-391-056")
    detail_path = found(r'href="(/referrals/\d+/)"', listed)
    pk = int(detail_path.strip("/").split("/")[-1])
    emr.get("/patients/?q=Brightwaterson")

    def documents_fetched():
        page = emr.get(detail_path)
        links = re.findall(rf'href="({detail_path}documents/\d+/)"', page)
        return links if len(set(links)) >= 2 else None

    for link in set(wait_for(documents_fetched, timeout=60, what="both documents fetched")):
        assert emr.http.get(link).status_code == 200

    # Accept, book and message through the referral page; Ocean hears each and echoes it back.
    def seen_state(form_id: str) -> dict:  # what the page's form carries, as a click would send it
        form = re.search(rf'<form[^>]*id="{form_id}".*?</form>', emr.get(detail_path), flags=re.S)
        assert form, f"no {form_id} on the referral page"
        return {"seen_state": found(r'name="seen_state" value="([^"]*)"', form.group(0))}

    emr.post(f"{detail_path}actions/accept/", seen_state("form-accept"), expect=302)
    emr.post(f"{detail_path}actions/book/", {
        **seen_state("form-book"),
        "date": (datetime.date.today() + datetime.timedelta(days=40)).isoformat(), "time": "09:30", "duration": "30",
        "confirmed": "on", "instructions": "Bring the audiogram, Mrs Brightwaterson", "location": "Room 2",
    }, expect=302)
    emr.post(f"{detail_path}actions/message/", {"text": "Dear Dr Kavanagh, Philomène Brightwaterson is booked."},
             expect=302)

    def all_delivered():
        out = harbour.shell(
            "from harbour.ocean.models import OutboundMessage as O; "
            f"print(sorted(set(O.objects.filter(referral_id={pk}).values_list('state', flat=True))))")
        return out.strip().splitlines()[-1] == "['delivered']"

    wait_for(all_delivered, timeout=60, what="the outbox to deliver accept, book and message")
    wait_for(lambda: api.get(f"referrals/{ref}").json()["task_status"] in {"accepted", "in-progress"}
             or api.get(f"referrals/{ref}").json()["folder"] != "new", timeout=30, what="the sandbox to file them")

    def echoes_processed():
        messages = inbound(harbour, ref)
        echoes = [e for e, s in messages if e == "notify-update-service-request" and s == "processed"]
        return echoes and not any(s == "pending" for _, s in messages)

    wait_for(echoes_processed, timeout=60, what="the echoes processed in Harbour")
    return {"inbound key": inbound_key, "OAuth secret": oauth_secret, "SEK": sek, "referrer SEK": referrer_sek,
            "password": PASSWORD}


def log_files(server) -> dict[str, str]:
    files = sorted(path for path in server.var_dir.rglob("*.log") if path.is_file())
    assert files, f"{server.kind} wrote no log file"
    return {f"{server.kind}:{path.relative_to(server.var_dir)}": path.read_text(errors="replace") for path in files}


def leaks(texts: dict[str, str], needles: dict[str, str]) -> list[str]:
    found_ = []
    for where, text in texts.items():
        for label, needle in needles.items():
            if needle and needle.lower() in text.lower():
                line = next(line for line in text.splitlines() if needle.lower() in line.lower())
                found_.append(f"{where}: {label} in: {line[:300]}")
    return found_


def test_the_run_wrote_logs_of_every_process(run):
    harbour_logs = log_files(run["harbour"])
    # Both processes of Harbour logged the referral's life (the check below reads real lines).
    joined = "\n".join(harbour_logs.values())
    assert "inbound" in joined and "/referrals/" in joined
    assert {name.rsplit("/", 1)[-1] for name in harbour_logs} >= {"serve.log", "worker.log"}


def test_no_harbour_log_line_holds_patient_data_or_a_secret(run):
    found_ = leaks(log_files(run["harbour"]), {**patient_forms(), **run["secrets"]})
    assert not found_, "\n".join(found_)


def test_no_sandbox_log_line_holds_patient_data_or_a_secret(run):
    found_ = leaks(log_files(run["sandbox"]), {**patient_forms(), **run["secrets"]})
    assert not found_, "\n".join(found_)


def test_no_audit_entry_holds_patient_data_or_a_secret(run):
    entries = run["audit"]
    actions = {entry[0] for entry in entries}
    # The run did leave entries: settings changes, the key, a document download at least.
    assert {"ocean_settings.changed", "ocean_settings.inbound_key_generated"} <= actions, actions
    text = json.dumps(entries, ensure_ascii=False)
    found_ = leaks({"audit": text, "audit (escaped)": json.dumps(entries)}, {**patient_forms(), **run["secrets"]})
    assert not found_, "\n".join(found_)
