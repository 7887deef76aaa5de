"""Long fuzz of the public Ocean endpoint from its OpenAPI description (docs/openapi/intake.yaml).

The test suite runs a bounded version (tests/hostile/test_endpoint_fuzz.py, 30 s at most); this
runs as long as you like against Harbour under gunicorn with its worker (tests/servers.py: a
fresh SQLite database in a temporary folder, or a new database on $DATABASE_URL's PostgreSQL),
and prints what it sent and how the server answered. Every answer must be a documented status
with a conforming OperationOutcome; a 500 or a non-conforming answer is printed and counted.
At the end, every stored message must have left the queue (processed, unknown_event, duplicate,
or failed with a safe error).

    .venv/bin/python bench/fuzz_intake.py --seconds 600
    .venv/bin/python bench/fuzz_intake.py --seconds 60 --url http://127.0.0.1:8000 --key KEY  # a running Harbour

Traffic goes to the loopback only; the run stops by itself after --seconds.
"""
from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
import schemathesis  # noqa: E402
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402
from schemathesis.generation import GenerationMode  # noqa: E402

from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

SPEC = ROOT / "docs" / "openapi" / "intake.yaml"
KEY_HEADER = "Referral-Integration-API-Key"
DOCUMENTED = {200, 400, 401, 405, 413, 415, 429, 503}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]

SETUP = (
    "from harbour.clinics.models import Clinic, ClinicDomain, OceanSettings; "
    "c = Clinic.objects.create(name='Fuzz'); ClinicDomain.objects.create(clinic=c, domain='fuzz.example.org'); "
    "o = OceanSettings.objects.create(clinic=c, site_number='1234'); k = o.generate_inbound_key(); o.save(); print(k)"
)
QUEUE = (
    "import json; from django.db.models import Count; from harbour.intake.models import InboundMessage as M; "
    "print(json.dumps(dict(M.objects.values_list('state').annotate(n=Count('id')).values_list('state', 'n'))))"
)


def fuzz(base_url: str, key: str, seconds: float) -> tuple[collections.Counter, list[str]]:
    schema = schemathesis.openapi.from_path(SPEC)
    strategies = [result.ok().as_strategy(generation_mode=mode) for result in schema.get_all_operations()
                  for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)]
    statuses: collections.Counter = collections.Counter()
    problems: list[str] = []
    session = requests.Session()
    deadline = time.monotonic() + seconds

    # Rounds of 50 examples (a fresh hypothesis run each), the deadline checked between them: an
    # example that stopped drawing at the deadline would make hypothesis report flaky generation.
    @settings(max_examples=50, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def one(data):
        case = data.draw(st.one_of(strategies))
        headers = dict(case.headers or {})
        if data.draw(st.booleans()):
            headers[KEY_HEADER] = key
        case.headers = headers
        try:
            response = case.call(base_url=base_url, session=session, timeout=30)
        except Exception as exc:  # noqa: BLE001 - a request the client could not send (e.g. an illegal header)
            statuses[f"not sent: {type(exc).__name__}"] += 1
            return
        statuses[response.status_code] += 1
        try:
            assert response.status_code in DOCUMENTED, f"undocumented status {response.status_code}"
            case.validate_response(response, checks=CHECKS)
        except Exception as exc:  # noqa: BLE001 - counted and printed, the run goes on
            problems.append(f"{case.method} -> {response.status_code}: {str(exc).splitlines()[0][:200]}")

    try:
        while time.monotonic() < deadline:
            one()
    finally:
        session.close()
    return statuses, problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--url", help="a running Harbour (default: start one)")
    parser.add_argument("--key", help="that Harbour's inbound key")
    args = parser.parse_args()

    server = None
    if args.url:
        base_url, key = args.url.rstrip("/"), args.key or ""
    else:
        from tests.servers import start_harbour

        var_dir = Path(tempfile.mkdtemp(prefix="harbour-fuzz-"))
        server = start_harbour(var_dir, env={"DJANGO_SETTINGS_MODULE": "bench.fuzz_settings"})
        base_url, key = server.base_url, server.shell(SETUP).strip().splitlines()[-1]
    try:
        started = time.monotonic()
        statuses, problems = fuzz(base_url, key, args.seconds)
        elapsed = time.monotonic() - started
        total = sum(statuses.values())
        print(f"requests: {total} in {elapsed:.1f} s ({total / elapsed:.1f}/s)")
        for status, count in sorted(statuses.items(), key=str):
            print(f"  {status}: {count}")
        print(f"problems (500s, undocumented or non-conforming answers): {len(problems)}")
        for line in problems[:50]:
            print("  " + line)
        if server is not None:
            time.sleep(2)  # the worker's last batch
            print("stored messages by state:", server.shell(QUEUE).strip().splitlines()[-1])
        return 1 if problems else 0
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
