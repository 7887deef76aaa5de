"""The README's start command: `harbour demo` (what scripts/start runs) brings up Harbour, its
worker and the sandbox, wires the demo clinic, and the demo referrals reach Harbour's inbox."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.servers import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.embedded_default


@pytest.fixture
def demo(tmp_path):
    port, sandbox_port = free_port(), free_port()
    env = {**os.environ, "HARBOUR_VAR_DIR": str(tmp_path), "HARBOUR_WORKER_IDLE_SECONDS": "0.1"}
    env.pop("DATABASE_URL", None)  # the embedded default: SQLite under the var dir
    env.pop("DJANGO_SETTINGS_MODULE", None)
    log = open(tmp_path / "demo.out", "w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "harbour.cli", "demo", "--port", str(port), "--sandbox-port", str(sandbox_port)],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        wait_for(lambda: "Press Ctrl-C to stop" in (tmp_path / "demo.out").read_text() or process.poll() is not None,
                 timeout=120, what="the demo to start")
        yield process, port, sandbox_port, tmp_path
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


def sign_in(port: int, username: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=f"http://localhost:{port}", follow_redirects=True, timeout=30)
    client.get("/accounts/login/")
    response = client.post("/accounts/login/", data={
        "username": username, "password": password, "csrfmiddlewaretoken": client.cookies["csrftoken"],
    })
    assert response.status_code == 200 and "/accounts/login/" not in str(response.url)
    return client


def test_demo_starts_everything_and_the_demo_referrals_arrive(demo):
    process, port, sandbox_port, var_dir = demo
    output = (var_dir / "demo.out").read_text()
    assert process.poll() is None, output
    assert f"http://localhost:{port}/" in output and f"http://localhost:{sandbox_port}/" in output
    password = output.split("administrator    admin / ", 1)[1].split()[0]

    client = sign_in(port, "admin", password)
    # Both demo referrals, sent by the sandbox's referrer site, processed into the Received list.
    wait_for(lambda: all(name in client.get("/referrals/").text for name in ("Gagnon", "Roy")),
             timeout=60, what="the demo referrals in the Received list")
    settings_page = client.get("/settings/consultations/ocean/").text
    assert f"http://localhost:{sandbox_port}" in settings_page  # wired to the sandbox

    # The curl line it prints works as printed (same key, same fixture).
    key = output.split("Referral-Integration-API-Key: ", 1)[1].split("'", 1)[0]
    raw = (ROOT / "tests/fixtures/bundles/add-service-request.back-pain.json").read_bytes()
    response = httpx.post(f"http://localhost:{port}/public/ocean/fhir_bundles", content=raw,
                          headers={"Content-Type": "application/fhir+json", "Referral-Integration-API-Key": key})
    assert response.status_code == 200
    wait_for(lambda: "DKTest" in client.get("/referrals/?direction=sent").text
             or "DKTest" in client.get("/referrals/?direction=unknown").text,
             timeout=60, what="the curl-posted referral in Harbour")

    # The triage user has no settings permission.
    staff = sign_in(port, "triage", password)
    assert staff.get("/settings/consultations/ocean/").status_code == 403


def test_a_second_start_reuses_the_demo(demo, tmp_path):
    process, port, sandbox_port, var_dir = demo
    first = (var_dir / "demo.out").read_text()
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    assert process.returncode == 0
    env = {**os.environ, "HARBOUR_VAR_DIR": str(var_dir)}
    env.pop("DATABASE_URL", None)
    second = subprocess.Popen([sys.executable, "-m", "harbour.cli", "demo", "--port", str(port), "--sandbox-port", str(sandbox_port)],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        wait_for(lambda: lines.append(second.stdout.readline()) or "Press Ctrl-C" in lines[-1] or second.poll() is not None,
                 timeout=120, what="the second start")
        output = "".join(lines)
        assert "Press Ctrl-C" in output, output
        password = first.split("administrator    admin / ", 1)[1].split()[0]
        assert f"administrator    admin / {password}" in output  # same clinic, same logins
        client = sign_in(port, "admin", password)
        # Deliveries queued before the stop still arrive; the demo referrals are not sent twice.
        wait_for(lambda: "Gagnon" in client.get("/referrals/").text, timeout=60, what="the demo referral")
        assert client.get("/referrals/").text.count("Gagnon") == 1
    finally:
        second.terminate()
        second.wait(timeout=30)
