"""« Générer »: the inbound key is shown once, stored as a hash, and replaced only when confirmed."""
import html
import re

from django.db import connection

from harbour.audit.models import AuditEntry
from harbour.clinics.models import OceanSettings, hash_inbound_key
from tests.clinics.helpers import GENERATE_URL, SETTINGS_URL, settings_snapshot, shows, text, valid_settings
from tests.conftest import client_for


def shown_key(response) -> str:
    match = re.search(r'id="copy-inbound-key"[^>]*value="([^"]+)"', text(response))
    assert match, "the new key is not on the page"
    return html.unescape(match.group(1))


def stamp(clinic) -> str:
    return OceanSettings.objects.get(clinic=clinic).inbound_key_stamp


def test_generating_shows_the_key_once_and_stores_only_its_hash(admin_client, clinic, admin_user):
    response = admin_client.post(GENERATE_URL)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    key = shown_key(response)
    assert len(key) >= 43
    assert shows(response, "Copiez cette clé maintenant : une fois que vous aurez quitté cette page, elle ne sera plus jamais affichée.")
    # The Request URL and header to paste in Ocean, each with a copy button.
    page = text(response)
    assert 'value="https://soleil.example.org/public/ocean/fhir_bundles"' in page
    assert 'value="Referral-Integration-API-Key"' in page
    for target in ["#copy-request-url", "#copy-header-name", "#copy-inbound-key"]:
        assert f'data-copy="{target}"' in page

    ocean = OceanSettings.objects.get(clinic=clinic)
    assert ocean.inbound_key_hash == hash_inbound_key(key)
    assert ocean.inbound_key_matches(key)
    assert ocean.inbound_key_generated_by == admin_user and ocean.inbound_key_generated_at is not None
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM clinics_oceansettings WHERE clinic_id = %s", [clinic.pk])
        assert key not in repr(cursor.fetchone())

    # Never again: not on the next page, not in the session, not in the audit log.
    again = admin_client.get(SETTINGS_URL)
    assert key not in text(again)
    assert ocean.inbound_key_hash not in text(again)
    assert shows(again, "par admin-soleil. Pour votre sécurité, elle n'est plus jamais affichée.")
    assert key not in str(dict(admin_client.session.items()))
    entry = AuditEntry.objects.get(action="ocean_settings.inbound_key_generated")
    assert entry.actor == admin_user and entry.clinic == clinic
    assert entry.details == {"replaced": False}
    assert key not in str(entry.details) and ocean.inbound_key_hash not in str(entry.details)


def test_generating_again_asks_for_confirmation_without_javascript(admin_client, clinic):
    first = shown_key(admin_client.post(GENERATE_URL))
    before = settings_snapshot(clinic)
    page = text(admin_client.get(SETTINGS_URL))
    # The button asks in the browser, and the form only carries the confirmation once given.
    assert re.search(r'<button type="submit" data-confirm="[^"]*cessera de fonctionner immédiatement', page)
    assert 'name="confirm_replace" value="" data-confirmed-value="1"' in page

    asked = admin_client.post(GENERATE_URL, {"confirm_replace": ""})
    assert asked.status_code == 200
    assert shows(asked, "La clé actuelle cesse de fonctionner immédiatement")
    assert 'name="confirm_replace" value="1"' in text(asked)
    assert 'id="copy-inbound-key"' not in text(asked)
    assert settings_snapshot(clinic) == before
    assert OceanSettings.objects.get(clinic=clinic).inbound_key_matches(first)

    assert f'name="replaces" value="{OceanSettings.objects.get(clinic=clinic).inbound_key_stamp}"' in text(asked)
    replaced = admin_client.post(GENERATE_URL, {"confirm_replace": "1", "replaces": stamp(clinic)})
    second = shown_key(replaced)
    ocean = OceanSettings.objects.get(clinic=clinic)
    assert second != first
    assert ocean.inbound_key_matches(second) and not ocean.inbound_key_matches(first)
    assert AuditEntry.objects.filter(action="ocean_settings.inbound_key_generated").first().details == {"replaced": True}


def test_saving_settings_never_touches_the_key_and_generating_never_touches_settings(admin_client, clinic):
    admin_client.post(SETTINGS_URL, valid_settings(site_number="555"))
    shown_key(admin_client.post(GENERATE_URL))
    key_hash = OceanSettings.objects.get(clinic=clinic).inbound_key_hash
    admin_client.post(SETTINGS_URL, valid_settings(site_number="556"))
    ocean = OceanSettings.objects.get(clinic=clinic)
    assert ocean.inbound_key_hash == key_hash and ocean.site_number == "556"
    admin_client.post(GENERATE_URL, {"confirm_replace": "1", "replaces": stamp(clinic), "site_number": "999"})
    ocean = OceanSettings.objects.get(clinic=clinic)
    assert ocean.inbound_key_hash != key_hash and ocean.site_number == "556"


def test_generate_is_post_only(admin_client, clinic):
    assert admin_client.get(GENERATE_URL).status_code == 405
    assert OceanSettings.objects.get(clinic=clinic).inbound_key_hash is None


def test_another_clinics_administrator_cannot_generate_here(other_admin, clinic):
    intruder = client_for(other_admin, "soleil.example.org")
    assert intruder.post(GENERATE_URL, {"confirm_replace": "1"}).status_code == 403
    assert OceanSettings.objects.get(clinic=clinic).inbound_key_hash is None
    assert not AuditEntry.objects.exists()


def test_reloading_the_page_of_a_replaced_key_does_not_replace_it_again(admin_client, clinic):
    shown_key(admin_client.post(GENERATE_URL))
    page = text(admin_client.get(SETTINGS_URL))
    form = {"confirm_replace": "1", "replaces": re.search(r'name="replaces" value="([^"]*)"', page).group(1)}
    second = shown_key(admin_client.post(GENERATE_URL, form))
    before = settings_snapshot(clinic)

    # The browser's reload sends the same form again: the key pasted in Ocean stays.
    again = admin_client.post(GENERATE_URL, form, follow=True)
    assert settings_snapshot(clinic) == before
    assert OceanSettings.objects.get(clinic=clinic).inbound_key_matches(second)
    assert 'id="copy-inbound-key"' not in text(again)
    assert shows(again, "Aucune nouvelle clé n'a été générée : ce formulaire a été envoyé de nouveau")
    assert AuditEntry.objects.filter(action="ocean_settings.inbound_key_generated").count() == 2


def test_reloading_the_page_of_the_first_key_asks_before_replacing_it(admin_client, clinic):
    first = shown_key(admin_client.post(GENERATE_URL, {"replaces": ""}))
    again = admin_client.post(GENERATE_URL, {"replaces": ""})
    assert shows(again, "La clé actuelle cesse de fonctionner immédiatement")
    assert OceanSettings.objects.get(clinic=clinic).inbound_key_matches(first)


def test_a_page_shown_before_another_administrators_key_does_not_replace_theirs(admin_client, clinic):
    from tests.conftest import make_user

    shown_key(admin_client.post(GENERATE_URL))
    old_page = text(admin_client.get(SETTINGS_URL))
    colleague = client_for(make_user(clinic, "admin-deux", "manage_consultation_settings"), "soleil.example.org")
    theirs = shown_key(colleague.post(GENERATE_URL, {"confirm_replace": "1", "replaces": stamp(clinic)}))

    form = {"confirm_replace": "1", "replaces": re.search(r'name="replaces" value="([^"]*)"', old_page).group(1)}
    assert admin_client.post(GENERATE_URL, form).status_code == 302
    assert OceanSettings.objects.get(clinic=clinic).inbound_key_matches(theirs)


def test_saving_the_settings_right_after_generating_keeps_the_new_key_on_screen(admin_client, clinic):
    """The article's order: « Générer », « Enregistrer les paramètres Ocean », then paste the key in Ocean."""
    generated = admin_client.post(GENERATE_URL)
    key = shown_key(generated)
    assert re.search(r'name="shown_key" value="[^"]+"', text(generated))

    saved = admin_client.post(SETTINGS_URL, valid_settings(site_number="777", shown_key=key))
    assert saved.status_code == 200
    assert shown_key(saved) == key
    assert shows(saved, "Paramètres Ocean enregistrés.")
    assert OceanSettings.objects.get(clinic=clinic).site_number == "777"

    # A form error keeps it on screen too; the next ordinary visit never shows it.
    invalid = admin_client.post(SETTINGS_URL, valid_settings(site_number="abc", shown_key=key))
    assert shown_key(invalid) == key
    assert key not in text(admin_client.get(SETTINGS_URL))


def test_a_sent_back_key_that_is_not_the_current_key_is_never_shown(admin_client, clinic):
    first = shown_key(admin_client.post(GENERATE_URL))
    admin_client.post(GENERATE_URL, {"confirm_replace": "1", "replaces": stamp(clinic)})
    for sent in [first, "made-up-key"]:
        response = admin_client.post(SETTINGS_URL, valid_settings(shown_key=sent))
        assert response.status_code == 302  # the usual redirect: nothing to keep on screen
        assert sent not in text(admin_client.get(SETTINGS_URL))
