"""Matching rules: when a referral links itself to a chart, what it suggests, and that it never
overwrites a chart's protected fields."""
from datetime import date

import pytest

from harbour.audit.models import AuditEntry
from harbour.patients import matching
from harbour.patients.matching import Candidate
from harbour.patients.models import ChartReviewItem, LinkReason, LinkState, PatientChart, ReferralPatientLink
from harbour.referrals.models import Direction
from tests.conftest import make_user
from tests.patients.conftest import PATIENT, make_chart

pytestmark = pytest.mark.django_db


@pytest.fixture
def person(clinic):
    return make_user(clinic, "nurse-soleil")


def confirmed_link(referral, chart, person):
    """A person's link confirmed on the warning page (the token of the values it showed)."""
    return matching.link(referral, chart, person, confirmed=matching.link_token(referral, chart))


def confirmed_accept(item, person):
    """« Update the chart » confirmed for the values the page showed."""
    item = ChartReviewItem.objects.get(pk=item.pk)
    return matching.accept_review(item, person, confirmed=matching.review_token(item, PatientChart.objects.get(pk=item.chart_id)))


def open_fields(referral):
    return sorted(ChartReviewItem.objects.filter(referral=referral, state="open").values_list("field", flat=True))


# --- automatic link ------------------------------------------------------------------------

def test_exactly_one_chart_with_the_hcn_and_birth_date_links_automatically(clinic, referral_factory, chart_factory):
    chart = chart_factory(hcn="1234 567 890")  # stored as digits
    chart_factory(hcn="1111111111")  # another patient
    referral = referral_factory(patient_hcn="1234567890")
    link = matching.match_referral(referral)
    assert (link.chart_id, link.state, link.reason) == (chart.pk, LinkState.AUTO_LINKED, LinkReason.HCN_BIRTH_DATE)
    assert link.decided_by is None and link.checked_at == referral.updated_at
    entry = AuditEntry.objects.get(action="patients.link.auto")
    assert entry.target == f"referral:{referral.pk}" and entry.details == {"chart": chart.pk, "reason": "hcn_birth_date"}


def test_two_charts_with_the_same_hcn_and_birth_date_wait_for_a_person(referral_factory, chart_factory):
    chart_factory()
    chart_factory(family="Tremblay-Roy")
    link = matching.match_referral(referral_factory())
    assert (link.chart_id, link.state, link.reason) == (None, LinkState.WAITING, LinkReason.SEVERAL_MATCHES)
    assert [c.kind for c in matching.candidates(link.referral)] == [Candidate.STRONG, Candidate.STRONG]


def test_no_hcn_never_links_even_when_name_and_birth_date_match(referral_factory, chart_factory):
    chart = chart_factory()
    link = matching.match_referral(referral_factory(patient_hcn=""))
    assert (link.chart_id, link.state, link.reason) == (None, LinkState.WAITING, LinkReason.NO_HCN)
    assert [(c.chart, c.kind) for c in matching.candidates(link.referral)] == [(chart, Candidate.WEAK)]


def test_hcn_with_another_birth_date_does_not_link(referral_factory, chart_factory):
    chart = chart_factory(birth_date=date(1980, 3, 1))
    link = matching.match_referral(referral_factory())
    assert (link.chart_id, link.state, link.reason) == (None, LinkState.WAITING, LinkReason.NO_MATCH)
    assert [(c.chart, c.kind) for c in matching.candidates(link.referral)] == [(chart, Candidate.HCN_ONLY)]


def test_no_birth_date_does_not_link(referral_factory, chart_factory):
    chart_factory()
    link = matching.match_referral(referral_factory(patient_birth_date=None))
    assert (link.chart_id, link.reason) == (None, LinkReason.NO_BIRTH_DATE)


def test_nothing_to_suggest_is_its_own_state(referral_factory, chart_factory):
    chart_factory(family="Autre", hcn="9999999999")
    link = matching.match_referral(referral_factory())
    assert (link.chart_id, link.state, link.reason) == (None, LinkState.NO_CANDIDATES, LinkReason.NO_MATCH)


def test_another_clinics_chart_is_never_matched_nor_suggested(referral_factory, other_clinic):
    make_chart(other_clinic)
    link = matching.match_referral(referral_factory())
    assert link.chart_id is None and matching.candidates(link.referral) == []


def test_matching_again_changes_nothing(referral_factory, chart_factory):
    chart_factory(family="Tremblay-Roy")
    referral = referral_factory()
    first = matching.match_referral(referral)
    second = matching.match_referral(referral)
    assert first.pk == second.pk and ReferralPatientLink.objects.count() == 1
    assert open_fields(referral) == ["family"]
    assert AuditEntry.objects.filter(action="patients.review.raised").count() == 1


def test_a_waiting_referral_links_once_its_chart_exists(referral_factory, chart_factory):
    referral = referral_factory()
    assert matching.match_referral(referral).chart_id is None
    chart = chart_factory()
    assert matching.match_referral(referral).chart_id == chart.pk


# --- candidates ----------------------------------------------------------------------------

def test_candidates_strong_then_weak_then_hcn_only(referral_factory, chart_factory):
    hcn_only = chart_factory(family="Aaron", birth_date=date(1990, 1, 1))
    weak = chart_factory(family="TRÉMBLAY", given="Lise", hcn="5555555555")  # accents and case ignored
    strong = chart_factory(family="Zed")
    chart_factory(family="Tremblay", birth_date=date(1979, 1, 1), hcn="7777777777")  # no reason to suggest
    found = matching.candidates(referral_factory())
    assert [(c.chart, c.kind) for c in found] == [
        (strong, Candidate.STRONG), (weak, Candidate.WEAK), (hcn_only, Candidate.HCN_ONLY),
    ]


def test_a_chart_is_suggested_once_under_its_surest_reason(referral_factory, chart_factory):
    chart = chart_factory()  # strong, and also weak (same name) and same card
    assert [(c.chart, c.kind) for c in matching.candidates(referral_factory())] == [(chart, Candidate.STRONG)]


def test_candidates_are_capped(referral_factory, chart_factory):
    for n in range(12):
        chart_factory(given=f"Twin {n}", hcn=f"{n:010d}")
    assert len(matching.candidates(referral_factory(patient_hcn=""))) == matching.MAX_CANDIDATES


# --- a person links or creates -------------------------------------------------------------

def test_create_chart_from_referral_prefills_and_links(referral_factory, person):
    referral = referral_factory(patient_hcn="1234-567-890", patient_hcn_version="ab")
    link, created = matching.create_chart_from_referral(referral, person)
    chart = link.chart
    assert created and (link.state, link.reason) == (LinkState.LINKED_BY_PERSON, LinkReason.CREATED_FROM_REFERRAL)
    assert (chart.family, chart.given, chart.sex, chart.birth_date, chart.hcn, chart.hcn_version) == (
        "Tremblay", "Élise", "female", date(1980, 2, 29), "1234567890", "AB")
    assert (chart.phone, chart.email, chart.address) == (
        PATIENT["patient_phone"], PATIENT["patient_email"], PATIENT["patient_address"])
    assert chart.chart_number == "H000001" and chart.created_by == person and link.decided_by == person
    assert open_fields(referral) == []


def test_creating_twice_creates_one_chart(referral_factory, person):
    referral = referral_factory()
    first, created = matching.create_chart_from_referral(referral, person)
    second, again = matching.create_chart_from_referral(referral, person)
    assert created and not again and first.chart_id == second.chart_id
    assert PatientChart.objects.count() == 1


def test_chart_numbers_are_sequential_per_clinic_and_skip_taken_ones(clinic, other_clinic, chart_factory):
    assert chart_factory().chart_number == "H000001"
    chart_factory(chart_number="H000002")  # typed by a person, no sequence
    assert chart_factory().chart_number == "H000003"
    assert make_chart(other_clinic).chart_number == "H000001"


def test_an_invalid_sex_code_is_not_copied_but_offered(referral_factory, person):
    referral = referral_factory(patient_sex="F")
    link, _ = matching.create_chart_from_referral(referral, person)
    assert link.chart.sex == "" and open_fields(referral) == ["sex"]


def test_link_by_a_person_then_another_chart_is_refused(referral_factory, chart_factory, person):
    referral = referral_factory(patient_hcn="")
    chart, other = chart_factory(), chart_factory(family="Other")
    link, changed = matching.link(referral, chart, person)
    assert changed and (link.state, link.reason, link.decided_by) == (LinkState.LINKED_BY_PERSON, LinkReason.MANUAL, person)
    assert matching.link(referral, chart, person)[1] is False  # double submit: one effect
    with pytest.raises(matching.AlreadyLinked):
        matching.link(referral, other, person)
    assert ReferralPatientLink.objects.get(referral=referral).chart == chart


def test_link_refuses_a_chart_of_another_clinic(referral_factory, other_clinic, person):
    with pytest.raises(ValueError):
        matching.link(referral_factory(), make_chart(other_clinic), person)


def test_after_unlink_the_matcher_never_links_on_its_own(referral_factory, chart_factory, person):
    chart_factory(given="Elise")  # strong match with a difference to review
    referral = referral_factory()
    assert matching.match_referral(referral).state == LinkState.AUTO_LINKED and open_fields(referral) == ["given"]
    link, changed = matching.unlink(referral, person)
    assert changed and link.chart_id is None and link.reason == LinkReason.UNLINKED
    assert open_fields(referral) == []  # they compared the wrong patient
    assert matching.match_referral(referral).chart_id is None


# --- protected fields, version code, other demographics ------------------------------------

def test_protected_fields_are_never_overwritten_and_become_review_items(referral_factory, chart_factory):
    chart = chart_factory(family="TREMBLAY", given="Elise", sex="")  # case alone is no difference
    referral = referral_factory()
    assert matching.match_referral(referral).chart_id == chart.pk
    chart.refresh_from_db()
    assert (chart.family, chart.given, chart.sex) == ("TREMBLAY", "Elise", "")
    items = {i.field: i for i in ChartReviewItem.objects.filter(referral=referral)}
    assert sorted(items) == ["given", "sex"]
    assert (items["given"].chart_value, items["given"].referral_value) == ("Elise", "Élise")
    assert (items["sex"].chart_value, items["sex"].referral_value) == ("", "female")


def test_person_link_with_another_birth_date_and_card_raises_items_not_changes(referral_factory, chart_factory, person):
    chart = chart_factory(birth_date=date(1981, 1, 1), hcn="2222222222", hcn_version="ZZ")
    referral = referral_factory()
    confirmed_link(referral, chart, person)
    chart.refresh_from_db()
    assert (chart.birth_date, chart.hcn, chart.hcn_version) == (date(1981, 1, 1), "2222222222", "ZZ")
    # The version code belongs to the card: no separate question while the card differs.
    assert open_fields(referral) == ["birth_date", "hcn"]


def test_accepting_a_new_card_takes_its_version_code(referral_factory, chart_factory, person):
    chart = chart_factory(hcn="2222222222", hcn_version="ZZ", birth_date=date(1980, 2, 29))
    referral = referral_factory(patient_hcn="1234567890", patient_hcn_version="AB")
    confirmed_link(referral, chart, person)
    item = ChartReviewItem.objects.get(referral=referral, field="hcn")
    confirmed_accept(item, person)
    chart.refresh_from_db()
    assert (chart.hcn, chart.hcn_version) == ("1234567890", "AB") and open_fields(referral) == []


def test_new_version_code_is_offered_and_accepted(referral_factory, chart_factory, person):
    chart = chart_factory(hcn_version="AB")
    referral = referral_factory(patient_hcn_version="CD")
    matching.match_referral(referral)
    item = ChartReviewItem.objects.get(referral=referral)
    assert (item.field, item.chart_value, item.referral_value, item.is_version_update) == ("hcn_version", "AB", "CD", True)
    chart.refresh_from_db()
    assert chart.hcn_version == "AB"  # offered, not applied
    item, changed = confirmed_accept(item, person)
    chart.refresh_from_db()
    assert changed and chart.hcn_version == "CD" and item.state == "accepted" and item.decided_by == person
    assert matching.accept_review(item, person)[1] is False  # double submit: decided, nothing asked
    assert AuditEntry.objects.filter(action="patients.review.accepted").count() == 1


def test_accepted_birth_date_is_a_date(referral_factory, chart_factory, person):
    chart = chart_factory(birth_date=date(1981, 1, 1))
    referral = referral_factory()
    matching.link(referral, chart, person)
    confirmed_accept(ChartReviewItem.objects.get(referral=referral, field="birth_date"), person)
    chart.refresh_from_db()
    assert chart.birth_date == date(1980, 2, 29)


def test_ignored_value_is_not_asked_again_but_a_new_one_is(referral_factory, chart_factory, person):
    chart = chart_factory(family="Tremblay-Roy")
    referral = referral_factory()
    matching.match_referral(referral)
    item = ChartReviewItem.objects.get(referral=referral)
    matching.ignore_review(item, person)
    chart.refresh_from_db()
    assert chart.family == "Tremblay-Roy"
    matching.match_referral(referral)
    assert open_fields(referral) == []
    referral.patient_family = "Roy"
    referral.save()
    matching.match_referral(referral)
    assert open_fields(referral) == ["family"]
    assert ChartReviewItem.objects.get(referral=referral, state="open").referral_value == "Roy"


def test_an_open_item_follows_the_referrals_latest_value(referral_factory, chart_factory):
    chart_factory(family="Tremblay-Roy")
    referral = referral_factory()
    matching.match_referral(referral)
    referral.patient_family = "Roy"
    referral.save()
    matching.match_referral(referral)
    assert list(ChartReviewItem.objects.filter(referral=referral).values_list("state", "referral_value")) == [("open", "Roy")]
    referral.patient_family = "Tremblay-Roy"  # the difference is gone: the question goes
    referral.save()
    matching.match_referral(referral)
    assert not ChartReviewItem.objects.filter(referral=referral).exists()


def test_blank_contact_fields_are_filled_other_differences_reviewed(referral_factory, chart_factory):
    chart = chart_factory(phone="", email="old@example.org", address="")
    referral = referral_factory(patient_phone="(416) 555-0100")
    matching.match_referral(referral)
    chart.refresh_from_db()
    assert (chart.phone, chart.email, chart.address) == ("(416) 555-0100", "old@example.org", PATIENT["patient_address"])
    assert open_fields(referral) == ["email"]
    assert AuditEntry.objects.get(action="patients.chart.filled").details["fields"] == ["phone", "address"]


def test_same_phone_written_differently_is_no_difference(referral_factory, chart_factory):
    chart_factory(phone="416 555 0100", email="ELISE@example.org")
    referral = referral_factory()
    matching.match_referral(referral)
    assert open_fields(referral) == []


def test_blank_referral_values_never_blank_the_chart(referral_factory, chart_factory):
    chart = chart_factory(phone="416", email="e@example.org")
    referral = referral_factory(patient_given="", patient_sex="", patient_phone="", patient_email="", patient_hcn_version="")
    matching.match_referral(referral)
    chart.refresh_from_db()
    assert (chart.given, chart.phone, chart.hcn_version) == ("Élise", "416", "AB") and open_fields(referral) == []


# --- sent copies ---------------------------------------------------------------------------

def test_sent_copy_links_by_the_chart_number_it_carries(referral_factory, chart_factory):
    # Issue #5: a sent copy links through the clinic's own chart number, here without a health card
    # number (§5.6 would wait for one): the chart agrees with the referral on what both know.
    chart = chart_factory(hcn="")
    chart_factory(family="Other")  # same HCN and birth date as the usual referral, but this one has no HCN
    referral = referral_factory(Direction.SENT, patient_mrn=f" {chart.chart_number} ", patient_hcn="")
    link = matching.match_referral(referral)
    assert (link.chart_id, link.state, link.reason) == (chart.pk, LinkState.AUTO_LINKED, LinkReason.MRN)
    assert matching.candidates(referral)[0] == Candidate(chart, Candidate.MRN)


def test_sent_copy_chart_number_of_another_person_is_never_linked_automatically(referral_factory, chart_factory):
    """A reviewer's case: no HCN, and the chart number names someone else (another family name)."""
    other = chart_factory(family="Person", given="Other", hcn="", birth_date=None)
    referral = referral_factory(Direction.SENT, patient_mrn=other.chart_number, patient_hcn="", patient_family="DKTest")
    link = matching.match_referral(referral)
    assert (link.chart_id, link.state, link.reason) == (None, LinkState.WAITING, LinkReason.MRN_CONFLICT)
    assert matching.candidates(referral)[0] == Candidate(other, Candidate.MRN)  # staff see it first


def test_sent_copy_whose_chart_number_names_a_chart_with_another_card_waits(referral_factory, chart_factory):
    by_mrn = chart_factory(hcn="2222222222")
    chart_factory()  # the referral's HCN and birth date
    referral = referral_factory(Direction.SENT, patient_mrn=by_mrn.chart_number)
    link = matching.match_referral(referral)
    assert (link.chart_id, link.state, link.reason) == (None, LinkState.WAITING, LinkReason.MRN_CONFLICT)


def test_sent_copy_whose_chart_number_and_hcn_name_different_charts_waits(referral_factory, chart_factory):
    by_mrn = chart_factory(hcn="")  # agrees as far as it knows, but another chart is the strong match
    by_hcn = chart_factory()
    referral = referral_factory(Direction.SENT, patient_mrn=by_mrn.chart_number)
    link = matching.match_referral(referral)
    assert (link.chart_id, link.state, link.reason) == (None, LinkState.WAITING, LinkReason.MRN_OTHER_CHART)
    assert matching.candidates(referral)[:2] == [Candidate(by_mrn, Candidate.MRN), Candidate(by_hcn, Candidate.STRONG)]


def test_sent_copy_whose_chart_number_has_another_birth_date_waits(referral_factory, chart_factory):
    chart = chart_factory(birth_date=date(1950, 5, 5), hcn="3333333333")
    chart_factory()  # would match by HCN and birth date, but the MRN contradiction needs a person
    referral = referral_factory(Direction.SENT, patient_mrn=chart.chart_number)
    link = matching.match_referral(referral)
    assert (link.chart_id, link.reason) == (None, LinkReason.MRN_CONFLICT)


def test_sent_copy_without_a_known_chart_number_uses_hcn_and_birth_date(referral_factory, chart_factory):
    chart = chart_factory()
    link = matching.match_referral(referral_factory(Direction.SENT, patient_mrn="EXT-99"))
    assert (link.chart_id, link.reason) == (chart.pk, LinkReason.HCN_BIRTH_DATE)


def test_received_referral_ignores_the_senders_chart_number(referral_factory, chart_factory):
    chart = chart_factory(hcn="", birth_date=None)
    link = matching.match_referral(referral_factory(patient_mrn=chart.chart_number, patient_hcn=""))
    assert link.chart_id is None


# --- audit ---------------------------------------------------------------------------------

def test_audit_entries_hold_no_patient_data(referral_factory, chart_factory, person):
    chart = chart_factory(family="Tremblay-Roy", hcn_version="ZZ", phone="")
    referral = referral_factory()
    matching.match_referral(referral)
    for item in ChartReviewItem.objects.filter(referral=referral):
        (confirmed_accept if item.field == "hcn_version" else matching.ignore_review)(item, person)
    matching.unlink(referral, person)
    other = referral_factory(patient_hcn="")
    matching.create_chart_from_referral(other, person)
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"patients.link.auto", "patients.review.raised", "patients.chart.filled", "patients.review.accepted",
            "patients.review.ignored", "patients.link.unlinked", "patients.chart.created", "patients.link.person"} <= actions
    text = " ".join(f"{e.target} {e.details}" for e in AuditEntry.objects.all()).lower()
    for value in ("tremblay", "lise", "1234567890", "567", "1980", "female", "elise@", "416", "main st",
                  chart.chart_number.lower(), "'ab'", "'zz'"):
        assert value not in text, value
