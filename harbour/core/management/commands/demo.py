"""`harbour demo`: Harbour, its worker and the Ocean sandbox, wired together like a real clinic.

The first run walks the clinic setup article through the sandbox's admin API (site, shared
encryption key in Cloud Connect, an integration posting to Harbour with the inbound key,
OAuth credentials) and saves the matching Ocean settings in Harbour; later runs reuse them.
Ctrl-C stops every process.
"""
import json
import os
import secrets
import signal
import subprocess
import sys
import time

import httpx
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from harbour.clinics.models import Clinic, OceanSettings, User
from harbour.clinics.setup import create_clinic

DEMO_ADMIN = "admin"
DEMO_STAFF = "triage"


class Command(BaseCommand):
    help = "Start Harbour, its worker and the Ocean sandbox with a demo clinic wired to it."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--sandbox-port", type=int, default=8081)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--no-referrals", action="store_true", help="Don't send the two demo referrals.")

    def handle(self, *args, port, sandbox_port, host, no_referrals, **options):
        self.children: list[subprocess.Popen] = []
        signal.signal(signal.SIGTERM, lambda *a: self.stop(0))
        harbour_url = f"http://localhost:{port}"
        sandbox_url = f"http://localhost:{sandbox_port}"
        env = {**os.environ, "HARBOUR_VAR_DIR": str(settings.VAR_DIR), "HARBOUR_PUBLIC_URL": harbour_url,
               "SANDBOX_PUBLIC_URL": sandbox_url}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        cli = [sys.executable, "-m", "harbour.cli"]
        try:
            self.stdout.write("Preparing the databases ...")
            call_command("migrate", interactive=False, verbosity=0)
            subprocess.run([*cli, "sandbox", "migrate", "--verbosity", "0"], env=env, check=True)
            logs = settings.VAR_DIR / "logs"
            logs.mkdir(parents=True, exist_ok=True)
            self.start([*cli, "sandbox", "serve", "--host", host, "--port", str(sandbox_port), "--workers", "1"], env, logs / "sandbox.log")
            self.start([*cli, "sandbox", "worker"], env, logs / "sandbox-worker.log")
            wait_until_up(f"{sandbox_url}/healthz")
            token = subprocess.run([*cli, "sandbox", "admin_token"], env=env, check=True, capture_output=True, text=True).stdout.strip()
            state_file = settings.VAR_DIR / "demo.json"
            if state_file.exists():
                state = json.loads(state_file.read_text())
            else:
                state = seed(SandboxAPI(sandbox_url, token), harbour_url, sandbox_url)
                state_file.write_text(json.dumps(state))
                state_file.chmod(0o600)
            self.start([*cli, "serve", "--host", host, "--port", str(port)], env, logs / "harbour.log")
            self.start([*cli, "worker"], env, logs / "harbour-worker.log")
            wait_until_up(f"{harbour_url}/healthz")
            if not no_referrals and not state.get("referrals_sent"):
                send_demo_referrals(SandboxAPI(sandbox_url, token), state)
                state["referrals_sent"] = True
                state_file.write_text(json.dumps(state))
        except (subprocess.CalledProcessError, httpx.HTTPError, DemoError) as exc:
            self.stop(1, f"The demo could not start: {exc}. Logs are in {settings.VAR_DIR / 'logs'}.")
        self.stdout.write(self.style.SUCCESS(f"""
Harbour is running.

  Harbour            {harbour_url}/
    administrator    {DEMO_ADMIN} / {state['admin_password']}   (holds « Paramètres de consultation »)
    triage staff     {DEMO_STAFF} / {state['admin_password']}   (no settings permission)
  Ocean sandbox      {sandbox_url}/
    Ocean user       {state['sandbox_user']} / {state['admin_password']}
    clinic site      {state['clinic_site']}   referrer site {state['referrer_site']}
  Inbound endpoint   {harbour_url}/public/ocean/fhir_bundles

Post a bundle yourself (it shows up under Consultations, and in « Messages entrants »):
  curl -i {harbour_url}/public/ocean/fhir_bundles -H 'Content-Type: application/fhir+json' \\
       -H 'Referral-Integration-API-Key: {state.get('inbound_key', '<the key from the settings page>')}' \\
       --data-binary @tests/fixtures/bundles/add-service-request.back-pain.json

Logs: {settings.VAR_DIR / 'logs'}.  Press Ctrl-C to stop.
"""))
        try:
            while all(child.poll() is None for child in self.children):
                time.sleep(1)
            self.stop(1, "A process stopped; see the logs.")
        except KeyboardInterrupt:
            self.stop(0)

    def start(self, argv, env, log_path):
        log = open(log_path, "ab")
        self.children.append(subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT))

    def stop(self, code: int, message: str = ""):
        for child in self.children:
            if child.poll() is None:
                child.terminate()
        for child in self.children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
        if message:
            raise CommandError(message)
        sys.exit(code)


class DemoError(Exception):
    pass


class SandboxAPI:
    def __init__(self, base_url: str, token: str):
        self.client = httpx.Client(base_url=f"{base_url}/sandbox-api/", headers={"X-Sandbox-Admin-Token": token}, timeout=30)

    def post(self, path: str, body: dict) -> dict:
        response = self.client.post(path, json=body)
        if response.status_code >= 300:
            raise DemoError(f"sandbox {path} answered {response.status_code}: {response.text[:200]}")
        return response.json()


def wait_until_up(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise DemoError(f"{url} did not answer within {seconds:.0f} s")


def seed(api: SandboxAPI, harbour_url: str, sandbox_url: str) -> dict:
    """The clinic setup article, steps 1 to 4, on both sides."""
    password = secrets.token_urlsafe(9)
    api.post("users", {"username": "demo", "password": password})
    clinic_site = api.post("sites", {"name": "Clinique Harbour (démo)", "username": "demo"})["number"]
    referrer_site = api.post("sites", {"name": "Family Practice (demo referrer)", "username": "demo"})["number"]
    for number in (clinic_site, referrer_site):
        key = api.post(f"sites/{number}/encryption-key", {})["key"]
        api.post(f"sites/{number}/site-features", {"cloud_connect": True})
        api.post(f"sites/{number}/cloud-connect/key", {"key": key})
    with transaction.atomic():
        clinic = Clinic.objects.filter(name="Clinique Harbour (démo)").first()
        if clinic is None:
            clinic = create_clinic("Clinique Harbour (démo)", admin_username=DEMO_ADMIN, admin_password=password)
            User.objects.create_user(username=DEMO_STAFF, password=password, clinic=clinic)
        else:
            for user in clinic.users.filter(username__in=[DEMO_ADMIN, DEMO_STAFF]):
                user.set_password(password)
                user.save()
        ocean, _created = OceanSettings.objects.get_or_create(clinic=clinic)
        inbound_key = ocean.generate_inbound_key()
        ocean.site_number = clinic_site
        ocean.server = "custom"
        ocean.custom_server_url = sandbox_url
        ocean.save()
    integration = api.post(f"sites/{clinic_site}/integrations", {
        "kind": "eReferrals", "name": "Harbour", "request_url": f"{harbour_url}/public/ocean/fhir_bundles",
        "payload_version": "0.11.1", "auth_type": "api_key", "header_name": OceanSettings.INBOUND_KEY_HEADER,
        "key": inbound_key, "send_copy": True,
    })
    listing = api.post(f"sites/{clinic_site}/listings", {
        "name": "Clinique Harbour — Orthopédie", "integration": integration["id"], "external_service_id": "harbour-ortho",
        "address_line": "100 Queen St W", "city": "Toronto", "postal_code": "M5H 2N2",
    })
    api.post(f"sites/{referrer_site}/listings", {"name": "Family Practice — Physiotherapy"})
    credential = api.post(f"sites/{clinic_site}/oauth-credentials", {"name": "Harbour OAuth credentials"})
    ocean.refresh_from_db()
    ocean.oauth_client_id = credential["client_id"]
    ocean.set_client_secret(credential["secret"])
    ocean.save()
    # The inbound key is kept (var/demo.json, owner-only) only so the demo can print a curl example.
    return {"admin_password": password, "sandbox_user": "demo", "clinic_site": clinic_site,
            "referrer_site": referrer_site, "clinic_listing": listing["ref"], "inbound_key": inbound_key}


def send_demo_referrals(api: SandboxAPI, state: dict) -> None:
    referrer = {"family": "Tremblay", "given": "Sophie", "cpso": "98765", "billing": "123456", "phone": "416-555-0100", "fax": "416-555-0101"}
    api.post("referrals", {
        "from_site": state["referrer_site"], "listing": state["clinic_listing"], "priority": "routine", "referrer": referrer,
        "patient": {"family": "Gagnon", "given": "Martin", "birth_date": "1968-04-12", "gender": "male", "hcn": "1234567890",
                    "version_code": "AB", "phone": "416-555-0142", "address_line": "12 Elm St", "city": "Toronto", "postal_code": "M4W 1A1"},
        "reason": "Right knee pain for six months, worse on stairs. X-ray shows moderate osteoarthritis.",
        "answers": [{"link_id": "duration", "text": "Duration of symptoms", "answer": "6 months"}],
    })
    api.post("referrals", {
        "from_site": state["referrer_site"], "listing": state["clinic_listing"], "priority": "urgent", "referrer": referrer,
        "patient": {"family": "Roy", "given": "Émilie", "birth_date": "1990-09-30", "gender": "female", "hcn": "9876543210", "version_code": "C"},
        "reason": "Suspected scaphoid fracture after a fall; cast applied, please assess.",
    })
