"""Patient safety on the referral page: a chart whose identity disagrees with the referral's
patient is never linked in one click, and a referral's identifier never overwrites a chart
without a person confirming the values shown (server side, so it holds without JavaScript)."""
import re
from datetime import date

import pytest
from django.urls import reverse

from harbour.audit.models import AuditEntry
from harbour.patients import matching
from harbour.patients.models import ChartReviewItem, PatientChart, ReferralPatientLink

pytestmark = pytest.mark.django_db

# The reviewer's case: referral for Anh Nguyen, chart H000001 is Émilie Roy; every identifier differs.
ANH = dict(patient_family="Nguyen", patient_given="Anh", patient_sex="male", patient_birth_date=date(2001, 1, 20),
           patient_hcn="9998887776", patient_hcn_version="XY")
EMILIE = dict(family="Roy", given="Émilie", sex="female", birth_date=date(1990, 9, 30), hcn="9876543210",
              hcn_version="AB")


@pytest.fixture(autouse=True)
def english(staff_client):
    staff_client.cookies["django_language"] = "en"


def link_url(referral):
    return reverse("patients:link", args=[referral.pk])


def accept_url(item):
    return reverse("patients:accept_review", args=[item.pk])


def hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no hidden {name} in the page"
    return found.group(1)


def chart_of(referral):
    link = ReferralPatientLink.objects.filter(referral=referral).first()
    return link.chart if link else None


# --- the rule --------------------------------------------------------------------------------

@pytest.mark.parametrize("chart_fields, conflicts", [
    ({}, []),  # everything agrees
    ({"hcn": ""}, []),  # the chart has no card: nothing contradicts
    ({"birth_date": date(1980, 3, 1)}, []),  # a birth date typo alone: a review item, not a warning
    ({"family": "Gagnon"}, []),  # a new family name alone (marriage): a review item
    ({"family": "TREMBLÂY"}, []),  # names compare folded
    ({"hcn": "1111111111"}, ["hcn"]),  # another card: another person
    ({"hcn": "", "family": "Gagnon", "birth_date": date(1980, 3, 1)}, ["birth_date", "family"]),
    ({"hcn": "1111111111", "family": "Gagnon", "birth_date": date(1980, 3, 1)}, ["hcn", "birth_date", "family"]),
    ({"hcn": "", "family": "", "birth_date": date(1980, 3, 1)}, []),  # an unknown side never disagrees
])
def test_identity_conflicts(referral_factory, chart_factory, chart_fields, conflicts):
    assert matching.identity_conflicts(referral_factory(), chart_factory(**chart_fields)) == conflicts


# --- linking ---------------------------------------------------------------------------------

def test_typed_chart_number_of_another_patient_is_not_linked_without_confirmation(staff_client, referral_factory, chart_factory):
    chart = chart_factory(**EMILIE)
    referral = referral_factory(**ANH)
    response = staff_client.post(link_url(referral), {"chart_number": chart.chart_number})
    html = response.content.decode()
    assert response.status_code == 200
    assert "Link to this chart anyway?" in html and "The health card numbers differ." in html
    assert "The birth date and the family name both differ." in html
    assert "9876543210" in html and "9998887776" in html and "Roy" in html and "Nguyen" in html
    assert hidden(html, "chart") == str(chart.pk) and hidden(html, "confirm")
    assert chart_of(referral) is None
    assert not ReferralPatientLink.objects.exists() and not ChartReviewItem.objects.exists()
    assert not AuditEntry.objects.filter(action__startswith="patients.link").exists()


def test_suggested_chart_with_another_card_asks_too(staff_client, referral_factory, chart_factory):
    """Same family name and birth date (a twin?) but another card: the suggestion's button asks."""
    twin = chart_factory(given="Marie", hcn="1111111111")
    referral = referral_factory(patient_hcn="1234567890")
    assert [c.chart for c in matching.candidates(referral)] == [twin]
    response = staff_client.post(link_url(referral), {"chart": twin.pk})
    assert response.status_code == 200 and "The health card numbers differ." in response.content.decode()
    assert chart_of(referral) is None


def test_confirmed_link_works_and_audits_field_codes_only(staff_client, referral_factory, chart_factory):
    chart = chart_factory(**EMILIE)
    referral = referral_factory(**ANH)
    page = staff_client.post(link_url(referral), {"chart_number": chart.chart_number}).content.decode()
    confirm = {"chart": hidden(page, "chart"), "confirm": hidden(page, "confirm")}
    response = staff_client.post(link_url(referral), confirm, follow=True)
    assert response.redirect_chain[-1][0] == reverse("referrals:detail", args=[referral.pk])
    assert f"The referral is linked to chart {chart.chart_number}." in response.content.decode()
    assert chart_of(referral) == chart
    entry = AuditEntry.objects.get(action="patients.link.person")
    assert entry.details["chart"] == chart.pk and entry.details["confirmed_conflicts"] == ["hcn", "birth_date", "family"]
    chart.refresh_from_db()
    assert (chart.family, chart.hcn, chart.birth_date) == ("Roy", "9876543210", date(1990, 9, 30))


@pytest.mark.parametrize("token", ["", "0" * 32, "x" * 500])
def test_a_wrong_confirmation_links_nothing(staff_client, referral_factory, chart_factory, token):
    chart = chart_factory(**EMILIE)
    referral = referral_factory(**ANH)
    response = staff_client.post(link_url(referral), {"chart": chart.pk, "confirm": token})
    assert response.status_code == 200 and "Link to this chart anyway?" in response.content.decode()
    assert chart_of(referral) is None


def test_a_confirmation_covers_only_the_values_shown(staff_client, referral_factory, chart_factory):
    chart = chart_factory(**EMILIE)
    referral = referral_factory(**ANH)
    page = staff_client.post(link_url(referral), {"chart": chart.pk}).content.decode()
    PatientChart.objects.filter(pk=chart.pk).update(hcn="5555555555")  # changed while the page was open
    again = staff_client.post(link_url(referral), {"chart": chart.pk, "confirm": hidden(page, "confirm")})
    assert again.status_code == 200 and "5555555555" in again.content.decode()
    assert chart_of(referral) is None


@pytest.mark.parametrize("chart_fields", [{}, {"hcn": ""}, {"birth_date": date(1980, 3, 1)}, {"family": "Gagnon"}])
def test_a_chart_that_does_not_contradict_links_in_one_click(staff_client, referral_factory, chart_factory, chart_fields):
    chart = chart_factory(**chart_fields)
    referral = referral_factory()
    response = staff_client.post(link_url(referral), {"chart_number": chart.chart_number})
    assert response.status_code == 302 and chart_of(referral) == chart
    assert "confirmed_conflicts" not in AuditEntry.objects.get(action="patients.link.person").details


def test_the_warning_page_in_french(staff_client, referral_factory, chart_factory):
    chart = chart_factory(**EMILIE)
    referral = referral_factory(**ANH)
    staff_client.cookies["django_language"] = "fr"
    html = staff_client.post(link_url(referral), {"chart_number": chart.chart_number}).content.decode()
    assert "Lier quand même à ce dossier?" in html and "Les numéros de carte santé diffèrent." in html
    assert f"J'ai vérifié : lier quand même au dossier {chart.chart_number}" in html
    assert "Annuler, ne pas lier" in html


# --- copying a referral's identifier into the chart -----------------------------------------

@pytest.fixture
def wrong_link(person_link):
    """The reviewer's case after the (confirmed) link: the referral offers its card to Émilie's chart."""
    return person_link(EMILIE, ANH)


@pytest.fixture
def person_link(staff_client, referral_factory, chart_factory):
    """A chart linked by a person, through the pages (confirming the warning when there is one)."""
    def make(chart_fields, referral_fields):
        chart, referral = chart_factory(**chart_fields), referral_factory(**referral_fields)
        response = staff_client.post(link_url(referral), {"chart": chart.pk})
        if response.status_code == 200:
            staff_client.post(link_url(referral), {"chart": chart.pk, "confirm": hidden(response.content.decode(), "confirm")})
        assert chart_of(referral) == chart
        return chart, referral
    return make


def confirm_update(client, item, **data):
    """Ask to update the chart, then confirm on the page that asks (its token)."""
    page = client.post(accept_url(item), data)
    assert page.status_code == 200, "no confirmation was asked"
    return client.post(accept_url(item), {**data, "confirm": hidden(page.content.decode(), "confirm")})


def test_overwriting_the_card_without_confirmation_is_refused(staff_client, wrong_link):
    chart, referral = wrong_link
    item = ChartReviewItem.objects.get(referral=referral, field="hcn")
    response = staff_client.post(accept_url(item))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Update the chart?" in html and "The chart already has another health card number." in html
    assert "Replace the chart's health card number" in html
    assert "9876543210" in html and "9998887776" in html
    chart.refresh_from_db()
    item.refresh_from_db()
    assert chart.hcn == "9876543210" and item.state == "open"
    assert not AuditEntry.objects.filter(action="patients.review.accepted").exists()


def test_overwriting_the_card_with_confirmation_is_applied_once(staff_client, wrong_link):
    chart, referral = wrong_link
    item = ChartReviewItem.objects.get(referral=referral, field="hcn")
    page = staff_client.post(accept_url(item)).content.decode()
    confirm = {"confirm": hidden(page, "confirm")}
    assert staff_client.post(accept_url(item), confirm)["Location"] == reverse("referrals:detail", args=[referral.pk])
    again = staff_client.post(accept_url(item), confirm, follow=True)  # double submit
    assert "This difference was already decided." in again.content.decode()
    chart.refresh_from_db()
    assert (chart.hcn, chart.hcn_version) == ("9998887776", "XY")
    entry = AuditEntry.objects.get(action="patients.review.accepted")
    assert entry.details["confirmed"] is True and entry.details["replaced"] is True
    assert entry.details["fields"] == ["hcn", "hcn_version"]


def test_an_overlong_confirmation_is_no_confirmation(staff_client, wrong_link):
    chart, referral = wrong_link
    item = ChartReviewItem.objects.get(referral=referral, field="hcn")
    response = staff_client.post(accept_url(item), {"confirm": "x" * 500, "back": "chart"})
    assert response.status_code == 200 and 'name="back" value="chart"' in response.content.decode()
    chart.refresh_from_db()
    assert chart.hcn == "9876543210"


def test_a_stale_confirmation_is_asked_again(staff_client, wrong_link):
    chart, referral = wrong_link
    item = ChartReviewItem.objects.get(referral=referral, field="birth_date")
    token = matching.review_token(item, chart)
    PatientChart.objects.filter(pk=chart.pk).update(birth_date=date(1990, 10, 1))  # someone corrected it meanwhile
    response = staff_client.post(accept_url(item), {"confirm": token})
    assert response.status_code == 200 and "1990-10-01" in response.content.decode()
    chart.refresh_from_db()
    assert chart.birth_date == date(1990, 10, 1)


@pytest.mark.parametrize("field", ["family", "given", "sex", "birth_date", "hcn_version"])
def test_every_identifier_needs_confirmation(staff_client, person_link, field):
    chart, referral = person_link({"family": "Tremblay-Roy", "given": "Elise", "sex": "other",
                                   "birth_date": date(1980, 3, 1), "hcn_version": "ZZ"}, {})
    item = ChartReviewItem.objects.get(referral=referral, field=field)
    before = (chart.family, chart.given, chart.sex, chart.birth_date, chart.hcn_version)
    assert staff_client.post(accept_url(item)).status_code == 200
    chart.refresh_from_db()
    assert (chart.family, chart.given, chart.sex, chart.birth_date, chart.hcn_version) == before
    confirmed = confirm_update(staff_client, item, back="chart")
    assert confirmed["Location"] == reverse("patients:chart", args=[chart.pk])
    chart.refresh_from_db()
    assert str(getattr(chart, field)) == str(getattr(referral, f"patient_{field}"))


def test_contact_details_update_in_one_click(staff_client, person_link):
    chart, referral = person_link({"phone": "613-555-0199"}, {})
    item = ChartReviewItem.objects.get(referral=referral, field="phone")
    assert staff_client.post(accept_url(item))["Location"] == reverse("referrals:detail", args=[referral.pk])
    chart.refresh_from_db()
    assert chart.phone == "416-555-0100"


def test_the_buttons_say_what_they_do(staff_client, wrong_link):
    chart, referral = wrong_link
    page = staff_client.get(reverse("referrals:detail", args=[referral.pk])).content.decode()
    panel = page[page.index('id="patient-chart"'):]
    panel = panel[:panel.index("</section>")]
    assert panel.count("Update the chart<span") == ChartReviewItem.objects.filter(referral=referral, state="open").count()
    assert ">Accept<" not in panel
    hcn = ChartReviewItem.objects.get(referral=referral, field="hcn")
    hcn_form = re.search(rf'<form[^>]*/review/{hcn.pk}/accept/.*?</form>', panel, re.S).group(0)
    # Another card number: always the server's page, never a browser prompt one can click through.
    assert "data-confirm" not in hcn_form and "data-confirmed-value" not in hcn_form and 'class="danger"' in hcn_form
    birth = ChartReviewItem.objects.get(referral=referral, field="birth_date")
    birth_form = re.search(rf'<form[^>]*/review/{birth.pk}/accept/.*?</form>', panel, re.S).group(0)
    assert 'data-confirm="Birth date: replace 1990-09-30 with 2001-01-20 in the chart?"' in birth_form
    assert f'data-confirmed-value="{matching.review_token(birth, chart)}"' in birth_form
    assert 'name="confirm" value=""' in birth_form  # empty until the person confirms
    staff_client.cookies["django_language"] = "fr"
    french = staff_client.get(reverse("referrals:detail", args=[referral.pk])).content.decode()
    assert "Mettre à jour le dossier<span" in french and "Accepter<span" not in french
    assert "Date de naissance : remplacer 1990-09-30 par 2001-01-20 dans le dossier?" in french


def test_the_update_page_in_french(staff_client, wrong_link):
    _chart, referral = wrong_link
    item = ChartReviewItem.objects.get(referral=referral, field="hcn")
    staff_client.cookies["django_language"] = "fr"
    html = staff_client.post(accept_url(item)).content.decode()
    assert "Mettre à jour le dossier?" in html and "Le dossier a déjà un autre numéro de carte santé." in html
    assert "Remplacer le numéro de carte santé du dossier" in html


def test_audit_entries_carry_ids_and_codes_only(staff_client, referral_factory, chart_factory):
    chart = chart_factory(**EMILIE)
    referral = referral_factory(**ANH)
    page = staff_client.post(link_url(referral), {"chart_number": chart.chart_number}).content.decode()
    staff_client.post(link_url(referral), {"chart": chart.pk, "confirm": hidden(page, "confirm")})
    for item in ChartReviewItem.objects.filter(referral=referral, state="open"):
        confirm_update(staff_client, item)
    chart.refresh_from_db()
    assert chart.hcn == "9998887776"  # the actions happened
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"patients.link.person", "patients.review.raised", "patients.review.accepted"} <= actions
    text = " ".join(f"{e.target} {e.details}" for e in AuditEntry.objects.all()).lower()
    for value in ("nguyen", "anh", "roy", "milie", "9998887776", "9876543210", "776", "2001", "1990",
                  "male", "'xy'", "'ab'", chart.chart_number.lower()):
        assert value not in text, value
