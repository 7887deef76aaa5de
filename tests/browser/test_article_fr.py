"""The clinic administrator follows the French article in a browser, click by click, across
Harbour and the Ocean sandbox; then referrals travel both ways. Also: the settings page is
refused to a user without the permission, and a wrong key typed in Ocean shows on both sides."""
import re

import pytest
from playwright.sync_api import expect

from tests.browser.article import (
    FR, SETTINGS_PATH, add_staff_user, go, ocean_add_listing, ocean_admin,
    ocean_create_encryption_key, ocean_create_site, ocean_enable_cloud_connect, ocean_register_integration,
    ocean_send_referral, ocean_sign_up, sign_in, the_whole_path,
)
from tests.browser.conftest import ADMIN, PASSWORD
from tests.browser.helpers import check_accessible, copy_with, paste_into, poll

pytestmark = [pytest.mark.browser, pytest.mark.servers, pytest.mark.timeout(180)]
STAFF_PASSWORD = "Accueil-Soleil-2024-mot-de-passe"


def test_the_article_in_french_then_referrals_both_ways(servers, new_context, shot):
    the_whole_path(servers, new_context, shot, FR, locale="fr-CA", admin=ADMIN, password=PASSWORD,
                   staff_password=STAFF_PASSWORD)


def test_a_user_without_the_permission_is_refused_the_settings_page(servers, new_context, shot):
    harbour, _sandbox = servers
    admin = new_context("fr-CA").new_page()
    sign_in(admin, harbour.base_url, FR, ADMIN, PASSWORD)
    add_staff_user(admin, FR, "accueil-sans-droits", STAFF_PASSWORD)

    staff = new_context("fr-CA").new_page()
    sign_in(staff, harbour.base_url, FR, "accueil-sans-droits", STAFF_PASSWORD)
    menu = staff.get_by_role("navigation", name="Principal")
    expect(menu.get_by_role("link", name="Consultations")).to_be_visible()
    expect(menu.get_by_role("link", name=FR.settings, exact=True)).to_have_count(0)
    response = staff.goto(harbour.base_url + SETTINGS_PATH)
    assert response.status == 403
    shot(staff, "settings-refused")
    expect(staff.get_by_role("heading", level=1)).to_have_text("Accès refusé")
    assert FR.site_number not in staff.content()
    check_accessible(staff, "fr")
    go(staff, staff.get_by_role("link", name="Retour à la page d'accueil"))
    check_accessible(staff, "fr")


def test_a_wrong_key_typed_in_ocean_shows_on_both_sides(servers, new_context, shot):
    harbour, sandbox = servers
    context = new_context("fr-CA")
    emr = context.new_page()
    sign_in(emr, harbour.base_url, FR, ADMIN, PASSWORD, path=SETTINGS_PATH)
    ocean = context.new_page()

    def paste_request_url(target):
        emr.bring_to_front()
        request_url = copy_with(emr, emr.get_by_role("button", name="Copier l'adresse URL de la demande"))
        ocean.bring_to_front()
        assert paste_into(target) == request_url == f"{harbour.base_url}/public/ocean/fhir_bundles"

    ocean_sign_up(ocean, sandbox.base_url, "faute-de-frappe", PASSWORD)
    ocean_create_site(ocean, "Clinique Soleil, essai")
    ocean_enable_cloud_connect(ocean, ocean_create_encryption_key(ocean))
    ocean_register_integration(
        ocean, name="Harbour, mauvaise clé",
        paste_request_url=paste_request_url,
        paste_key=lambda target: target.fill("not-the-key-Harbour-generated"),
    )
    listing = ocean_add_listing(ocean, name="Essai", integration="Harbour, mauvaise clé", service_id="ESSAI")
    ocean_send_referral(ocean, listing=listing, family="Essai", given="Test", birth_date="1990-01-01",
                        hcn="9876543217", version="ZZ", reason="Wrong key rehearsal")

    # Ocean's side: the integration's health hexagon turns to a failure, with Harbour's 401.
    ocean_admin(ocean, "Integrations")
    row = ocean.get_by_role("row").filter(has_text="Harbour, mauvaise clé")

    def failed_in_ocean():
        ocean.reload()
        return "401" in row.inner_text()

    poll(failed_in_ocean, timeout=20, what="the sandbox to record Harbour's 401")
    expect(row.get_by_role("img", name=re.compile("^health (warning|error)$"))).to_be_visible()
    check_accessible(ocean, "en")
    shot(ocean, "ocean-integration-401", doc="sandbox-integration-401")

    # Harbour's side: the settings page shows the rejected call.
    emr.bring_to_front()
    emr.reload()
    rejected = emr.locator("dt", has_text="Dernier appel refusé").locator("xpath=following-sibling::dd[1]")
    expect(rejected.locator(".status-bad")).to_have_text(re.compile(r"^401 le .+ \(\d+ appels? refusés? en tout\)$"))
    # ... and what to do about it: the key Ocean sends is not the one generated in Harbour.
    expect(rejected.locator("#rejection-reason")).to_contain_text("La clé envoyée par Ocean était absente ou n'est pas celle générée ici.")
    shot(emr, "harbour-last-rejected-401")
    check_accessible(emr, "fr")
