"""The inbound key is compared in constant time, on fixed-length digests, and never as raw text.

The endpoint hashes the raw key (SHA-256, 64 hex characters) before anything else touches it:
the database is searched by that hash, and the hash found is compared again with
hmac.compare_digest. So a wrong key's length or first characters change nothing an attacker
can time. These tests record what reaches compare_digest and the database, and scan the code
for a plain `==` on a key. Rate-limit additions to tests/intake/test_ratelimit.py are at the end.
"""
import ast
import hashlib
import hmac
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from harbour.clinics import models as clinic_models
from harbour.intake import lookup, views
from harbour.intake.models import InboundMessage, RejectedCaller
from tests.conftest import make_clinic
from tests.intake.intake_client import REAL_BUNDLE, give_key, ocean, post

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def key(clinic):
    return give_key(clinic)


@pytest.fixture
def compare_calls(monkeypatch):
    calls = []
    real = hmac.compare_digest

    def recording(a, b):
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", recording)
    return calls


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_right_key_is_compared_as_two_64_character_digests(clinic, key, compare_calls):
    assert post(REAL_BUNDLE, key).status_code == 200
    assert compare_calls == [(sha256(key), sha256(key))]


@pytest.mark.parametrize("make_wrong", [
    lambda key: key[:-1] + ("A" if key[-1] != "A" else "B"),  # same length, last character differs
    lambda key: ("A" if key[0] != "A" else "B") + key[1:],  # same length, first character differs
    lambda key: key[:8],  # a prefix of the right key
    lambda key: key + "x" * 300,  # much longer
    lambda key: "é" * 5,  # not ASCII
], ids=["last-char", "first-char", "prefix", "longer", "unicode"])
def test_wrong_keys_reach_the_database_only_as_a_digest(clinic, key, compare_calls, make_wrong):
    wrong = make_wrong(key)
    with CaptureQueriesContext(connection) as queries:
        response = post(REAL_BUNDLE, wrong, REMOTE_ADDR="192.0.2.50")
    assert response.status_code == 401
    sql = " ".join(q["sql"] for q in queries.captured_queries)
    # The raw key (wrong or right) is in no statement; the wrong key's digest is what was looked up.
    assert wrong not in sql and key not in sql and wrong[:8] not in sql
    assert sha256(wrong) in sql
    # Every comparison that ran was between two digests of the same fixed length.
    assert all(len(a) == len(b) == 64 for a, b in compare_calls)
    assert InboundMessage.objects.count() == 0


def test_raw_key_is_hashed_once_and_only_the_hash_is_used(clinic, key, monkeypatch):
    seen = []
    real = views.hash_inbound_key

    def recording(raw):
        seen.append(raw)
        return real(raw)

    monkeypatch.setattr(views, "hash_inbound_key", recording)
    looked_up = []
    real_owner = lookup.key_owner
    monkeypatch.setattr(lookup, "key_owner", lambda key_hash, *args: looked_up.append(key_hash) or real_owner(key_hash, *args))
    assert post(REAL_BUNDLE, key).status_code == 200
    assert seen == [key]
    assert looked_up == [sha256(key)]


def test_settings_key_check_compares_digests_whatever_the_length(clinic, key, compare_calls):
    row = ocean(clinic)
    assert row.inbound_key_matches(key)
    assert not row.inbound_key_matches(key[:-1])
    assert not row.inbound_key_matches(key + "tail")
    assert not row.inbound_key_matches("")
    assert [(len(a), len(b)) for a, b in compare_calls] == [(64, 64)] * 3
    assert compare_calls[0] == (row.inbound_key_hash, sha256(key))


def test_stored_hash_is_the_only_form_of_the_key(clinic, key):
    row = ocean(clinic)
    assert row.inbound_key_hash == sha256(key)
    values = [str(v) for v in clinic_models.OceanSettings.objects.filter(pk=row.pk).values().get().values()]
    assert not any(key in value for value in values)


KEY_WORDS = ("key", "secret", "token", "hash", "digest")
CHECKED_FILES = ["harbour/intake/views.py", "harbour/intake/lookup.py", "harbour/intake/store.py", "harbour/clinics/models.py",
                 "harbour/clinics/inbound.py", "harbour/ocean/tokens.py"]


def _names(node) -> set[str]:
    return {n.id.lower() for n in ast.walk(node) if isinstance(n, ast.Name)} | {
        n.attr.lower() for n in ast.walk(node) if isinstance(n, ast.Attribute)}


def plain_secret_comparisons(source: str, filename: str) -> list[str]:
    """`==`/`!=` between two non-literal values whose names look secret (key, hash, token...)."""
    found = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if not isinstance(node, ast.Compare) or not any(isinstance(op, (ast.Eq, ast.NotEq)) for op in node.ops):
            continue
        operands = [node.left, *node.comparators]
        if len(operands) != 2 or any(isinstance(o, ast.Constant) for o in operands):
            continue  # against a literal (None, "", a code): no secret on both sides
        if any(word in name for name in _names(node) for word in KEY_WORDS):
            found.append(f"{filename}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_the_scan_finds_a_plain_comparison():
    assert plain_secret_comparisons("ok = found.key_hash == key_hash\nx = a == 'b'\n", "x.py") == [
        "x.py:1: found.key_hash == key_hash"]


def test_no_plain_equality_on_keys_or_their_hashes():
    """A `==` between two secrets returns at the first different byte: compare_digest does not."""
    offenders = []
    for relative in CHECKED_FILES:
        offenders += plain_secret_comparisons((ROOT / relative).read_text(), relative)
    assert not offenders, "compare secrets with hmac.compare_digest:\n" + "\n".join(offenders)


# --- Rate limiting: what tests/intake/test_ratelimit.py does not cover --------------------------

ATTACKER = "203.0.113.99"


@pytest.fixture
def limits(settings):
    settings.HARBOUR_INTAKE_FAILURE_LIMIT = 3
    settings.HARBOUR_INTAKE_FAILURE_WINDOW = 300
    settings.HARBOUR_INTAKE_BLOCK_SECONDS = 120
    return settings


def test_guesses_while_blocked_do_not_extend_the_block_or_count(clinic, key, limits):
    for _ in range(3):
        post(REAL_BUNDLE, "guess", REMOTE_ADDR=ATTACKER)
    row = RejectedCaller.objects.get(address=f"{ATTACKER} soleil.example.org")
    for guess in ("guess", key[:-1] + "x", ""):
        assert post(REAL_BUNDLE, guess or None, REMOTE_ADDR=ATTACKER).status_code == 429
    again = RejectedCaller.objects.get(address=f"{ATTACKER} soleil.example.org")
    assert (again.failures, again.blocked_until) == (row.failures, row.blocked_until)
    assert ocean(clinic).rejected_count == 3


def test_one_clinics_wrong_key_does_not_block_another_clinics_deliveries_from_the_same_address(
        clinic, key, other_clinic, limits):
    """Ocean delivers every clinic's messages from the same few addresses: an integration with a
    mistyped key (retried for 96 hours) blocks its own host only. Failures count per caller and
    host (ratelimit's docstring says why that is safe with 256-bit keys)."""
    lune_key = give_key(other_clinic)
    for _ in range(3):
        assert post(REAL_BUNDLE, "mistyped", REMOTE_ADDR=ATTACKER, host="lune.example.org").status_code == 401
    assert post(REAL_BUNDLE, lune_key, REMOTE_ADDR=ATTACKER, host="lune.example.org").status_code == 429
    assert post(REAL_BUNDLE, key, REMOTE_ADDR=ATTACKER, host="soleil.example.org").status_code == 200
    assert RejectedCaller.objects.get(address=f"{ATTACKER} lune.example.org").blocked_until > timezone.now()
    assert not RejectedCaller.objects.filter(address=f"{ATTACKER} soleil.example.org").exists()


def test_missing_key_counts_as_a_failure(clinic, key, limits):
    for _ in range(3):
        assert post(REAL_BUNDLE, None, REMOTE_ADDR=ATTACKER).status_code == 401
    assert post(REAL_BUNDLE, key, REMOTE_ADDR=ATTACKER).status_code == 429


def test_ipv4_mapped_ipv6_and_plain_ipv4_share_one_budget(clinic, key, limits):
    post(REAL_BUNDLE, "guess", REMOTE_ADDR=ATTACKER)
    post(REAL_BUNDLE, "guess", REMOTE_ADDR=f"::ffff:{ATTACKER}")
    post(REAL_BUNDLE, "guess", REMOTE_ADDR=ATTACKER)
    assert post(REAL_BUNDLE, key, REMOTE_ADDR=f"::ffff:{ATTACKER}").status_code == 429


def test_a_clinic_blocked_attacker_does_not_block_another_clinics_ocean(db, limits):
    soleil = make_clinic("Clinique Soleil", "soleil.example.org")
    lune = make_clinic("Clinique Lune", "lune.example.org")
    give_key(soleil)
    lune_key = give_key(lune)
    for _ in range(3):
        post(REAL_BUNDLE, "guess", REMOTE_ADDR=ATTACKER)
    assert post(REAL_BUNDLE, lune_key, REMOTE_ADDR="198.51.100.7", host="lune.example.org").status_code == 200
