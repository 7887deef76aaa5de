import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tests.referrals.bundles import BUNDLES, REF


def test_inspect_the_real_fixture(capsys):
    out = StringIO()
    call_command("inspect", str(BUNDLES / "add-service-request.back-pain.json"), "--site-number", "1234", stdout=out)
    result = json.loads(out.getvalue())
    assert result["accepted"] is True
    assert result["referral_ref"] == REF and result["direction"] == "received"
    assert result["event"] == "add-service-request"


def test_inspect_garbage_and_missing_files(tmp_path):
    garbage = tmp_path / "garbage.json"
    garbage.write_bytes(b"\xff\xfe not json")
    out = StringIO()
    with pytest.raises(CommandError, match="would reject"):
        call_command("inspect", str(garbage), stdout=out)
    assert json.loads(out.getvalue())["accepted"] is False
    not_a_bundle = tmp_path / "object.json"
    not_a_bundle.write_text('{"resourceType": "Patient"}')
    with pytest.raises(CommandError, match="would reject"):
        call_command("inspect", str(not_a_bundle), stdout=StringIO())
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("inspect", str(tmp_path / "missing.json"))
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("inspect", str(tmp_path))


def test_inspect_applies_the_endpoints_size_limit(settings, tmp_path):
    settings.HARBOUR_MAX_BUNDLE_BYTES = 1000
    out = StringIO()
    with pytest.raises(CommandError, match="larger than the limit of 1000 bytes"):
        call_command("inspect", str(BUNDLES / "add-service-request.back-pain.json"), stdout=out)
    assert json.loads(out.getvalue())["accepted"] is False
