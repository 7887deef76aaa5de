"""`harbour demo`: Harbour, its worker and the Ocean sandbox, wired together like a real clinic.

The first run walks the clinic setup article through the sandbox's admin API (site, shared
encryption key in Cloud Connect, an integration posting to Harbour with the inbound key,
OAuth credentials) and saves the matching Ocean settings in Harbour; later runs reuse them.
The setup records each step in var/demo.json as it goes, so a run stopped halfway resumes where
it stopped. A run on other ports rewires both sides (the sandbox integration's Request URL,
Harbour's Ocean server URL). `--reset` starts the demo over. Ctrl-C stops every process.
"""
import argparse
import fcntl
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import connections, transaction

from harbour.clinics.models import Clinic, OceanSettings, User
from harbour.clinics.setup import create_clinic

DEMO_ADMIN = "admin"
DEMO_STAFF = "triage"
SANDBOX_USER = "demo"
CLINIC_NAME = "Clinique Harbour (démo)"
CLINIC_SITE_NAME = "Clinique Harbour (démo)"
REFERRER_SITE_NAME = "Family Practice (demo referrer)"
INTEGRATION_NAME = "Harbour"
CLINIC_LISTING_NAME = "Clinique Harbour — Orthopédie"
REFERRER_LISTING_NAME = "Family Practice — Physiotherapy"
RESET_HINT = "run `scripts/start --reset` (or `harbour demo --reset`) to set the demo up again from scratch"
START_SECONDS = 60


def port_number(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1-65535)") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (1-65535)")
    return port


class Interrupted(BaseException):
    """Ctrl-C, SIGTERM or SIGHUP: stop everything (a BaseException, like KeyboardInterrupt)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


class DemoError(Exception):
    pass


class Conflict(DemoError):
    pass


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    log_path: Path

    def exit_message(self) -> str:
        line = last_line(self.log_path)
        return f"{self.name} stopped (exit code {self.process.returncode}){': ' + line if line else ''}; see {self.log_path}"


class Command(BaseCommand):
    help = "Start Harbour, its worker and the Ocean sandbox with a demo clinic wired to it."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=port_number, default=8000, help="Harbour's port (default 8000).")
        parser.add_argument("--sandbox-port", type=port_number, default=8081, help="The Ocean sandbox's port (default 8081).")
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--no-referrals", action="store_true", help="Don't send the two demo referrals.")
        parser.add_argument(
            "--reset", action="store_true",
            help="Start the demo over: delete var/demo.json and the SQLite databases of Harbour and the sandbox under var/.",
        )

    def handle(self, *args, port, sandbox_port, host, no_referrals, reset, **options):
        self.children: list[Child] = []
        if port == sandbox_port:
            self.fail(f"--port and --sandbox-port are both {port}; give them different ports.")
        for number, option, what in ((port, "--port", "another Harbour?"), (sandbox_port, "--sandbox-port", "another Ocean sandbox?")):
            if port_in_use(host, number):
                self.fail(f"port {number} is already in use ({what}); stop it, or choose another with {option}.")
        var_dir = Path(settings.VAR_DIR)
        var_dir.mkdir(parents=True, exist_ok=True)
        self.lock = take_lock(var_dir / "demo.lock")
        if self.lock is None:
            self.fail(f"Another `harbour demo` is already running with {var_dir}; stop it first (Ctrl-C in its terminal).")
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self.interrupt)
        harbour_url = f"http://localhost:{port}"
        sandbox_url = f"http://localhost:{sandbox_port}"
        try:
            if reset:
                self.reset(var_dir)
            state = self.start_everything(port, sandbox_port, host, no_referrals, harbour_url, sandbox_url, var_dir)
        except Interrupted as exc:
            self.stop()
            self.stderr.write("Interrupted while starting; stopped everything it had started.")
            sys.exit(128 + exc.signum)
        except (subprocess.CalledProcessError, httpx.HTTPError, DemoError) as exc:
            self.stop()
            if isinstance(exc, subprocess.CalledProcessError):
                output = (exc.stderr or exc.output or "").strip().splitlines()
                exc = f"{' '.join(exc.cmd[3:5])} failed{': ' + output[-1] if output else ''}"
            self.fail(f"The demo could not start: {exc}. Logs are in {var_dir / 'logs'}.")
        except BaseException:
            self.stop()
            raise
        try:
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

Logs: {var_dir / 'logs'}.  Press Ctrl-C to stop.
"""))
            while True:
                dead = self.dead_child()
                if dead is not None:
                    self.stop()
                    self.fail(f"{dead.exit_message()}. Everything else is stopped.")
                time.sleep(1)
        except Interrupted:
            self.stop()
            self.stdout.write("Stopped.")
            sys.exit(0)
        except BaseException:
            self.stop()
            raise

    # --- Starting ------------------------------------------------------------------------------

    def start_everything(self, port, sandbox_port, host, no_referrals, harbour_url, sandbox_url, var_dir) -> dict:
        env = {**os.environ, "HARBOUR_VAR_DIR": str(var_dir), "HARBOUR_PUBLIC_URL": harbour_url, "SANDBOX_PUBLIC_URL": sandbox_url}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        cli = [sys.executable, "-m", "harbour.cli"]
        state_file = var_dir / "demo.json"
        state = load_state(state_file)
        self.stdout.write("Preparing the databases ...")
        call_command("migrate", interactive=False, verbosity=0)
        subprocess.run([*cli, "sandbox", "migrate", "--verbosity", "0"], env=env, check=True, capture_output=True, text=True)
        logs = var_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.start("the Ocean sandbox", [*cli, "sandbox", "serve", "--host", host, "--port", str(sandbox_port), "--workers", "1"],
                   env, logs / "sandbox.log")
        self.start("the sandbox's worker", [*cli, "sandbox", "worker"], env, logs / "sandbox-worker.log")
        self.wait_until_up(f"{sandbox_url}/healthz")
        token = subprocess.run([*cli, "sandbox", "admin_token"], env=env, check=True, capture_output=True, text=True).stdout.strip()
        api = SandboxAPI(sandbox_url, token)
        setup(api, state, lambda: save_state(state_file, state), harbour_url, sandbox_url)
        self.rewire(api, state, harbour_url, sandbox_url, cli, env)
        self.start("Harbour", [*cli, "serve", "--host", host, "--port", str(port)], env, logs / "harbour.log")
        self.start("Harbour's worker", [*cli, "worker"], env, logs / "harbour-worker.log")
        self.wait_until_up(f"{harbour_url}/healthz")
        if not no_referrals:
            send_demo_referrals(api, state, lambda: save_state(state_file, state))
        return state

    def rewire(self, api: "SandboxAPI", state: dict, harbour_url: str, sandbox_url: str, cli: list, env: dict) -> None:
        """A run on other ports than the last: the sandbox posts to Harbour's new address, and
        Harbour reaches the sandbox at its new one."""
        site = api.get(f"sites/{state['clinic_site']}", missing=(
            f"the sandbox has no site {state['clinic_site']}, which var/demo.json records (was its database deleted?); {RESET_HINT}"
        ))
        integration = next((i for i in site["integrations"] if i["id"] == state.get("integration")), None) or next(
            (i for i in site["integrations"] if i["name"] == INTEGRATION_NAME), None)
        if integration is None:
            raise DemoError(f"the sandbox's site {state['clinic_site']} has no integration named {INTEGRATION_NAME}; {RESET_HINT}")
        request_url = f"{harbour_url}/public/ocean/fhir_bundles"
        if integration["request_url"] != request_url:
            subprocess.run([*cli, "sandbox", "demo_rewire", "--integration", str(integration["id"]), "--request-url", request_url],
                           env=env, check=True, capture_output=True, text=True)
            self.stdout.write(f"Rewired the sandbox's integration: it now posts to {request_url} (was {integration['request_url']}).")
        with transaction.atomic():
            ocean = OceanSettings.objects.select_for_update().filter(clinic__name=CLINIC_NAME).first()
            if ocean is None:
                raise DemoError(f"Harbour has no clinic named {CLINIC_NAME}, which var/demo.json records; {RESET_HINT}")
            if ocean.server != "custom" or ocean.custom_server_url.rstrip("/") != sandbox_url:
                previous = ocean.custom_server_url or ocean.server
                ocean.server = "custom"
                ocean.custom_server_url = sandbox_url
                ocean.save()
                self.stdout.write(f"Rewired Harbour's Ocean settings: the Ocean server is now {sandbox_url} (was {previous}).")

    def start(self, name: str, argv: list, env: dict, log_path: Path) -> None:
        with open(log_path, "ab") as log:
            self.children.append(Child(name, subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT), log_path))

    def dead_child(self) -> Child | None:
        """The first of the started processes that has exited, if any."""
        return next((child for child in self.children if child.process.poll() is not None), None)

    def wait_until_up(self, url: str, seconds: float = START_SECONDS) -> None:
        """Until `url` answers 200; stops waiting as soon as one of the processes has exited."""
        deadline = time.monotonic() + seconds
        while True:
            dead = self.dead_child()
            if dead is not None:
                raise DemoError(dead.exit_message())
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise DemoError(f"{url} did not answer within {seconds:.0f} s")
            time.sleep(0.2)

    # --- Stopping ------------------------------------------------------------------------------

    def interrupt(self, signum, frame):
        raise Interrupted(signum)

    def stop(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_IGN)
        for child in self.children:
            if child.process.poll() is None:
                child.process.terminate()
        for child in self.children:
            try:
                child.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()

    def fail(self, message: str):
        self.stderr.write(message)
        sys.exit(1)

    # --- Starting over -------------------------------------------------------------------------

    def reset(self, var_dir: Path) -> None:
        from harbour.settings import database_from_url

        sandbox_db = database_from_url(os.environ.get("SANDBOX_DATABASE_URL") or f"sqlite:///{var_dir / 'sandbox.sqlite3'}",
                                       "SANDBOX_DATABASE_URL")
        if sandbox_db["ENGINE"] != "django.db.backends.sqlite3":
            raise DemoError("--reset deletes SQLite databases only, and SANDBOX_DATABASE_URL names another; "
                            "empty that database yourself, then run the demo again")
        connections.close_all()
        deleted = [var_dir / "demo.json", *sqlite_files(sandbox_db["NAME"])]
        harbour_db = settings.DATABASES["default"]
        if harbour_db["ENGINE"] == "django.db.backends.sqlite3":
            deleted += sqlite_files(harbour_db["NAME"])
        else:
            self.stdout.write("Harbour's database is not SQLite (DATABASE_URL): it is kept; the demo clinic in it is reused.")
        for path in deleted:
            path.unlink(missing_ok=True)
        self.stdout.write("Reset: the demo starts from scratch.")


# --- The setup, step by step ------------------------------------------------------------------

class SandboxAPI:
    def __init__(self, base_url: str, token: str):
        self.client = httpx.Client(base_url=f"{base_url}/sandbox-api/", headers={"X-Sandbox-Admin-Token": token}, timeout=30)

    def post(self, path: str, body: dict) -> dict:
        return self.answer(path, self.client.post(path, json=body))

    def get(self, path: str, missing: str = "") -> dict:
        response = self.client.get(path)
        if response.status_code == 404 and missing:
            raise DemoError(missing)
        return self.answer(path, response)

    def answer(self, path: str, response: httpx.Response) -> dict:
        if response.status_code >= 300:
            error = Conflict if response.status_code == 409 else DemoError
            try:
                text = response.json().get("error") or response.text
            except ValueError:
                text = response.text
            raise error(f"sandbox {path} answered {response.status_code}: {text[:200]}")
        return response.json()


def setup(api: SandboxAPI, state: dict, save, harbour_url: str, sandbox_url: str) -> None:
    """The clinic setup article, steps 1 to 4, on both sides. Each step is recorded in `state`
    (saved by `save()`) once done, and what a step needs to be repeated safely (the password,
    the encryption keys) before it asks the sandbox: a run stopped anywhere resumes."""
    if state.get("setup") == "done":
        return
    resumed = "admin_password" in state
    if not resumed:
        state.update(setup="in progress", admin_password=secrets.token_urlsafe(9), sandbox_user=SANDBOX_USER)
        save()
    password = state["admin_password"]
    if not state.get("sandbox_user_created"):
        try:
            api.post("users", {"username": SANDBOX_USER, "password": password})
        except Conflict:
            if not resumed:
                raise DemoError(
                    f"the sandbox already has a user {SANDBOX_USER!r} from an earlier setup that var/demo.json does not "
                    f"record; {RESET_HINT}") from None
            # Created by the run that was stopped, with the password saved before it asked.
        state["sandbox_user_created"] = True
        save()
    for key, name in (("clinic_site", CLINIC_SITE_NAME), ("referrer_site", REFERRER_SITE_NAME)):
        if key not in state:
            state[key] = api.post("sites", {"name": name, "username": SANDBOX_USER})["number"]
            save()
    from harbour.sandbox.sites import generate_sek

    for number in (state["clinic_site"], state["referrer_site"]):
        keys = state.setdefault("encryption_keys", {})
        if number not in keys:
            keys[number] = generate_sek()
            save()
        site = api.get(f"sites/{number}")
        if not site["has_encryption_key"]:
            api.post(f"sites/{number}/encryption-key", {"key": keys[number]})
        if not site["cloud_connect_enabled"]:
            api.post(f"sites/{number}/site-features", {"cloud_connect": True})
        if not site["key_in_cloud_connect"]:
            api.post(f"sites/{number}/cloud-connect/key", {"key": keys[number]})
    if "inbound_key" not in state:
        with transaction.atomic():
            clinic = Clinic.objects.filter(name=CLINIC_NAME).first()
            if clinic is None:
                clinic = create_clinic(CLINIC_NAME, admin_username=DEMO_ADMIN, admin_password=password)
                User.objects.create_user(username=DEMO_STAFF, password=password, clinic=clinic)
            else:
                for user in clinic.users.filter(username__in=[DEMO_ADMIN, DEMO_STAFF]):
                    user.set_password(password)
                    user.save()
            ocean, _created = OceanSettings.objects.get_or_create(clinic=clinic)
            inbound_key = ocean.generate_inbound_key()
            ocean.site_number = state["clinic_site"]
            ocean.server = "custom"
            ocean.custom_server_url = sandbox_url
            ocean.save()
        # The inbound key is kept (var/demo.json, owner-only) only so the demo can print a curl example.
        state["inbound_key"] = inbound_key
        save()
    clinic_site = state["clinic_site"]
    if "integration" not in state:
        # A stopped run may have registered it (with the key saved above) without recording it.
        existing = [i for i in api.get(f"sites/{clinic_site}")["integrations"] if i["name"] == INTEGRATION_NAME]
        state["integration"] = existing[0]["id"] if existing else api.post(f"sites/{clinic_site}/integrations", {
            "kind": "eReferrals", "name": INTEGRATION_NAME, "request_url": f"{harbour_url}/public/ocean/fhir_bundles",
            "payload_version": "0.11.1", "auth_type": "api_key", "header_name": OceanSettings.INBOUND_KEY_HEADER,
            "key": state["inbound_key"], "send_copy": True,
        })["id"]
        save()
    for key, number, body in (
        ("clinic_listing", clinic_site, {
            "name": CLINIC_LISTING_NAME, "integration": state["integration"], "external_service_id": "harbour-ortho",
            "address_line": "100 Queen St W", "city": "Toronto", "postal_code": "M5H 2N2",
        }),
        ("referrer_listing", state["referrer_site"], {"name": REFERRER_LISTING_NAME}),
    ):
        if key not in state:
            existing = [listing for listing in api.get(f"sites/{number}")["listings"] if listing["name"] == body["name"]]
            state[key] = existing[0]["ref"] if existing else api.post(f"sites/{number}/listings", body)["ref"]
            save()
    if "oauth_client_id" not in state:
        credential = api.post(f"sites/{clinic_site}/oauth-credentials", {"name": "Harbour OAuth credentials"})
        ocean = OceanSettings.objects.get(clinic__name=CLINIC_NAME)
        ocean.oauth_client_id = credential["client_id"]
        ocean.set_client_secret(credential["secret"])
        ocean.save()
        state["oauth_client_id"] = credential["client_id"]
        save()
    state.pop("encryption_keys", None)  # needed only to resume; the sites hold them now
    state["setup"] = "done"
    save()


DEMO_REFERRER = {"family": "Tremblay", "given": "Sophie", "cpso": "98765", "billing": "123456", "phone": "416-555-0100", "fax": "416-555-0101"}
DEMO_REFERRALS = [
    {
        "priority": "routine",
        "patient": {"family": "Gagnon", "given": "Martin", "birth_date": "1968-04-12", "gender": "male", "hcn": "1234567890",
                    "version_code": "AB", "phone": "416-555-0142", "address_line": "12 Elm St", "city": "Toronto", "postal_code": "M4W 1A1"},
        "reason": "Right knee pain for six months, worse on stairs. X-ray shows moderate osteoarthritis.",
        "answers": [{"link_id": "duration", "text": "Duration of symptoms", "answer": "6 months"}],
    },
    {
        "priority": "urgent",
        "patient": {"family": "Roy", "given": "Émilie", "birth_date": "1990-09-30", "gender": "female", "hcn": "9876543210", "version_code": "C"},
        "reason": "Suspected scaphoid fracture after a fall; cast applied, please assess.",
    },
]


def send_demo_referrals(api: SandboxAPI, state: dict, save) -> None:
    """The demo referrals, once each (`referrals_sent` counts them; older files said True)."""
    sent = state.get("referrals_sent", 0)
    sent = len(DEMO_REFERRALS) if sent is True else int(sent or 0)
    for referral in DEMO_REFERRALS[sent:]:
        api.post("referrals", {"from_site": state["referrer_site"], "listing": state["clinic_listing"],
                               "referrer": DEMO_REFERRER, **referral})
        sent += 1
        state["referrals_sent"] = sent
        save()


# --- Files, ports and locks -------------------------------------------------------------------

def load_state(path: Path) -> dict:
    if not path.exists():
        return {}
    try:
        state = json.loads(path.read_text())
    except ValueError:
        raise DemoError(f"{path} is not valid JSON; {RESET_HINT}") from None
    if state and "setup" not in state:
        state["setup"] = "done"  # written by an older Harbour, once its setup had finished
    return state


def save_state(path: Path, state: dict) -> None:
    """Written whole or not at all (a new file renamed over the old), readable by its owner only."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(state, file)
    os.replace(temporary, path)


def port_in_use(host: str, port: int) -> bool:
    """Something answers on the port, or the port cannot be bound on `host`."""
    for address in {"localhost", host}:
        try:
            with socket.create_connection((address, port), timeout=0.5):
                return True
        except OSError:
            pass
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as servers do: TIME_WAIT is no obstacle
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def take_lock(path: Path):
    """An exclusive lock on `path` while this process lives (None when another process holds it)."""
    file = open(path, "a+")
    try:
        fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        file.close()
        return None
    return file


def last_line(path: Path) -> str:
    try:
        with open(path, "rb") as file:
            file.seek(max(0, file.seek(0, os.SEEK_END) - 4000))
            lines = [line.strip() for line in file.read().decode("utf-8", "replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""


def sqlite_files(name) -> list[Path]:
    return [Path(f"{name}{suffix}") for suffix in ("", "-wal", "-shm", "-journal")]
