"""Staff pages and actions: the panel, permissions, tenant isolation, double submits, both languages."""
from datetime import date

import pytest
from django.contrib.auth.models import AnonymousUser
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.urls import reverse
from django.utils import translation

from harbour.audit.models import AuditEntry
from harbour.patients.matching import match_referral, review_token
from harbour.patients.models import ChartReviewItem, LinkState, PatientChart, ReferralPatientLink
from harbour.referrals.models import Direction
from tests.conftest import client_for
from tests.patients.conftest import make_chart, make_referral

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def english(staff_client):
    """Pages are French by default; most tests read the English text (French ones say so)."""
    staff_client.cookies["django_language"] = "en"


def render_panel(referral, user, language="en"):
    request = RequestFactory().get("/", HTTP_HOST="soleil.example.org")
    request.user = user or AnonymousUser()
    with translation.override(language):
        return render_to_string("patients/referral_panel.html", {"referral": referral}, request=request)


def referral_url(referral):
    return reverse("referrals:detail", args=[referral.pk])


# --- the panel -----------------------------------------------------------------------------

def test_panel_offers_candidates_with_masked_card_and_the_create_button(referral_factory, chart_factory, staff_user):
    chart = chart_factory(hcn="9876543210")
    chart_factory(given="Autre", hcn="9876543299", birth_date=date(1970, 1, 1))
    referral = referral_factory(patient_hcn="")
    match_referral(referral)
    html = render_panel(referral, staff_user)
    assert "Waiting for a person" in html and "The referral has no health card number" in html
    assert "•••••••210" in html and "9876543210" not in html
    assert html.count("Link to this chart") == 1  # the other chart has another birth date: not suggested
    assert f'name="chart" value="{chart.pk}"' in html
    assert "Create a chart from this referral" in html and "1980-02-29" in html
    french = render_panel(referral, staff_user, "fr")
    assert "Lier à ce dossier" in french and "Créer un dossier à partir de cette consultation" in french


def test_panel_shows_the_link_and_open_review_items(referral_factory, chart_factory, staff_user):
    chart = chart_factory(given="Elise", hcn_version="ZZ")
    referral = referral_factory()
    match_referral(referral)
    html = render_panel(referral, staff_user)
    assert chart.chart_number in html and "Linked automatically" in html
    assert "Differences to review" in html and "Link to this chart" not in html
    assert html.count('/accept/') == 2 and html.count('/ignore/') == 2
    assert "the card was reissued" in html and "Élise" in html
    assert html.count("Update the chart<span") == 2 and ">Accept<" not in html
    french = render_panel(referral, staff_user, "fr")
    assert french.count("Mettre à jour le dossier<span") == 2 and "Accepter" not in french


def test_panel_offers_a_sent_copys_chart_number_first_for_a_person_to_confirm(referral_factory, chart_factory, staff_user):
    # The chart number names a chart of another family name: a candidate for a person, not a link.
    other = chart_factory(family="Person", given="Other", hcn="", birth_date=None)
    referral = referral_factory(Direction.SENT, patient_mrn=other.chart_number, patient_hcn="", patient_family="DKTest")
    match_referral(referral)
    html = render_panel(referral, staff_user)
    assert "Waiting for a person" in html and "Linked automatically" not in html
    assert "Chart number sent with the referral: check the name and birth date before linking" in html
    assert f'name="chart" value="{other.pk}"' in html
    french = render_panel(referral, staff_user, "fr")
    assert "vérifiez le nom et la date de naissance avant de lier" in french


def test_panel_before_any_matching(referral_factory, staff_user):
    html = render_panel(referral_factory(), staff_user)
    assert "Not matched yet." in html and "No chart matches this patient." in html


# --- actions -------------------------------------------------------------------------------

def test_link_redirects_to_the_referral_and_a_double_submit_has_one_effect(staff_client, referral_factory, chart_factory):
    referral = referral_factory(patient_hcn="")
    chart = chart_factory()
    url = reverse("patients:link", args=[referral.pk])
    first = staff_client.post(url, {"chart": chart.pk})
    second = staff_client.post(url, {"chart": chart.pk})
    assert first.status_code == second.status_code == 302 and first["Location"] == referral_url(referral)
    link = ReferralPatientLink.objects.get(referral=referral)
    assert (link.chart, link.state) == (chart, LinkState.LINKED_BY_PERSON)
    assert AuditEntry.objects.filter(action="patients.link.person").count() == 1


def test_link_by_typed_chart_number(staff_client, referral_factory, chart_factory):
    referral = referral_factory()
    chart = chart_factory(family="Autre")
    url = reverse("patients:link", args=[referral.pk])
    response = staff_client.post(url, {"chart_number": "H999999"}, follow=True)
    assert "No chart has this chart number." in response.content.decode()
    assert not ReferralPatientLink.objects.exists()
    staff_client.post(url, {"chart_number": f" {chart.chart_number} "})
    assert ReferralPatientLink.objects.get(referral=referral).chart == chart


@pytest.mark.parametrize("data", [{}, {"chart": "abc"}, {"chart": "-3"}, {"chart_number": "   "}, {"chart_number": "x" * 101}])
def test_bad_link_input_gets_a_clear_answer(staff_client, referral_factory, data):
    referral = referral_factory()
    response = staff_client.post(reverse("patients:link", args=[referral.pk]), data, follow=True)
    assert response.status_code == 200
    assert "Choose a chart, or type its chart number." in response.content.decode()
    assert not ReferralPatientLink.objects.exists()


def test_bad_link_input_in_french(staff_client, referral_factory):
    referral = referral_factory()
    staff_client.cookies["django_language"] = "fr"
    response = staff_client.post(reverse("patients:link", args=[referral.pk]), {}, follow=True)
    assert "Choisissez un dossier ou saisissez son numéro de dossier." in response.content.decode()


def test_linking_a_referral_already_linked_elsewhere_is_refused(staff_client, referral_factory, chart_factory):
    chart = chart_factory()
    other = chart_factory(family="Autre", hcn="1111111111")
    referral = referral_factory()
    match_referral(referral)
    response = staff_client.post(reverse("patients:link", args=[referral.pk]), {"chart": other.pk}, follow=True)
    assert "already linked to another chart" in response.content.decode()
    assert ReferralPatientLink.objects.get(referral=referral).chart == chart


def test_create_twice_makes_one_chart(staff_client, referral_factory):
    referral = referral_factory()
    url = reverse("patients:create_chart", args=[referral.pk])
    assert staff_client.post(url)["Location"] == referral_url(referral)
    response = staff_client.post(url, follow=True)
    assert "no chart was created" in response.content.decode()
    assert PatientChart.objects.count() == 1
    assert ReferralPatientLink.objects.get(referral=referral).chart.family == "Tremblay"


def test_unlink_then_link_another(staff_client, referral_factory, chart_factory):
    chart_factory()
    other = chart_factory(family="Autre", hcn="")  # nothing contradicts: one click
    referral = referral_factory()
    match_referral(referral)
    staff_client.post(reverse("patients:unlink", args=[referral.pk]))
    staff_client.post(reverse("patients:unlink", args=[referral.pk]))
    assert AuditEntry.objects.filter(action="patients.link.unlinked").count() == 1
    staff_client.post(reverse("patients:link", args=[referral.pk]), {"chart": other.pk})
    assert ReferralPatientLink.objects.get(referral=referral).chart == other


def test_accept_and_ignore_review_items(staff_client, referral_factory, chart_factory):
    chart = chart_factory(given="Elise", hcn_version="ZZ")
    referral = referral_factory()
    match_referral(referral)
    version = ChartReviewItem.objects.get(field="hcn_version")
    given = ChartReviewItem.objects.get(field="given")
    confirm = {"confirm": review_token(version, chart)}
    response = staff_client.post(reverse("patients:accept_review", args=[version.pk]), confirm)
    assert response["Location"] == referral_url(referral)
    staff_client.post(reverse("patients:accept_review", args=[version.pk]), confirm)  # double submit
    back = staff_client.post(reverse("patients:ignore_review", args=[given.pk]), {"back": "chart"})
    assert back["Location"] == reverse("patients:chart", args=[chart.pk])
    again = staff_client.post(reverse("patients:accept_review", args=[given.pk]), follow=True)
    assert "This difference was already decided." in again.content.decode()
    chart.refresh_from_db()
    assert (chart.given, chart.hcn_version) == ("Elise", "AB")
    assert AuditEntry.objects.filter(action="patients.review.accepted").count() == 1


def test_actions_refuse_get(staff_client, referral_factory):
    referral = referral_factory()
    assert staff_client.get(reverse("patients:create_chart", args=[referral.pk])).status_code == 405
    assert not PatientChart.objects.exists()


# --- chart pages ---------------------------------------------------------------------------

def test_chart_list_search_by_name_or_card(staff_client, clinic, other_clinic, chart_factory):
    chart_factory(family="Côté", given="Marie", hcn="1112223334")
    chart_factory(family="Tremblay", given="Élise", hcn="5556667778")
    make_chart(other_clinic, family="Côté", given="Lune", hcn="1112223334")
    url = reverse("patients:charts")
    page = staff_client.get(url).content.decode()
    assert "Côté" in page and "Tremblay" in page and "Lune" not in page
    assert "1112223334" not in page and "•••••••334" in page
    by_name = staff_client.get(url, {"q": "cote marie"}).content.decode()
    assert "Côté" in by_name and "Tremblay" not in by_name
    by_card = staff_client.get(url, {"q": "555-666"}).content.decode()
    assert "Tremblay" in by_card and "Côté" not in by_card
    nothing = staff_client.get(url, {"q": "zzz"}).content.decode()
    assert "No chart matches this search." in nothing
    assert staff_client.get(url, {"q": "x" * 500}).status_code == 200


def test_chart_page_lists_its_referrals_and_review_items(staff_client, referral_factory, chart_factory):
    chart = chart_factory(given="Elise")
    referral = referral_factory(category_display="Back pain")
    match_referral(referral)
    page = staff_client.get(reverse("patients:chart", args=[chart.pk])).content.decode()
    assert "Back pain" in page and referral_url(referral) in page and "1234567890" in page
    assert "Differences to review" in page and 'name="back" value="chart"' in page
    staff_client.cookies["django_language"] = "fr"
    french = staff_client.get(reverse("patients:chart", args=[chart.pk])).content.decode()
    assert "Numéro de dossier" in french and "Différences à vérifier" in french


# --- access --------------------------------------------------------------------------------

def test_anonymous_is_sent_to_login(client, referral_factory, chart_factory):
    referral, chart = referral_factory(), chart_factory()
    for response in (
        client.get(reverse("patients:charts"), HTTP_HOST="soleil.example.org"),
        client.get(reverse("patients:chart", args=[chart.pk]), HTTP_HOST="soleil.example.org"),
        client.post(reverse("patients:create_chart", args=[referral.pk]), HTTP_HOST="soleil.example.org"),
    ):
        assert response.status_code == 302 and "login" in response["Location"]
    assert PatientChart.objects.count() == 1


def test_staff_of_another_clinic_on_this_host_is_refused(other_admin, referral_factory):
    referral = referral_factory()
    intruder = client_for(other_admin, "soleil.example.org")
    assert intruder.get(reverse("patients:charts")).status_code == 403
    assert intruder.post(reverse("patients:create_chart", args=[referral.pk])).status_code == 403
    assert not PatientChart.objects.exists()


def test_another_clinics_ids_are_404(other_admin, other_clinic, referral_factory, chart_factory, staff_client):
    chart = chart_factory(given="Elise")
    referral = referral_factory()
    match_referral(referral)
    item = ChartReviewItem.objects.get()
    other = client_for(other_admin, "lune.example.org")
    assert other.get(reverse("patients:chart", args=[chart.pk])).status_code == 404
    assert other.post(reverse("patients:link", args=[referral.pk]), {"chart": chart.pk}).status_code == 404
    assert other.post(reverse("patients:create_chart", args=[referral.pk])).status_code == 404
    assert other.post(reverse("patients:unlink", args=[referral.pk])).status_code == 404
    assert other.post(reverse("patients:accept_review", args=[item.pk])).status_code == 404
    assert other.post(reverse("patients:ignore_review", args=[item.pk])).status_code == 404
    assert "Tremblay" not in other.get(reverse("patients:charts")).content.decode()
    # Our referral with their chart: 404 too.
    theirs = make_chart(other_clinic, family="Lune")
    mine = referral_factory(patient_hcn="")
    assert staff_client.post(reverse("patients:link", args=[mine.pk]), {"chart": theirs.pk}).status_code == 404
    item.refresh_from_db()
    assert item.state == "open" and ReferralPatientLink.objects.get(referral=referral).chart == chart
    assert not ReferralPatientLink.objects.filter(referral=mine).exists()
