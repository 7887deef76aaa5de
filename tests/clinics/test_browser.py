"""In a real browser: sign in, generate the key, copy it, and confirm before replacing it."""
import shutil

import pytest

from harbour.clinics.models import Clinic, OceanSettings
from harbour.clinics.setup import ADMIN_PERMISSIONS
from tests.conftest import PASSWORD, make_user

pytestmark = [pytest.mark.browser]


@pytest.fixture
def page(live_server, monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls below are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        context = browser.new_context(base_url=live_server.url, locale="fr-CA")
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
        yield context.new_page()
        browser.close()


def test_generate_copy_and_confirm_replacement(transactional_db, page):
    clinic = Clinic.objects.create(name="Clinique Soleil")  # the only clinic: served on localhost
    OceanSettings.objects.create(clinic=clinic)
    make_user(clinic, "admin-soleil", *ADMIN_PERMISSIONS)

    posts = []
    page.on("request", lambda request: posts.append(request.url) if request.method == "POST" and "inbound-key" in request.url else None)
    page.goto("/settings/consultations/ocean/")
    page.locator("#id_username").fill("admin-soleil")
    page.locator("#id_password").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    assert page.title() == "Paramètres > Consultations > Ocean · Harbour"

    page.get_by_role("button", name="Générer", exact=True).click()
    first = page.locator("#copy-inbound-key").input_value()
    assert OceanSettings.objects.get(clinic=clinic).inbound_key_matches(first)
    page.locator('[data-copy="#copy-inbound-key"]').click()
    page.wait_for_function("() => document.querySelector('[data-copy=\"#copy-inbound-key\"]').dataset.copied === 'true'")
    assert page.evaluate("navigator.clipboard.readText()") == first

    page.goto("/settings/consultations/ocean/")
    assert first not in page.content()
    # Dismissing the browser's question keeps the key.
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Générer", exact=True).click()
    assert OceanSettings.objects.get(clinic=clinic).inbound_key_matches(first)
    # Accepting it replaces the key at once, without the server's own confirmation page.
    messages = []
    page.once("dialog", lambda dialog: (messages.append(dialog.message), dialog.accept()))
    page.get_by_role("button", name="Générer", exact=True).click()
    second = page.locator("#copy-inbound-key").input_value()
    assert "cessera de fonctionner immédiatement" in messages[0]
    assert second != first
    ocean = OceanSettings.objects.get(clinic=clinic)
    assert ocean.inbound_key_matches(second) and not ocean.inbound_key_matches(first)
    assert len(posts) == 2  # the first key and the accepted replacement: the dismissed click sent nothing
