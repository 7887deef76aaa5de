"""A tiny Ocean on loopback for client tests: a threaded http.server that imitates the token,
$process-messages, $letter, $binary and NamingSystem endpoints and records every request."""
from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


@dataclass
class Reply:
    status: int = 200
    body: bytes | dict | None = None
    content_type: str = "application/fhir+json"
    delay: float = 0.0


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict
    body: bytes

    @property
    def form(self) -> dict:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}

    @property
    def json(self):
        return json.loads(self.body)


@dataclass
class FakeOcean:
    client_id: str = "harbour-client"
    secret: str = "s3cret-value"
    expires_in: int | None = 3600
    # Scripted replies per route ("token", "process", "letter", "binary", "naming"); else defaults.
    script: dict = field(default_factory=dict)
    requests: list = field(default_factory=list)
    issued: list = field(default_factory=list)  # tokens handed out
    letter: bytes = b"%PDF-1.4 letter"
    binary: bytes = b"%PDF-1.4 attachment"

    def __post_init__(self):
        self.lock = threading.Lock()
        self.revoked: set[str] = set()
        ocean = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                ocean._handle(self)

            def do_POST(self):
                ocean._handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def queue(self, route: str, *replies: Reply) -> None:
        self.script.setdefault(route, deque()).extend(replies)

    def calls(self, route: str) -> list[Recorded]:
        return [r for r in self.requests if _route(r.method, r.path) == route]

    # --- handling ---

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        recorded = Recorded(h.command, h.path, {k.lower(): v for k, v in h.headers.items()}, body)
        route = _route(h.command, h.path)
        with self.lock:
            self.requests.append(recorded)
            scripted = self.script.get(route)
            reply = scripted.popleft() if scripted else None
        reply = reply or self._default(route, recorded)
        if reply.delay:
            time.sleep(reply.delay)
        payload = reply.body
        if isinstance(payload, (dict, list)):
            payload = json.dumps(payload).encode()
        payload = payload or b""
        try:
            h.send_response(reply.status)
            h.send_header("Content-Type", reply.content_type)
            h.send_header("Content-Length", str(len(payload)))
            h.end_headers()
            h.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _authorised(self, recorded: Recorded) -> bool:
        auth = recorded.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ")
        return auth.startswith("Bearer ") and token in self.issued and token not in self.revoked

    def _default(self, route: str, recorded: Recorded) -> Reply:
        if route == "token":
            form = recorded.form
            if form.get("client_id") != self.client_id:
                return Reply(401, {"error": "invalid_client", "error_description": "Unknown client id"},
                             "application/json")
            if form.get("client_secret") != self.secret:
                return Reply(401, {"error": "invalid_client", "error_description": "Bad client secret"},
                             "application/json")
            token = f"tok-{len(self.issued) + 1}"
            self.issued.append(token)
            body = {"access_token": token, "token_type": "Bearer"}
            if self.expires_in is not None:
                body["expires_in"] = self.expires_in
            return Reply(200, body, "application/json")
        if not self._authorised(recorded):
            return Reply(401, outcome("Invalid token"))
        if route == "process":
            return Reply(200, outcome("ok", severity="information"))
        if route == "letter":
            return Reply(200, self.letter, "application/pdf")
        if route == "binary":
            return Reply(200, self.binary, "application/pdf")
        if route == "naming":
            return Reply(200, {"resourceType": "NamingSystem", "name": "id-site-number"})
        return Reply(404, outcome("not found"))


def outcome(text: str, severity: str = "error") -> dict:
    return {"resourceType": "OperationOutcome",
            "issue": [{"severity": severity, "code": "processing", "diagnostics": text}]}


def _route(method: str, path: str) -> str:
    path = path.split("?", 1)[0]
    if path.endswith("/svc/oauth2/token"):
        return "token"
    if path.endswith("/$process-messages"):
        return "process"
    if path.endswith("/$letter"):
        return "letter"
    if path.endswith("/$binary"):
        return "binary"
    if path.endswith("/NamingSystem/id-site-number"):
        return "naming"
    return "other"
