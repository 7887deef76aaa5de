"""Replies echo the latest snapshot's resources: whatever the reader accepted there (NaN, lone
surrogates, NUL, deep nesting, nulls) still gives a message that is queued, stored as strict JSON
and delivered, or a clear refusal; never a local success with nothing queued."""
import json
import random

import orjson
import pytest
from django.db import IntegrityError
from django.utils import timezone

from harbour.intake.models import InboundMessage
from harbour.ocean import actions, outbox
from harbour.ocean.actions import ActionNotAllowed
from harbour.ocean.models import OutboundMessage
from harbour.referrals.models import Event, Referral, StatusChange
from tests.ocean.conftest import BUNDLES, REF, make_referral

PLACEHOLDER = "__hostile__"


@pytest.fixture(autouse=True)
def _english():
    from django.utils import translation

    with translation.override("en"):
        yield


def snapshot_with(value_json: bytes, *, family: bytes | None = None) -> bytes:
    """The real payload whose Patient carries an extension holding `value_json` (raw JSON text)."""
    bundle = json.loads((BUNDLES / "add-service-request.back-pain.json").read_text())
    patient = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")
    patient["extension"] = [{"url": "http://example.org/fhir/hostile", "valueDecimal": PLACEHOLDER}]
    raw = orjson.dumps(bundle).replace(b'"' + PLACEHOLDER.encode() + b'"', value_json)
    if family is not None:
        raw = raw.replace(b'"family":"DKTest"', b'"family":"' + family + b'"')
    return raw


def referral_with_snapshot(clinic, raw: bytes):
    referral = make_referral(clinic, snapshot=False)
    InboundMessage.objects.create(clinic=clinic, raw=raw, sha256="y" * 64, bundle_id="b-hostile",
                                  event_code="add-service-request", referral_ref=REF, state="processed")
    return referral


def stored_text(message) -> str:
    """The bundle column as the database holds it (not through the field's decoder)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT CAST(bundle AS TEXT) FROM {OutboundMessage._meta.db_table} WHERE id = %s",
                       [message.pk])
        return cursor.fetchone()[0]


def strict(text: str | bytes):
    """Parse as strict JSON (RFC 8259): no NaN, no Infinity, valid UTF-8, no lone surrogates."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    else:
        text.encode("utf-8")
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))


def patient_of(bundle: dict) -> dict:
    return next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Patient")


def deep(depth: int) -> bytes:
    return b"[" * depth + b'"bottom"' + b"]" * depth


def deliver(http):
    return outbox.deliver_outbox(now=timezone.now(), rng=random.Random(1), http=http)


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
def test_accept_with_non_finite_number_in_snapshot_is_queued_and_delivered(
        clinic, ocean_settings, admin_user, fake_ocean, http, literal):
    referral = referral_with_snapshot(clinic, snapshot_with(literal))
    message = actions.accept(referral, admin_user, idempotency_key="k-1")
    assert isinstance(message, OutboundMessage)  # not None: something was really queued
    referral.refresh_from_db()
    assert referral.status == "accepted"
    assert OutboundMessage.objects.filter(referral=referral, kind="accept").count() == 1
    stored = strict(stored_text(message))
    # The null the reader made of it is dropped (FHIR JSON has no null); the extension's url alone stays.
    assert patient_of(stored)["extension"] == [{"url": "http://example.org/fhir/hostile"}]
    assert patient_of(stored)["name"][0]["family"] == "DKTest"  # the rest of the Patient is echoed
    assert deliver(http) == 1
    [post] = fake_ocean.calls("process")
    assert strict(post.body) == stored
    message.refresh_from_db()
    assert message.state == "delivered"


@pytest.mark.parametrize("depth", [300, 1000])
def test_accept_with_deeply_nested_extension_is_queued_and_delivered(
        clinic, ocean_settings, admin_user, fake_ocean, http, depth):
    referral = referral_with_snapshot(clinic, snapshot_with(b'{"deep": ' + deep(depth) + b"}"))
    message = actions.accept(referral, admin_user)
    stored_raw = stored_text(message)
    assert "[" * depth + '"bottom"' in stored_raw.replace(" ", "")
    message.refresh_from_db()  # read back through the field (deeper than the standard library reads)
    value = patient_of(message.bundle)["extension"][0]["valueDecimal"]["deep"]
    levels = 0
    while isinstance(value, list):
        value, levels = value[0], levels + 1
    assert (levels, value) == (depth, "bottom")
    assert deliver(http) == 1
    [post] = fake_ocean.calls("process")
    assert b"[" * depth + b'"bottom"' + b"]" * depth in post.body
    if depth <= 300:
        assert strict(post.body) == strict(stored_raw)  # the standard library reads 300 levels
    message.refresh_from_db()
    assert message.state == "delivered"


@pytest.mark.parametrize("family", [b"\\ud800Smith", b"Smi\\u0000th", b"\\udfff"])
def test_accept_with_surrogate_or_nul_in_snapshot_is_queued_and_delivered(
        clinic, ocean_settings, admin_user, fake_ocean, http, family):
    referral = referral_with_snapshot(clinic, snapshot_with(b"1.5", family=family))
    message = actions.accept(referral, admin_user)
    stored = strict(stored_text(message))
    assert "\ufffd" in patient_of(stored)["name"][0]["family"]
    assert deliver(http) == 1
    [post] = fake_ocean.calls("process")
    assert strict(post.body) == stored
    message.refresh_from_db()
    assert message.state == "delivered" and message.last_error == ""


def test_nulls_and_empty_values_in_snapshot_are_not_echoed(clinic, ocean_settings, admin_user):
    referral = referral_with_snapshot(clinic, snapshot_with(b'{"a": null, "b": [null, ""], "c": {}, "d": 2}'))
    message = actions.accept(referral, admin_user)
    assert patient_of(strict(stored_text(message)))["extension"][0]["valueDecimal"] == {"d": 2}


def test_a_bundle_that_cannot_be_sent_is_refused_with_nothing_changed(clinic, ocean_settings, admin_user,
                                                                       monkeypatch):
    referral = referral_with_snapshot(clinic, snapshot_with(b"1.5"))
    real = outbox.validate_outbound

    def refuse(bundle, **kwargs):
        real(bundle, **kwargs)
        raise outbox.OutboundInvalid(["Patient.id is malformed"])

    monkeypatch.setattr(outbox, "validate_outbound", refuse)
    with pytest.raises(ActionNotAllowed) as caught:
        actions.accept(referral, admin_user)
    assert "cannot be sent back to Ocean (Patient.id is malformed)" in str(caught.value.message)
    referral.refresh_from_db()
    assert referral.status == "new"
    assert not OutboundMessage.objects.exists() and not Event.objects.exists() and not StatusChange.objects.exists()


# --- An IntegrityError is a duplicate submit only when the duplicate exists ----------------------


@pytest.mark.parametrize("key", ["k-1", ""])
def test_integrity_error_that_is_no_duplicate_is_not_reported_as_success(
        referral, admin_user, monkeypatch, key):
    def broken(*args, **kwargs):
        raise IntegrityError("CHECK constraint failed: bundle")  # e.g. JSON_VALID on SQLite

    monkeypatch.setattr(OutboundMessage.objects, "create", broken)
    with pytest.raises(IntegrityError):
        actions.accept(referral, admin_user, idempotency_key=key)
    referral.refresh_from_db()
    assert referral.status == "new"  # the action's transaction was undone
    assert not OutboundMessage.objects.exists() and not StatusChange.objects.exists()


def test_racing_duplicate_submit_still_returns_the_first_message(referral, admin_user, monkeypatch):
    first = actions.accept(referral, admin_user, idempotency_key="same")
    # The racing submit did not see the first (it checked before the first committed), and the
    # referral still looks acceptable to it: the unique constraint catches it.
    Referral.objects.filter(pk=referral.pk).update(status="new")
    real_existing = actions._existing
    calls = []

    def not_yet(*args):
        calls.append(args)
        return None if len(calls) == 1 else real_existing(*args)

    monkeypatch.setattr(actions, "_existing", not_yet)
    again = actions.accept(referral, admin_user, idempotency_key="same")
    assert again.pk == first.pk
    assert OutboundMessage.objects.filter(referral=referral).count() == 1
    assert Referral.objects.get(pk=referral.pk).status == "new"  # the second submit changed nothing
