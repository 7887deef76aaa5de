"""`harbour demo` when things are not the first clean start: other ports than last time, a copy
already running, Ctrl-C during the setup or the start, a server that dies at once."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from tests.demo.test_start_command import ROOT, demo, sign_in  # noqa: F401 (demo is a fixture)
from tests.servers import free_port, wait_for

pytestmark = pytest.mark.embedded_default


def demo_env(var_dir) -> dict:
    env = {**os.environ, "HARBOUR_VAR_DIR": str(var_dir), "HARBOUR_WORKER_IDLE_SECONDS": "0.1"}
    env.pop("DATABASE_URL", None)
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return env


def run_demo(var_dir, *args, timeout=30) -> subprocess.CompletedProcess:
    """A demo expected to stop by itself (a refusal): its output and exit code."""
    return subprocess.run([sys.executable, "-m", "harbour.cli", "demo", *args], cwd=ROOT, env=demo_env(var_dir),
                          capture_output=True, text=True, timeout=timeout)


def start_demo(var_dir, port, sandbox_port, *, code=None):
    """A demo in its own process group, its output in var_dir/demo-<port>.out; `code` runs it
    through `python -c code` (which then runs harbour.cli) instead of `python -m harbour.cli`."""
    out = open(var_dir / f"demo-{port}.out", "w+")
    head = ["-c", code] if code else ["-m", "harbour.cli"]
    process = subprocess.Popen([sys.executable, *head, "demo", "--port", str(port), "--sandbox-port", str(sandbox_port)],
                               cwd=ROOT, env=demo_env(var_dir), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    process.out_path = var_dir / f"demo-{port}.out"
    return process


def output(process) -> str:
    return process.out_path.read_text()


def wait_until_ready(process, timeout=120) -> str:
    wait_for(lambda: "Press Ctrl-C to stop" in output(process) or process.poll() is not None, timeout=timeout, what="the demo")
    assert "Press Ctrl-C to stop" in output(process), output(process)
    return output(process)


def stop(process, sig=signal.SIGTERM):
    if process.poll() is None:
        process.send_signal(sig)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def nothing_left(process) -> bool:
    """No process of the demo's group is left (the demo started its children in its own group)."""
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return True
    return False


def answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def sandbox_api(var_dir, sandbox_port) -> httpx.Client:
    token = subprocess.run([sys.executable, "-m", "harbour.cli", "sandbox", "admin_token"], cwd=ROOT, env=demo_env(var_dir),
                           capture_output=True, text=True, check=True).stdout.strip()
    return httpx.Client(base_url=f"http://localhost:{sandbox_port}/sandbox-api/", headers={"X-Sandbox-Admin-Token": token}, timeout=30)


# --- Ports ---------------------------------------------------------------------------------------

def test_ports_are_checked_before_anything_starts(tmp_path):
    started = time.monotonic()
    result = run_demo(tmp_path, "--port", "99999")
    assert result.returncode == 2 and "99999 is not a port number (1-65535)" in result.stderr
    assert time.monotonic() - started < 15  # not the 60 s wait for a server that died at once

    taken, sandbox_port = free_port(), free_port()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", taken))
        listener.listen()
        result = run_demo(tmp_path, "--port", str(taken), "--sandbox-port", str(sandbox_port))
        assert result.returncode == 1
        assert result.stderr.strip() == f"port {taken} is already in use (another Harbour?); stop it, or choose another with --port."
        assert "Traceback" not in result.stdout + result.stderr and result.stdout == ""
        assert not answers(sandbox_port) and not (tmp_path / "logs").exists()  # nothing started

        result = run_demo(tmp_path, "--port", str(sandbox_port), "--sandbox-port", str(taken))
        assert result.returncode == 1
        assert result.stderr.strip().startswith(f"port {taken} is already in use (another Ocean sandbox?)")
    result = run_demo(tmp_path, "--port", str(taken), "--sandbox-port", str(taken))
    assert result.returncode == 1 and "give them different ports" in result.stderr


def test_a_second_copy_starts_nothing(demo):
    process, port, sandbox_port, var_dir = demo
    # Same ports: refused at once, in one line; the first copy goes on.
    started = time.monotonic()
    result = run_demo(var_dir, "--port", str(port), "--sandbox-port", str(sandbox_port))
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.strip() == f"port {port} is already in use (another Harbour?); stop it, or choose another with --port."
    assert "Harbour is running" not in result.stdout and "Preparing" not in result.stdout
    assert time.monotonic() - started < 15
    # Other ports, same var dir (the same SQLite files): refused too, before any worker starts.
    other, other_sandbox = free_port(), free_port()
    result = run_demo(var_dir, "--port", str(other), "--sandbox-port", str(other_sandbox))
    assert result.returncode == 1 and "Another `harbour demo` is already running with" in result.stderr, result.stderr
    assert not answers(other) and not answers(other_sandbox)
    assert process.poll() is None
    assert httpx.get(f"http://localhost:{port}/healthz", timeout=10).status_code == 200


# --- Other ports than last time --------------------------------------------------------------------

def test_a_rerun_on_other_ports_rewires_both_sides(demo):
    process, port, sandbox_port, var_dir = demo
    first = (var_dir / "demo.out").read_text()
    stop(process)
    assert process.returncode == 0
    new_port, new_sandbox_port = free_port(), free_port()
    second = start_demo(var_dir, new_port, new_sandbox_port)
    try:
        out = wait_until_ready(second)
        assert f"now posts to http://localhost:{new_port}/public/ocean/fhir_bundles" in out
        assert f"the Ocean server is now http://localhost:{new_sandbox_port}" in out
        state = json.loads((var_dir / "demo.json").read_text())
        api = sandbox_api(var_dir, new_sandbox_port)
        integration = api.get(f"integrations/{state['integration']}").json()
        assert integration["request_url"] == f"http://localhost:{new_port}/public/ocean/fhir_bundles"

        password = first.split("administrator    admin / ", 1)[1].split()[0]
        client = sign_in(new_port, "admin", password)
        assert f"http://localhost:{new_sandbox_port}" in client.get("/settings/consultations/ocean/").text
        # A referral sent now reaches Harbour on its new port.
        response = api.post("referrals", json={
            "from_site": state["referrer_site"], "listing": state["clinic_listing"], "priority": "routine",
            "referrer": {"family": "Tremblay", "given": "Sophie", "cpso": "98765"},
            "patient": {"family": "Lavoie", "given": "Claire", "birth_date": "1975-02-03", "gender": "female", "hcn": "5555555555"},
            "reason": "Left shoulder pain.",
        })
        assert response.status_code == 201, response.text
        wait_for(lambda: "Lavoie" in client.get("/referrals/").text, timeout=60, what="the referral on the new port")
        # The same ports again: nothing to rewire.
        stop(second)
        third = start_demo(var_dir, new_port, new_sandbox_port)
        try:
            assert "Rewired" not in wait_until_ready(third)
        finally:
            stop(third)
    finally:
        stop(second)


# --- Ctrl-C ----------------------------------------------------------------------------------------

# Runs the demo as usual, but presses Ctrl-C (SIGINT) as soon as the sandbox has answered the first
# POST /sandbox-api/sites: the moment the deployer's review stopped it.
CTRL_C_AFTER_FIRST_SITE = """
import os, signal, sys, time
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "harbour.settings")
django.setup()
from harbour.core.management.commands import demo
post = demo.SandboxAPI.post
def post_then_ctrl_c(self, path, body):
    answer = post(self, path, body)
    if path == "sites":
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)
    return answer
demo.SandboxAPI.post = post_then_ctrl_c
from harbour.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_ctrl_c_during_the_setup_then_a_start_resumes_it(tmp_path):
    port, sandbox_port = free_port(), free_port()
    first = start_demo(tmp_path, port, sandbox_port, code=CTRL_C_AFTER_FIRST_SITE)
    first.wait(timeout=120)
    out = output(first)
    assert first.returncode == 130, out
    assert "Traceback" not in out and out.strip().splitlines()[-1] == "Interrupted while starting; stopped everything it had started."
    assert nothing_left(first) and not answers(sandbox_port)

    second = start_demo(tmp_path, port, sandbox_port)
    try:
        out = wait_until_ready(second)
        password = out.split("administrator    admin / ", 1)[1].split()[0]
        client = sign_in(port, "admin", password)
        wait_for(lambda: all(name in client.get("/referrals/").text for name in ("Gagnon", "Roy")),
                 timeout=60, what="the demo referrals")
        assert client.get("/referrals/").text.count("Gagnon") == 1
        # The sandbox user the stopped run created, with the password it printed now.
        sandbox = httpx.Client(base_url=f"http://localhost:{sandbox_port}", follow_redirects=True, timeout=30)
        sandbox.get("/login/")
        response = sandbox.post("/login/", data={"username": "demo", "password": password,
                                                 "csrfmiddlewaretoken": sandbox.cookies["sandbox_csrftoken"]})
        assert response.status_code == 200 and "/login/" not in str(response.url)
    finally:
        stop(second)
    assert second.returncode == 0


def test_ctrl_c_while_starting_stops_everything_in_one_line(tmp_path):
    port, sandbox_port = free_port(), free_port()
    process = start_demo(tmp_path, port, sandbox_port)
    try:
        wait_for(lambda: (tmp_path / "logs" / "sandbox-worker.log").exists() or process.poll() is not None,
                 timeout=60, what="the sandbox to start")
        os.killpg(process.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole group
        process.wait(timeout=30)
    finally:
        stop(process)
    out = output(process)
    assert process.returncode == 130, out
    assert "Traceback" not in out and "KeyboardInterrupt" not in out
    assert out.strip().splitlines() == ["Preparing the databases ...", "Interrupted while starting; stopped everything it had started."]
    wait_for(lambda: nothing_left(process), timeout=15, what="every process to stop")


def test_waiting_stops_as_soon_as_a_process_has_exited(tmp_path):
    from harbour.core.management.commands.demo import Child, Command, DemoError

    log = tmp_path / "harbour.log"
    with open(log, "wb") as out:
        dead = subprocess.Popen([sys.executable, "-c", "import sys; print('OverflowError: bind(): port must be 0-65535.'); sys.exit(1)"],
                                stdout=out, stderr=subprocess.STDOUT)
    dead.wait(timeout=30)
    command = Command()
    command.children = [Child("Harbour", dead, log)]
    started = time.monotonic()
    with pytest.raises(DemoError) as error:
        command.wait_until_up(f"http://127.0.0.1:{free_port()}/healthz")
    assert time.monotonic() - started < 5
    assert str(error.value) == f"Harbour stopped (exit code 1): OverflowError: bind(): port must be 0-65535.; see {log}"


def test_a_setup_it_cannot_resume_says_how_to_start_over(tmp_path):
    # A sandbox that has the demo's user while var/demo.json is gone (a setup stopped by an
    # older Harbour, which wrote the file only at the end).
    port, sandbox_port = free_port(), free_port()
    first = start_demo(tmp_path, port, sandbox_port, code=CTRL_C_AFTER_FIRST_SITE)
    first.wait(timeout=120)
    (tmp_path / "demo.json").unlink()
    result = run_demo(tmp_path, "--port", str(port), "--sandbox-port", str(sandbox_port), timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("The demo could not start: the sandbox already has a user 'demo' from an earlier setup")
    assert "run `scripts/start --reset`" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert nothing_left(first) and not answers(sandbox_port)

    process = subprocess.Popen([sys.executable, "-m", "harbour.cli", "demo", "--reset", "--port", str(port), "--sandbox-port", str(sandbox_port)],
                               cwd=ROOT, env=demo_env(tmp_path), stdout=open(tmp_path / "reset.out", "w"), stderr=subprocess.STDOUT,
                               start_new_session=True)
    process.out_path = tmp_path / "reset.out"
    try:
        out = wait_until_ready(process)
        assert "Reset: the demo starts from scratch." in out
        password = out.split("administrator    admin / ", 1)[1].split()[0]
        client = sign_in(port, "admin", password)
        wait_for(lambda: all(name in client.get("/referrals/").text for name in ("Gagnon", "Roy")),
                 timeout=60, what="the demo referrals")
    finally:
        stop(process)
