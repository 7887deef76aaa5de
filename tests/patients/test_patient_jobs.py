"""The worker job: new referrals get matched, changed snapshots get checked again, nothing twice."""
from datetime import date

import pytest

from harbour.core.worker import run_until_idle
from harbour.patients.jobs import match_new_referrals
from harbour.patients.models import ChartReviewItem, LinkReason, LinkState, ReferralPatientLink
from harbour.referrals.models import Direction, Referral
from tests.patients.conftest import make_chart
from tests.referrals import bundles as B

pytestmark = pytest.mark.django_db


def test_the_worker_matches_received_and_sent_but_not_unknown(referral_factory, chart_factory):
    chart = chart_factory()
    received = referral_factory()
    sent = referral_factory(Direction.SENT, patient_mrn=chart.chart_number)
    unknown = referral_factory(Direction.UNKNOWN)
    assert run_until_idle() >= 2
    assert ReferralPatientLink.objects.get(referral=received).chart == chart
    sent_link = ReferralPatientLink.objects.get(referral=sent)
    assert (sent_link.chart, sent_link.reason) == (chart, LinkReason.MRN)
    assert not ReferralPatientLink.objects.filter(referral=unknown).exists()


def test_the_job_is_idempotent_and_bounded(referral_factory, chart_factory):
    chart_factory()
    for _ in range(5):
        referral_factory()
    assert match_new_referrals(limit=2) == 2
    assert ReferralPatientLink.objects.count() == 2
    run_until_idle()
    assert ReferralPatientLink.objects.count() == 5
    assert match_new_referrals() == 0  # nothing left, nothing redone


def test_an_unrelated_change_is_checked_cheaply_and_only_once(referral_factory, chart_factory):
    chart_factory(family="Tremblay-Roy")
    referral = referral_factory()
    run_until_idle()
    referral.status = "accepted"
    referral.save()
    assert match_new_referrals() == 1
    assert match_new_referrals() == 0
    assert ChartReviewItem.objects.filter(referral=referral).count() == 1


def test_a_demographic_update_raises_a_new_review_item(referral_factory, chart_factory):
    chart = chart_factory()
    referral = referral_factory()
    run_until_idle()
    assert not ChartReviewItem.objects.exists()
    Referral.objects.filter(pk=referral.pk).update(patient_family="Gagnon")  # keeps updated_at: not seen
    referral.refresh_from_db()
    referral.save()  # a notify-update saves the referral (updated_at moves)
    run_until_idle()
    item = ChartReviewItem.objects.get(referral=referral)
    assert (item.chart, item.field, item.referral_value) == (chart, "family", "Gagnon")
    chart.refresh_from_db()
    assert chart.family == "Tremblay"


def test_links_made_by_a_person_are_not_redone(referral_factory, chart_factory, staff_user):
    from harbour.patients import matching

    referral = referral_factory(patient_hcn="")
    chart = chart_factory()
    matching.link(referral, chart, staff_user)
    assert match_new_referrals() == 0


def test_through_intake_a_later_update_brings_the_card_and_links(clinic, site):
    """The real payload has no health card value: the referral waits. The update carries the
    card and birth date, the job looks again, links, and asks about what differs."""
    chart = make_chart(clinic, family="DKTest", given="Dana", birth_date=date(1980, 2, 29),
                       hcn="1234567890", hcn_version="AA")
    B.store(clinic, B.load())
    run_until_idle()
    referral = Referral.objects.get(clinic=clinic)
    link = ReferralPatientLink.objects.get(referral=referral)
    assert (link.chart_id, link.reason) == (None, LinkReason.NO_HCN)

    B.store(clinic, B.variant(B.FULL, timestamp="2025-06-03T09:15:00-04:00"))
    run_until_idle()
    link.refresh_from_db()
    assert (link.chart_id, link.state, link.reason) == (chart.pk, LinkState.AUTO_LINKED, LinkReason.HCN_BIRTH_DATE)
    items = {i.field: i.referral_value for i in ChartReviewItem.objects.filter(referral=referral, state="open")}
    assert items == {"given": "Dana K", "hcn_version": "AB"}
    chart.refresh_from_db()
    assert (chart.given, chart.hcn_version, chart.phone) == ("Dana", "AA", "416-555-0100")  # blank phone filled

    corrected = B.variant(B.FULL, timestamp="2025-06-04T09:15:00-04:00")
    B.resources(corrected, "Patient")[0]["name"][0]["family"] = "DKCorrected"
    B.store(clinic, corrected)
    run_until_idle()
    items = {i.field: i.referral_value for i in ChartReviewItem.objects.filter(referral=referral, state="open")}
    assert items == {"given": "Dana K", "hcn_version": "AB", "family": "DKCorrected"}
    assert ReferralPatientLink.objects.count() == 1


def test_a_chart_created_for_one_referral_links_the_patients_other_waiting_referral(referral_factory, staff_user):
    from harbour.patients import matching

    first, second = referral_factory(), referral_factory()
    other_patient = referral_factory(patient_hcn="5555555555")
    run_until_idle()
    assert not ReferralPatientLink.objects.exclude(chart=None).exists()
    link, _ = matching.create_chart_from_referral(first, staff_user)
    run_until_idle()
    second_link = ReferralPatientLink.objects.get(referral=second)
    assert (second_link.chart_id, second_link.state) == (link.chart_id, LinkState.AUTO_LINKED)
    assert ReferralPatientLink.objects.get(referral=other_patient).chart_id is None
