"""Fetching letters and attachments after intake: stored via the storage API, retried, host-checked."""
import random
from datetime import timedelta

import pytest
from django.core.files.storage import default_storage
from django.utils import timezone

from harbour.ocean import documents
from harbour.referrals.models import Attachment
from tests.ocean.conftest import REF, make_referral
from tests.ocean.fake_ocean import Reply, outcome


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def attachment(referral, fake_ocean, kind="letter", path=None, **fields):
    path = path or (f"/svc/fhir/v1/ServiceRequest/{REF}/$letter" if kind == "letter"
                    else "/svc/fhir/v1/DocumentReference/d1/$binary")
    url = fields.pop("url", fake_ocean.url + path)
    return Attachment.objects.create(referral=referral, kind=kind, key=url, url=url, title="Smith letter.pdf",
                                     **fields)


def fetch(http, now=None, seed=1):
    return documents.fetch_documents(now=now or timezone.now(), http=http, rng=random.Random(seed))


def test_letter_and_attachment_fetched_and_stored(referral, fake_ocean, http):
    letter = attachment(referral, fake_ocean)
    binary = attachment(referral, fake_ocean, kind="attachment")
    assert fetch(http) == 2
    letter.refresh_from_db()
    binary.refresh_from_db()
    assert letter.fetch_state == "fetched" and binary.fetch_state == "fetched"
    with default_storage.open(letter.file.name) as f:
        assert f.read() == fake_ocean.letter
    with default_storage.open(binary.file.name) as f:
        assert f.read() == fake_ocean.binary
    # Under the clinic's id, with a random name: never the title or the patient's name.
    assert letter.file.name.startswith(f"ocean/{referral.clinic_id}/") and letter.file.name.endswith(".pdf")
    assert "Smith" not in letter.file.name
    assert all(c.headers["authorization"].startswith("Bearer ") for c in fake_ocean.calls("letter"))
    assert fetch(http) == 0


def test_other_host_refused_without_token(referral, fake_ocean, http):
    row = attachment(referral, fake_ocean, url="https://files.example.net/svc/fhir/v1/DocumentReference/1/$binary")
    fetch(http)
    row.refresh_from_db()
    assert row.fetch_state == "failed" and "not on the configured Ocean server" in row.last_fetch_error
    assert row.next_fetch_at is None  # not retried by itself
    assert fake_ocean.requests == []


def test_failures_retried_then_given_up(referral, fake_ocean, http, settings):
    settings.HARBOUR_OCEAN_FETCH_MAX_ATTEMPTS = 2
    fake_ocean.queue("letter", Reply(503, outcome("busy")), Reply(503, outcome("busy")))
    row = attachment(referral, fake_ocean)
    now = timezone.now()
    fetch(http, now=now)
    row.refresh_from_db()
    assert row.fetch_state == "failed" and "503" in row.last_fetch_error and row.next_fetch_at > now
    fetch(http, now=row.next_fetch_at)
    row.refresh_from_db()
    assert row.fetch_state == "failed" and row.next_fetch_at is None and row.fetch_attempts == 2
    assert fetch(http, now=now + timedelta(days=3)) == 0
    # A person asks again: fetched.
    documents.request_fetch_again(row)
    assert row.fetch_state == "pending" and row.fetch_attempts == 0
    fetch(http)
    row.refresh_from_db()
    assert row.fetch_state == "fetched" and row.last_fetch_error == ""


def test_client_error_is_final(referral, fake_ocean, http):
    fake_ocean.queue("binary", Reply(403, outcome("forbidden")))
    row = attachment(referral, fake_ocean, kind="attachment")
    fetch(http)
    row.refresh_from_db()
    assert row.fetch_state == "failed" and row.next_fetch_at is None and "forbidden" in row.last_fetch_error


def test_only_received_and_sent_referrals(clinic, ocean_settings, fake_ocean, http):
    unknown = make_referral(clinic, direction="unknown")
    row = attachment(unknown, fake_ocean)
    assert fetch(http) == 0
    row.refresh_from_db()
    assert row.fetch_state == "pending"
    sent = make_referral(clinic, "0b0b0b0b-1111-2222-3333-444444444444", direction="sent", snapshot=False)
    attachment(sent, fake_ocean)
    assert fetch(http) == 1


def test_letter_with_attachments(referral, fake_ocean, http):
    row = documents.request_letter_with_attachments(referral)
    assert row.url.endswith(f"/ServiceRequest/{REF}/$letter?attachments=true")
    fetch(http)
    row.refresh_from_db()
    assert row.fetch_state == "fetched"
    assert fake_ocean.calls("letter")[0].path.endswith("$letter?attachments=true")
    again = documents.request_letter_with_attachments(referral)
    assert again.pk == row.pk and again.fetch_state == "pending"
