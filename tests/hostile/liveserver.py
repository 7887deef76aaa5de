"""An in-thread HTTP server for Harbour's WSGI app, sharing the test database (real HTTP, no subprocess).

Like Django's LiveServerThread (which pytest-django's live_server uses), with TCP_NODELAY on each
connection: wsgiref writes a response's headers and body separately, and without it every
answer waits ~40 ms for the client's delayed ACK, too slow for a fuzzer.
"""
from __future__ import annotations

import socket
import threading
from contextlib import contextmanager

from django.core.handlers.wsgi import WSGIHandler
from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
from django.db import connections


class _Handler(WSGIRequestHandler):
    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format, *args):  # the app's own access log is enough
        pass


class _Server(ThreadedWSGIServer):
    def _close_connections(self):
        # Close this thread's own connections only: a shared one belongs to the test.
        for conn in connections.all(initialized_only=True):
            if conn.alias not in (self.connections_override or {}):
                conn.close()


@contextmanager
def serve_harbour():
    """Yield the base URL (http://127.0.0.1:PORT) of Harbour served from this process."""
    shared = {}
    for conn in connections.all():
        # An in-memory SQLite test database exists only in this connection: share it, as Django does.
        if conn.vendor == "sqlite" and conn.is_in_memory_db():
            shared[conn.alias] = conn
            conn.inc_thread_sharing()
    server = _Server(("127.0.0.1", 0), _Handler, allow_reuse_address=False, connections_override=shared)
    server.set_app(WSGIHandler())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        for conn in shared.values():
            conn.dec_thread_sharing()
