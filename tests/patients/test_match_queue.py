"""The matcher's queue: a pass reads a batch of queue entries, never every referral or link."""
from django.db import connection
from django.test.utils import CaptureQueriesContext

import pytest

from harbour.core.worker import run_until_idle
from harbour.patients.jobs import match_new_referrals
from harbour.patients.models import MatchQueue, ReferralPatientLink
from harbour.referrals.models import Direction

pytestmark = pytest.mark.django_db


def test_an_idle_pass_is_one_query_whatever_the_number_of_referrals(referral_factory, chart_factory):
    chart_factory()
    for _ in range(30):
        referral_factory()
    assert MatchQueue.objects.count() == 30
    run_until_idle()
    assert ReferralPatientLink.objects.count() == 30
    assert not MatchQueue.objects.exists()

    with CaptureQueriesContext(connection) as queries:
        assert match_new_referrals() == 0
    assert len(queries) == 1
    assert "patients_matchqueue" in queries[0]["sql"]


def test_only_saves_that_touch_what_the_match_reads_queue_the_referral(referral_factory):
    referral = referral_factory()
    run_until_idle()
    referral.status = "accepted"
    referral.save(update_fields=["status", "updated_at"])  # how processing saves: changed fields only
    assert not MatchQueue.objects.exists()
    referral.patient_family = "Gagnon"
    referral.save(update_fields=["patient_family", "updated_at"])
    assert list(MatchQueue.objects.values_list("referral_id", flat=True)) == [referral.pk]


def test_unknown_direction_waits_until_staff_sets_it(referral_factory):
    referral = referral_factory(Direction.UNKNOWN)
    assert not MatchQueue.objects.exists()
    referral.direction = Direction.RECEIVED
    referral.save(update_fields=["direction", "updated_at"])
    assert match_new_referrals() == 1
    assert ReferralPatientLink.objects.filter(referral=referral).exists()


def test_an_entry_queued_again_while_it_was_handled_stays(referral_factory, monkeypatch):
    from harbour.patients import jobs

    referral = referral_factory()
    real = jobs.match_referral

    def match_then_change(target):
        link = real(target)
        referral.refresh_from_db()
        referral.patient_given = "Élise Marie"
        referral.save()  # a newer notify-update arrives meanwhile
        return link

    monkeypatch.setattr(jobs, "match_referral", match_then_change)
    assert match_new_referrals() == 1
    assert MatchQueue.objects.filter(referral=referral).exists()
    monkeypatch.setattr(jobs, "match_referral", real)
    assert match_new_referrals() == 1
    assert not MatchQueue.objects.exists()


def test_a_failed_match_stays_queued(referral_factory, monkeypatch):
    from harbour.patients import jobs

    referral = referral_factory()
    monkeypatch.setattr(jobs, "match_referral", lambda target: 1 / 0)
    assert match_new_referrals() == 0
    assert MatchQueue.objects.filter(referral=referral).exists()
