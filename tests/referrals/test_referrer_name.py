"""A referrer without a name but with an Ocean username: the name shows "—", the username its own row."""
import html

import pytest
from django.urls import reverse

from harbour.core.worker import run_until_idle
from harbour.referrals.models import Referral
from tests.referrals import bundles as B

USERNAME_SYSTEM = "http://localhost:8081/svc/fhir/v1/NamingSystem/id-practitioner-username"


@pytest.fixture
def referral(clinic, site):
    bundle = B.load()
    for practitioner in B.resources(bundle, "Practitioner"):
        practitioner.pop("name", None)
        practitioner["identifier"] = [{"system": USERNAME_SYSTEM, "value": "dkavanagh"}]
    B.store(clinic, bundle)
    run_until_idle()
    return Referral.objects.get(clinic=clinic)


def text(client, url, lang="en"):
    response = client.get(url, HTTP_ACCEPT_LANGUAGE=lang)
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def test_the_reader_keeps_the_username_out_of_the_name(referral):
    assert (referral.referrer_name, referral.referrer_username) == ("", "dkavanagh")


@pytest.mark.parametrize("lang, name, username", [("en", "Name", "Ocean username"),
                                                   ("fr", "Nom", "Nom d'utilisateur Ocean")])
def test_referral_page(staff_client, referral, lang, name, username):
    page = text(staff_client, reverse("referrals:detail", args=[referral.pk]), lang)
    section = page.split('id="h-referrer"', 1)[1].split("</section>", 1)[0]
    assert f"<dt>{name}</dt><dd>—</dd>" in section
    assert f"<dt>{username}</dt><dd>dkavanagh</dd>" in section


def test_list_marks_the_username_as_such(staff_client, referral):
    page = text(staff_client, reverse("referrals:list"))
    row = page.split(f'id="referral-{referral.pk}"', 1)[1].split("</tr>", 1)[0]
    cells = row.split("<td>")
    referrer = cells[3]
    assert referrer.startswith("—") and "Ocean username: dkavanagh" in referrer
    assert "<td>dkavanagh" not in row
