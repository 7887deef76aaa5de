"""Shared by the fault tests: a clinic with an inbound key, and Ocean-like clients that post
bundles and retry until they get a 2xx, recording every attempt."""
from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field

import httpx

from tests.servers import Server

INTAKE = "/public/ocean/fhir_bundles"
KEY_HEADER = "Referral-Integration-API-Key"


def clinic_with_key(server: Server, site_number: str = "1234") -> str:
    """A clinic (the only one: it serves every host) and its inbound key."""
    out = server.shell(
        "from harbour.clinics.models import Clinic, OceanSettings; "
        "c = Clinic.objects.create(name='Clinique Faute'); "
        f"o = OceanSettings.objects.create(clinic=c, site_number='{site_number}'); "
        "key = o.generate_inbound_key(); o.save(); print(key)"
    )
    return out.strip().splitlines()[-1]


@dataclass
class Attempt:
    bundle_id: str
    started: float
    ended: float
    status: int | None  # None: no HTTP answer (connection refused, reset, timeout)


@dataclass
class Poster:
    """Ocean's side: each client posts its bundles in turn; a bundle is posted again until a 2xx.

    Bounded: each client gives up at `deadline` (monotonic); the test then fails on the missing acks.
    """

    base_url: str
    key: str
    deadline: float
    retry_pause: float = 0.05
    attempts: list[Attempt] = field(default_factory=list)
    acked: dict[str, int] = field(default_factory=dict)  # bundle id -> 2xx status
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, batches: list[list[tuple[str, bytes]]]) -> None:
        threads = [threading.Thread(target=self._client, args=(batch,), daemon=True) for batch in batches]
        for thread in threads:
            thread.start()
        self.threads = threads

    def join(self) -> None:
        for thread in self.threads:
            thread.join(timeout=max(1.0, self.deadline - time.monotonic() + 5))

    def count(self, status=None) -> int:
        with self.lock:
            return sum(1 for a in self.attempts if a.status == status) if status is not None else len(self.acked)

    def _client(self, batch: list[tuple[str, bytes]]) -> None:
        headers = {KEY_HEADER: self.key, "Content-Type": "application/fhir+json"}
        with httpx.Client(base_url=self.base_url, timeout=httpx.Timeout(10, connect=2)) as http:
            for bundle_id, body in batch:
                while time.monotonic() < self.deadline:
                    started = time.monotonic()
                    try:
                        status = http.post(INTAKE, content=body, headers=headers).status_code
                    except httpx.HTTPError:
                        status = None
                    with self.lock:
                        self.attempts.append(Attempt(bundle_id, started, time.monotonic(), status))
                        if status is not None and 200 <= status < 300:
                            self.acked[bundle_id] = status
                    if status is not None and 200 <= status < 300:
                        break
                    time.sleep(self.retry_pause)


def report(server: Server, request) -> None:
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        sys.stderr.write("\n" + server.logs() + "\n")
