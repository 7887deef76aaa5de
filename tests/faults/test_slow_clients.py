"""Clients that stop sending mid-request (slowloris) do not stop the server.

gunicorn's threads read with blocking sockets: without a read timeout, as many stalled
connections as the worker has threads left nobody to answer Ocean. harbour.core.gunicorn_conf
gives accepted sockets a read timeout (HARBOUR_READ_TIMEOUT_SECONDS, 2 s here).
"""
import socket

import httpx
import pytest

from tests.faults.helpers import INTAKE, clinic_with_key, report
from tests.production.workload import bundle
from tests.servers import start_harbour, wait_for

pytestmark = [pytest.mark.servers, pytest.mark.timeout(120)]

STALLED = 24  # three times the test server's 8 threads


@pytest.fixture
def harbour(tmp_path, request):
    server = start_harbour(tmp_path / "harbour", worker=False, env={"HARBOUR_READ_TIMEOUT_SECONDS": "2"})
    yield server
    report(server, request)
    server.stop()


def stalled_connections(base_url: str, key: str) -> list[socket.socket]:
    host, port = base_url.rsplit("/", 1)[1].rsplit(":", 1)
    sockets = []
    for number in range(STALLED):
        conn = socket.create_connection((host, int(port)))
        if number % 2:  # headers never finished
            conn.sendall(f"POST {INTAKE} HTTP/1.1\r\nHost: {host}\r\n".encode())
        else:  # a body that stops after one byte of the 1,000 announced
            conn.sendall((f"POST {INTAKE} HTTP/1.1\r\nHost: {host}\r\nReferral-Integration-API-Key: {key}\r\n"
                          "Content-Type: application/fhir+json\r\nContent-Length: 1000\r\n\r\n{").encode())
        sockets.append(conn)
    return sockets


def test_stalled_clients_are_cut_off_and_ocean_gets_through(harbour):
    key = clinic_with_key(harbour)
    sockets = stalled_connections(harbour.base_url, key)
    try:
        # Every thread may be blocked for a moment; within a few read timeouts, deliveries go through.
        def delivered():
            try:
                response = httpx.post(f"{harbour.base_url}{INTAKE}", content=bundle("REF-SLOW"), timeout=20,
                                      headers={"Referral-Integration-API-Key": key,
                                               "Content-Type": "application/fhir+json"})
            except httpx.TimeoutException:
                return False
            return response.status_code == 200

        wait_for(delivered, timeout=30, interval=0.2, what="a delivery past the stalled clients")
        # Each stalled body was answered: 400, it could not be read completely. (When gunicorn
        # then closes a connection is its own business: it closed most at once, a few later.)
        for conn in sockets[::2]:
            conn.settimeout(15)
            answer = b""
            while b"\r\n\r\n" not in answer and (chunk := conn.recv(4096)):
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    finally:
        for conn in sockets:
            conn.close()
    assert harbour.processes["serve"].poll() is None  # the server itself kept running
