"""A real HTTP endpoint on loopback that records what the sandbox delivers (an EMR stand-in).

It runs in a thread and never touches the database; each request gets the next queued answer
(status, body, delay in seconds), or 200 once the queue is empty.
"""
import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    def __init__(self):
        self.requests: list[dict] = []
        self.answers: deque = deque()
        self.default = (200, b'{"resourceType":"OperationOutcome"}', 0)
        self.token_response = None  # when set, POST /token answers it (an OAuth2 endpoint)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if self.path == "/token" and receiver.token_response is not None:
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    self._send(200, json.dumps(receiver.token_response).encode())
                    return
                status, text, delay = receiver.answers.popleft() if receiver.answers else receiver.default
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                if delay:
                    threading.Event().wait(delay)
                self._send(status, text)

            def _send(self, status, body):
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False  # a handler still sleeping (timeout tests) must not hold teardown
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def answer(self, status: int, body: bytes | str = b"", delay: float = 0, times: int = 1) -> None:
        for _ in range(times):
            self.answers.append((status, body.encode() if isinstance(body, str) else body, delay))

    def bundles(self, path: str = "/fhir_bundles") -> list[dict]:
        return [json.loads(r["body"]) for r in self.requests if r["path"] == path]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
