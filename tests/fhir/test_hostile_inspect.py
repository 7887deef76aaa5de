"""`harbour inspect FILE` prints JSON, never a traceback, for every body the reader accepts or refuses,
and inspect_bytes gives values any JSON writer can write."""
import json
from io import StringIO

import orjson
import pytest
from django.core.management import CommandError, call_command

from harbour.fhir.inspect import inspect_bytes
from tests.fhir.hostile import ACCEPTED, ODD_EVENTS, body, nested

REFUSED = {
    "deeper-than-1024": (body(extension=nested(1100)), "nested deeper than 1,024 levels"),
    "deep-lenient": (body(extension=b"[NaN, " + nested(1000) + b"]"), "levels deep"),
    "long-integer": (body(extension=b"NaN, \"n\": " + b"7" * 5000), "longer than 4,300 digits"),
}


def run(tmp_path, raw: bytes):
    path = tmp_path / "body.json"
    path.write_bytes(raw)
    out = StringIO()
    try:
        call_command("inspect", str(path), "--site-number", "1234", stdout=out)
        error = None
    except CommandError as exc:
        error = str(exc)
    return json.loads(out.getvalue()), error  # valid JSON on stdout either way


@pytest.mark.parametrize("name", sorted({**ACCEPTED, **ODD_EVENTS}))
def test_inspect_prints_json_for_accepted_hostile_bodies(tmp_path, name):
    raw = {**ACCEPTED, **ODD_EVENTS}[name]
    result, error = run(tmp_path, raw)
    assert error is None and result["accepted"] is True
    summary = inspect_bytes(raw, "1234")
    orjson.dumps(summary)  # no lone surrogate, no NaN, no integer beyond 64 bits, no deep nesting
    text = json.dumps(summary, ensure_ascii=False, allow_nan=False)
    assert "\x00" not in text
    if "family" in name or name == "surrogate-and-nan":
        assert "\ufffd" in result["patient"]["family"]
    if name in ODD_EVENTS:
        assert "\ufffd" in result["event_code"]
    if name == "huge-minutes":
        assert all(a["minutes_duration"] is None or a["minutes_duration"] < 2 ** 31 for a in result["appointments"])
        assert any("minutesDuration is out of range" in w for w in result["warnings"])


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_inspect_prints_json_and_the_reason_for_refused_bodies(tmp_path, name):
    raw, reason = REFUSED[name]
    result, error = run(tmp_path, raw)
    assert result["accepted"] is False and reason in result["error"]
    assert error and "would reject" in error and reason in error
    assert "line" not in result["error"]  # not the misleading "not valid JSON (line, column)"
