"""The banner that tells the clinic its messages wait for a stopped worker (harbour.ocean.context)."""
from datetime import timedelta
from html import unescape

import pytest
from django.utils import timezone

from harbour.core.models import WorkerHeartbeat
from harbour.intake.models import InboundMessage
from harbour.ocean.context import processing_waits
from tests.ocean.conftest import make_referral

PAGE = "/referrals/"


def page(client, language="fr") -> str:
    return unescape(client.get(PAGE, HTTP_ACCEPT_LANGUAGE=language).content.decode())


def waiting(clinic, n=0, minutes=10):
    message = InboundMessage.objects.create(clinic=clinic, raw=b"{}", sha256=f"{n:064d}", bundle_id=f"b-{n}",
                                            event_code="add-service-request")
    InboundMessage.objects.filter(pk=message.pk).update(received_at=timezone.now() - timedelta(minutes=minutes))
    return message


def beat(minutes_ago: float):
    now = timezone.now()
    WorkerHeartbeat.objects.create(name=f"w:{minutes_ago}", hostname="w", pid=1, started_at=now - timedelta(hours=1),
                                   beat_at=now - timedelta(minutes=minutes_ago))


def test_staff_are_told_in_french_and_english_when_messages_wait_for_a_stopped_worker(staff_client, clinic):
    beat(minutes_ago=30)
    waiting(clinic, 1)
    waiting(clinic, 2)
    text = page(staff_client)
    assert 'id="processing-waits"' in text
    assert "Le service de traitement de Harbour (harbour worker) ne fonctionne plus depuis le" in text
    assert "2 messages reçus d'Ocean attendent d'être lus\u00a0: leurs demandes" in text
    assert "Rien n'est perdu" in text
    english = page(staff_client, "en")
    assert "has not run since" in english and "2 messages received from Ocean are waiting" in english


def test_never_started_worker_and_waiting_updates(staff_client, clinic):
    from harbour.ocean.models import OutboundMessage

    referral = make_referral(clinic, snapshot=False)
    sent = OutboundMessage.objects.create(clinic=clinic, referral=referral, kind="accept", event_code="x", bundle={})
    OutboundMessage.objects.filter(pk=sent.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    text = page(staff_client)
    assert "ne fonctionne pas." in text and "1 mise à jour attend d'être envoyée à Ocean" in text
    assert "attendent d'être lus" not in text
    # A failed one due for its retry waits too; one whose retry is later, or delivered, does not.
    OutboundMessage.objects.filter(pk=sent.pk).update(state="failed", next_attempt_at=timezone.now() - timedelta(minutes=3))
    assert processing_waits(clinic)["outbound"] == 1
    OutboundMessage.objects.filter(pk=sent.pk).update(next_attempt_at=timezone.now() + timedelta(minutes=3))
    assert processing_waits(clinic) is None
    OutboundMessage.objects.filter(pk=sent.pk).update(state="delivered")
    assert processing_waits(clinic) is None


@pytest.mark.parametrize("case", ["worker alive", "nothing waits", "just received", "another clinic's"])
def test_no_banner_when_nothing_waits_for_a_stopped_worker(staff_client, clinic, other_admin, case):
    if case == "worker alive":
        beat(minutes_ago=0.5)
        waiting(clinic)
    elif case == "just received":
        waiting(clinic, minutes=0)
    elif case == "another clinic's":
        waiting(other_admin.clinic)
    assert processing_waits(clinic) is None
    assert 'id="processing-waits"' not in page(staff_client)


def test_processed_messages_do_not_count(clinic):
    beat(minutes_ago=30)
    message = waiting(clinic)
    assert processing_waits(clinic)["received"] == 1
    InboundMessage.objects.filter(pk=message.pk).update(state="processed")
    assert processing_waits(clinic) is None


def test_signed_out_visitors_see_nothing(client, clinic):
    waiting(clinic)
    response = client.get("/accounts/login/", HTTP_HOST="soleil.example.org")
    assert 'id="processing-waits"' not in response.content.decode()
