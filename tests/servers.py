"""Real servers for end-to-end and browser tests: Harbour and the Ocean sandbox as subprocesses.

Each server gets a free loopback port, its own temporary HARBOUR_VAR_DIR (a fresh SQLite
database and developer secrets) or, when the suite runs on PostgreSQL ($DATABASE_URL), its own
database created on that PostgreSQL server and dropped at the end. Servers are migrated, then
run their web process (`serve`, gunicorn) and, unless told otherwise, their worker. Logs go to
files in the server's var dir (see `Server.logs()`), which a failing test prints.

Use the fixtures `harbour_server` and `sandbox_server` (import them into a conftest.py), or call
`start_harbour()` / `start_sandbox()` for other options. A test sets the sandbox's time scale by
overriding the `sandbox_time_scale` fixture (e.g. `@pytest.mark.parametrize("sandbox_time_scale", [3600])`).
"""
from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 90
# Settings that must come from the server's own environment, never from the test process's.
_INHERITED_OUT = {"DJANGO_SETTINGS_MODULE", "DATABASE_URL", "SANDBOX_DATABASE_URL", "HARBOUR_VAR_DIR"}


_ports_given: set[int] = set()
_ports_lock = threading.Lock()


def free_port() -> int:
    """A free loopback port, never one this process has handed out before: the kernel may give
    the same free port to two servers started at once (start_together), and one then fails to
    bind while the other answers its health checks."""
    with _ports_lock:
        while True:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
            if port not in _ports_given:
                _ports_given.add(port)
                return port


@dataclass
class Server:
    """A running server: its URL, environment, processes, and helpers to reach its database."""

    kind: str  # "harbour" or "sandbox"
    base_url: str
    env: dict
    var_dir: Path
    processes: dict = field(default_factory=dict)
    database_cleanup: object = None
    web_log: tuple | None = None  # (log path, its size when the web process started)

    @property
    def cli(self) -> list[str]:
        base = [sys.executable, "-m", "harbour.cli"]
        return [*base, "sandbox"] if self.kind == "sandbox" else [*base, "manage"]

    def manage(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run a management command against this server's database and settings."""
        result = subprocess.run([*self.cli, *args], env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"{self.kind} manage {args[:1]} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    @property
    def database_url(self) -> str:
        """The server's database: its PostgreSQL database, or the SQLite file under its var dir."""
        if self.env.get(self.database_env):
            return self.env[self.database_env]
        name = "sandbox.sqlite3" if self.kind == "sandbox" else "harbour.sqlite3"
        return f"sqlite:///{self.var_dir / name}"

    @property
    def database_env(self) -> str:
        return "SANDBOX_DATABASE_URL" if self.kind == "sandbox" else "DATABASE_URL"

    def sql(self, query: str, params: tuple = ()) -> list[tuple]:
        """Run one read query on the server's database directly (no Django: fast enough to poll).
        Write placeholders as %s; they are adapted for SQLite."""
        url = self.database_url
        if url.startswith("sqlite:///"):
            import sqlite3
            from contextlib import closing

            with closing(sqlite3.connect(url.removeprefix("sqlite:///"), timeout=30)) as conn:
                return conn.execute(query.replace("%s", "?"), params).fetchall()
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            return conn.execute(query, params).fetchall()

    def shell(self, code: str) -> str:
        """Run Python in this server's Django (`manage shell -c`); returns what it printed."""
        return self.manage("shell", "-c", code).stdout

    def start_process(self, name: str, args: list[str], *, raw: bool = False) -> None:
        # `harbour serve` / `harbour worker`, or `harbour sandbox serve` / `harbour sandbox worker`;
        # with raw=True, `args` is the whole command (run with the server's environment).
        command = [] if raw else self.cli[:-1] if self.kind == "harbour" else self.cli
        log = open(self.var_dir / "logs" / f"{name}.log", "ab")
        self.processes[name] = subprocess.Popen(
            [*command, *args], env=self.env, cwd=ROOT,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()

    def start_web(self, name: str = "serve") -> None:
        """The web process (`serve`: gunicorn, 1 worker x 8 threads) on the server's port."""
        port = self.base_url.rsplit(":", 1)[1]
        path = self.var_dir / "logs" / f"{name}.log"
        self.web_log = (path, path.stat().st_size if path.exists() else 0)
        self.start_process(name, ["serve", "--host", "127.0.0.1", "--port", port, "--workers", "1", "--threads", "8"])

    def listening(self) -> bool:
        """Whether our web process says it bound our port (gunicorn's "Listening at" line, written
        since it started): a 200 on the port alone could come from another server."""
        if self.web_log is None:
            return True
        path, offset = self.web_log
        with open(path, "rb") as log:
            log.seek(offset)
            return f"Listening at: {self.base_url} ".encode() in log.read()

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to one of our processes and its children (gunicorn's workers), and reap it."""
        process = self.processes.pop(name)
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        process.wait(timeout=15)

    def logs(self) -> str:
        parts = []
        for path in sorted((self.var_dir / "logs").glob("*.log")):
            text = path.read_text(errors="replace")
            parts.append(f"----- {self.kind} {path.name} (last 4000 chars) -----\n{text[-4000:]}")
        return "\n".join(parts)

    def wait_ready(self, path: str = "/healthz", timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{self.kind} {name} exited with {process.returncode}\n{self.logs()}")
            try:
                if httpx.get(self.base_url + path, timeout=2).status_code == 200 and self.listening():
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.kind} did not answer {path} within {timeout} s\n{self.logs()}")

    def stop(self) -> None:
        """Stop our processes, then drop the server's PostgreSQL database (if it has one)."""
        self.stop_processes()
        if self.database_cleanup:
            self.database_cleanup()
            self.database_cleanup = None

    def stop_processes(self) -> None:
        """Stop our own processes (each started in its own session: gunicorn's workers included)."""
        for process in self.processes.values():
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait(timeout=5)
        self.processes.clear()


def _postgres_database(prefix: str):
    """A new database on $DATABASE_URL's PostgreSQL server: (url, drop function), or (None, None)."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        return None, None
    import psycopg
    from psycopg import sql

    name = f"{prefix}_{secrets.token_hex(6)}"
    url, _, query = url.partition("?")
    query = f"?{query}" if query else ""
    base, _, _ = url.rpartition("/")
    admin_url = f"{base}/postgres{query}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def drop():
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    return f"{base}/{name}{query}", drop


def _base_env(var_dir: Path, extra: dict | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in _INHERITED_OUT}
    env.update({
        "HARBOUR_VAR_DIR": str(var_dir),
        "HARBOUR_WORKER_IDLE_SECONDS": "0.05",
        "HARBOUR_LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": str(ROOT) + (os.pathsep + os.environ["PYTHONPATH"] if os.environ.get("PYTHONPATH") else ""),
    })
    env.update(extra or {})
    return env


def _start(server: Server, worker: bool, web: bool = True) -> Server:
    (server.var_dir / "logs").mkdir(parents=True, exist_ok=True)
    try:
        server.manage("migrate", "--verbosity", "0", timeout=180)
        if web:
            server.start_web()
        if worker:
            server.start_process("worker", ["worker"])
        if web:
            server.wait_ready()
    except Exception:
        server.stop()
        raise
    return server


def start_harbour(var_dir: Path, *, worker: bool = True, web: bool = True, env: dict | None = None) -> Server:
    """Harbour (migrate + serve + worker) on a free port; `web=False` leaves the web process out."""
    var_dir.mkdir(parents=True, exist_ok=True)
    base_url = f"http://127.0.0.1:{free_port()}"
    extra = {"HARBOUR_PUBLIC_URL": base_url, "DJANGO_SETTINGS_MODULE": "harbour.settings"}
    db_url, drop = _postgres_database("harbour_e2e")
    if db_url:
        extra["DATABASE_URL"] = db_url
    server = Server("harbour", base_url, _base_env(var_dir, {**extra, **(env or {})}), var_dir, database_cleanup=drop)
    return _start(server, worker, web)


def start_sandbox(var_dir: Path, *, time_scale: float = 1, worker: bool = True, env: dict | None = None) -> Server:
    """The Ocean sandbox (migrate + serve + worker) on a free port, with its admin token in
    `server.env["SANDBOX_ADMIN_TOKEN"]` and `server.admin_api()` to use it."""
    var_dir.mkdir(parents=True, exist_ok=True)
    base_url = f"http://127.0.0.1:{free_port()}"
    extra = {
        "SANDBOX_PUBLIC_URL": base_url,
        "SANDBOX_TIME_SCALE": str(time_scale),
        "SANDBOX_ADMIN_TOKEN": secrets.token_urlsafe(24),
        "SANDBOX_DELIVERY_TIMEOUT_SECONDS": "5",
    }
    db_url, drop = _postgres_database("sandbox_e2e")
    if db_url:
        extra["SANDBOX_DATABASE_URL"] = db_url
    server = Server("sandbox", base_url, _base_env(var_dir, {**extra, **(env or {})}), var_dir, database_cleanup=drop)
    return _start(server, worker)


def start_together(*starters) -> list[Server]:
    """Start several servers at once (their migrations overlap); each starter takes no argument.

    Example: `harbour, sandbox = start_together(lambda: start_harbour(a), lambda: start_sandbox(b))`.
    If one fails, the others are stopped and the error is raised.
    """
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=len(starters)) as pool:
        futures = [pool.submit(starter) for starter in starters]
    servers, errors = [], []
    for future in futures:
        try:
            servers.append(future.result())
        except Exception as exc:  # noqa: BLE001 - reported below, after stopping the others
            errors.append(exc)
    if errors:
        for server in servers:
            server.stop()
        raise errors[0]
    return servers


def admin_api(server: Server) -> httpx.Client:
    """An HTTP client for the sandbox's JSON admin API (base URL /sandbox-api/)."""
    return httpx.Client(
        base_url=f"{server.base_url}/sandbox-api/", headers={"X-Sandbox-Admin-Token": server.env["SANDBOX_ADMIN_TOKEN"]}, timeout=30,
    )


def wait_for(check, *, timeout: float = 30, interval: float = 0.1, what: str = "condition"):
    """Poll `check()` until it returns something truthy; returns it, or fails after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


# --- Fixtures ----------------------------------------------------------------------------------

@pytest.fixture
def sandbox_time_scale() -> float:
    """Override (fixture or parametrize) to compress the sandbox's retry schedule."""
    return 1


def _report_logs_on_failure(request, server: Server) -> None:
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        sys.stderr.write("\n" + server.logs() + "\n")


@pytest.fixture
def harbour_server(tmp_path, request):
    server = start_harbour(tmp_path / "harbour-var")
    yield server
    _report_logs_on_failure(request, server)
    server.stop()


@pytest.fixture
def sandbox_server(tmp_path, request, sandbox_time_scale):
    server = start_sandbox(tmp_path / "sandbox-var", time_scale=sandbox_time_scale)
    yield server
    _report_logs_on_failure(request, server)
    server.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item so fixtures can print logs after a failure."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
