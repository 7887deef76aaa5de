"""harbour.wsgi.application over real HTTP in a thread, sharing the test database.

- `base_url`: wsgiref's server (as test_lean_route.py always used).
- `gunicorn_url`: gunicorn's own HTTP code (its request parser, de-chunking body readers and
  WSGI environ, as its workers use them) in a one-connection-at-a-time loop, without the
  arbiter (which forks and owns signals). What a broken chunked body does to the endpoint is
  decided by that code, which wsgiref does not have.
- `raw_post`: a request written byte by byte on a socket, optionally half-closed after the
  body, for bodies no HTTP client sends (broken chunks, fewer bytes than Content-Length).
"""
import http.client
import socket
import threading
from contextlib import contextmanager
from urllib.parse import urlsplit
from wsgiref.simple_server import WSGIRequestHandler, make_server

import orjson
import pytest
from django.db import connections
from gunicorn import http as gunicorn_http, util
from gunicorn.config import Config
from gunicorn.http import wsgi as gunicorn_wsgi

from harbour.wsgi import application
from tests.intake.intake_client import HOST, URL


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


@contextmanager
def _shared_database():
    """Run `serve` in a thread that sees the test database (as Django's live server does)."""
    conn = connections["default"]
    shared = conn.vendor == "sqlite" and conn.is_in_memory_db()
    if shared:  # an in-memory database exists in this connection only
        conn.inc_thread_sharing()

    def in_thread(serve):
        def run():
            if shared:
                connections["default"] = conn
            try:
                serve()
            finally:
                if not shared:
                    connections.close_all()
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    try:
        yield in_thread
    finally:
        if shared:
            conn.dec_thread_sharing()


@pytest.fixture
def base_url(transactional_db):
    """harbour.wsgi.application behind wsgiref on a loopback port."""
    with _shared_database() as in_thread:
        server = make_server("127.0.0.1", 0, application, handler_class=_QuietHandler)
        thread = in_thread(lambda: server.serve_forever(poll_interval=0.05))
        yield f"http://127.0.0.1:{server.server_port}"
        server.shutdown()
        thread.join(10)
        server.server_close()


def _serve_one(listener, client, addr, cfg) -> None:
    # gunicorn's sync worker's handle()/handle_request(), minus its worker bookkeeping.
    try:
        request = next(gunicorn_http.get_parser(cfg, client, addr))
        response, environ = gunicorn_wsgi.create(request, client, addr, listener.getsockname(), cfg)
        response.force_close()
        body = application(environ, response.start_response)
        try:
            for item in body:
                response.write(item)
            response.close()
        finally:
            if hasattr(body, "close"):
                body.close()
    except (StopIteration, OSError):  # the client went away before a request: gunicorn ignores it too
        pass
    finally:
        util.close_graceful(client)  # as gunicorn closes: no RST over an unread request


@pytest.fixture
def gunicorn_url(transactional_db):
    """harbour.wsgi.application behind gunicorn's HTTP code on a loopback port."""
    cfg = Config()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                client, addr = listener.accept()
            except TimeoutError:
                continue
            client.settimeout(30)
            _serve_one(listener, client, addr, cfg)

    with _shared_database() as in_thread:
        thread = in_thread(serve)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
        stop.set()
        thread.join(10)
        listener.close()


def raw_post(base_url: str, headers: dict, body: bytes, *, half_close: bool = True) -> tuple[int, dict]:
    """POST `body` exactly as given (no framing added) to the endpoint; (status, JSON answer)."""
    address = urlsplit(base_url)
    head = {"Host": HOST, "Content-Type": "application/fhir+json", "Connection": "close", **headers}
    request = "".join([f"POST {URL} HTTP/1.1\r\n", *(f"{name}: {value}\r\n" for name, value in head.items()), "\r\n"])
    with socket.create_connection((address.hostname, address.port), timeout=30) as sock:
        sock.sendall(request.encode("latin-1") + body)
        if half_close:  # the client is done sending, and waits for the answer
            try:
                sock.shutdown(socket.SHUT_WR)
            except OSError:  # the server already answered and closed
                pass
        answer = http.client.HTTPResponse(sock)
        answer.begin()
        content = answer.read()
    return answer.status, orjson.loads(content)
