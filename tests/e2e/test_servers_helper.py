"""The test servers' own guarantees: distinct ports, and "ready" only when our process bound its port.

A CI run once gave Harbour and the sandbox, started together, the same port: the sandbox could
not bind it, Harbour answered its health checks, and the tests then talked to the wrong server.
"""
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.servers import Server, free_port


def test_free_port_never_hands_out_a_port_twice_even_across_threads():
    with ThreadPoolExecutor(max_workers=8) as pool:
        ports = list(pool.map(lambda _: free_port(), range(400)))
    assert len(set(ports)) == len(ports)


class _Healthy(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def someone_else_on_a_port():
    """Another server answering 200 on a port, as the one that took ours would."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Healthy)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def _server_with_log(tmp_path, port: int, log_text: str) -> Server:
    base_url = f"http://127.0.0.1:{port}"
    log = tmp_path / "logs" / "serve.log"
    log.parent.mkdir(parents=True)
    log.write_text("earlier run\n[INFO] Listening at: %s (1)\n" % base_url)
    server = Server("harbour", base_url, {}, tmp_path)
    server.web_log = (log, log.stat().st_size)  # as start_web records it: only what comes after counts
    with open(log, "a") as out:
        out.write(log_text)
    return server


def test_a_port_answered_by_another_server_is_not_ready(tmp_path, someone_else_on_a_port):
    server = _server_with_log(tmp_path, someone_else_on_a_port, "[ERROR] connection to ... failed: [Errno 98] Address already in use\n")
    with pytest.raises(RuntimeError, match="did not answer"):
        server.wait_ready(timeout=1)


def test_ready_once_our_process_says_it_listens_on_our_port(tmp_path, someone_else_on_a_port):
    url = f"http://127.0.0.1:{someone_else_on_a_port}"
    server = _server_with_log(tmp_path, someone_else_on_a_port, f"[INFO] Listening at: {url} (42)\n")
    server.wait_ready(timeout=5)
