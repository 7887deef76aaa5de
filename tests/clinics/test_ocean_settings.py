"""Paramètres > Consultations > Ocean: saving, bad input, the OAuth secret, the status line."""
import html

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from harbour.audit.models import AuditEntry
from harbour.clinics.models import ClinicDomain
from tests.clinics.helpers import SETTINGS_URL, settings_snapshot, shows, text, valid_settings
from tests.conftest import client_for

SECRET = "oc-Secret-9f8e7d6c5b4a"


def test_the_url_names_resolve():
    assert reverse("clinics:ocean_settings") == SETTINGS_URL
    assert reverse("clinics:users") == "/settings/users/"


def test_the_page_uses_the_article_wording_in_french(admin_client):
    response = admin_client.get(SETTINGS_URL)
    assert response.status_code == 200
    page = text(response)
    for label in [
        "Numéro de site",
        "Serveur Ocean",
        "Authentification entrante",
        "Générer",
        "Identifiants OAuth Ocean",
        "Enregistrer les paramètres Ocean",
        "<title>Paramètres > Consultations > Ocean · Harbour</title>",
        "Referral-Integration-API-Key",
        "https://soleil.example.org/public/ocean/fhir_bundles",
    ]:
        assert label in page, label
    assert '<html lang="fr">' in page


def test_the_page_explains_the_bulk_resend_and_what_oauth_credentials_need_in_french(admin_client):
    """Contract §6: missed referrals are sent again with Ocean's Bulk Actions; Ocean creates OAuth
    credentials only once the shared encryption key is in Cloud Connect (step 2)."""
    page = text(admin_client.get(SETTINGS_URL))
    assert "Consultations envoyées avant l'intégration, ou pendant que Harbour était injoignable" in page
    assert "<em>Bulk Actions</em> (actions groupées)" in page and "1 000 lignes au plus" in page
    assert "n'est pas encore enregistrée dans Cloud Connect\u00a0: faites d'abord l'étape 2." in page


def test_saving_changes_the_settings_and_audits_the_field_names(admin_client, clinic, admin_user):
    response = admin_client.post(
        SETTINGS_URL,
        valid_settings(site_number=" 4321 ", server="custom", custom_server_url="http://localhost:8081/", oauth_client_id="client-1", oauth_client_secret=SECRET),
    )
    assert response.status_code == 302 and response["Location"] == SETTINGS_URL
    clinic.ocean.refresh_from_db()
    ocean = clinic.ocean
    assert (ocean.site_number, ocean.server, ocean.custom_server_url) == ("4321", "custom", "http://localhost:8081")
    assert ocean.ocean_base_url == "http://localhost:8081"
    assert ocean.fhir_base_url == "http://localhost:8081/svc/fhir/v1"
    assert ocean.oauth_client_id == "client-1" and ocean.get_client_secret() == SECRET
    entry = AuditEntry.objects.get(action="ocean_settings.changed")
    assert entry.clinic == clinic and entry.actor == admin_user
    assert sorted(entry.details["fields"]) == ["custom_server_url", "oauth_client_id", "oauth_client_secret", "server", "site_number"]
    assert SECRET not in str(entry.details) and "4321" not in str(entry.details)
    # The confirmation comes back in the user's language.
    assert "Paramètres Ocean enregistrés." in text(admin_client.get(SETTINGS_URL))


def test_saving_the_same_values_records_nothing(admin_client, clinic):
    admin_client.post(SETTINGS_URL, valid_settings())
    admin_client.post(SETTINGS_URL, valid_settings())
    assert AuditEntry.objects.filter(action="ocean_settings.changed").count() == 1


@pytest.mark.parametrize("server, expected", [
    ("production", "https://ocean.cognisantmd.com"),
    ("test", "https://test.cognisantmd.com"),
    ("staging", "https://staging.cognisantmd.com"),
])
def test_each_named_server_sets_the_base_url(admin_client, clinic, server, expected):
    assert admin_client.post(SETTINGS_URL, valid_settings(server=server)).status_code == 302
    clinic.ocean.refresh_from_db()
    assert clinic.ocean.ocean_base_url == expected


BAD_INPUT = [
    ({"site_number": "12a4"}, "site_number", "Le numéro de site ne contient que des chiffres (Ocean : Menu > Admin > Site Account)."),
    ({"site_number": "12345678901"}, "site_number", "Le numéro de site compte au plus 10 chiffres."),
    ({"site_number": ""}, "site_number", "Saisissez votre numéro de site Ocean (Ocean : Menu > Admin > Site Account)."),
    ({"site_number": "-12"}, "site_number", "Le numéro de site ne contient que des chiffres (Ocean : Menu > Admin > Site Account)."),
    ({"site_number": "0"}, "site_number", "0 n'est pas un numéro de site Ocean. Copiez le « Site Number » (numéro de site) depuis Ocean : Menu > Admin > Site Account."),
    ({"site_number": "000"}, "site_number", "0 n'est pas un numéro de site Ocean. Copiez le « Site Number » (numéro de site) depuis Ocean : Menu > Admin > Site Account."),
    ({"server": "custom", "custom_server_url": ""}, "custom_server_url", "Saisissez l'adresse du serveur personnalisé ou choisissez un autre serveur."),
    ({"server": "custom", "custom_server_url": "ftp://ocean.example.org"}, "custom_server_url",
     "Saisissez seulement l'adresse du serveur, commençant par https:// ou http://, p. ex. https://ocean.example.org ou http://localhost:8081."),
    ({"server": "custom", "custom_server_url": "https://ocean.example.org/svc/fhir"}, "custom_server_url",
     "Saisissez seulement l'adresse du serveur, commençant par https:// ou http://, p. ex. https://ocean.example.org ou http://localhost:8081."),
    ({"server": "custom", "custom_server_url": "https://ocean.example.org?x=1"}, "custom_server_url",
     "Saisissez seulement l'adresse du serveur, commençant par https:// ou http://, p. ex. https://ocean.example.org ou http://localhost:8081."),
    ({"server": "custom", "custom_server_url": "https://" + "a" * 200 + ".org"}, "custom_server_url",
     "L'adresse est trop longue (au plus 200 caractères)."),
    ({"server": "elsewhere"}, "server", "Sélectionnez un choix valide. elsewhere n’en fait pas partie."),
    ({"oauth_client_id": "c" * 201, "oauth_client_secret": SECRET}, "oauth_client_id",
     "L'identifiant de client est trop long (au plus 200 caractères)."),
    ({"oauth_client_id": "client-1", "oauth_client_secret": " " + SECRET}, "oauth_client_secret",
     "Le secret contient des espaces au début ou à la fin. Copiez-le de nouveau à partir d'Ocean sans les espaces; rien n'a été enregistré."),
    ({"oauth_client_id": "client-1", "oauth_client_secret": SECRET + "\t"}, "oauth_client_secret",
     "Le secret contient des espaces au début ou à la fin. Copiez-le de nouveau à partir d'Ocean sans les espaces; rien n'a été enregistré."),
    ({"oauth_client_id": "client-1", "oauth_client_secret": "s" * 501}, "oauth_client_secret",
     "Le secret est trop long (au plus 500 caractères)."),
    ({"oauth_client_id": "client-1"}, "oauth_client_secret", "Saisissez le secret affiché par Ocean avec cet identifiant de client."),
    ({"oauth_client_secret": SECRET}, "oauth_client_id", "Saisissez l'identifiant de client (Client ID) affiché par Ocean avec ce secret."),
]


@pytest.mark.parametrize("overrides, field, message", BAD_INPUT)
def test_bad_input_gets_a_clear_error_and_changes_nothing(admin_client, clinic, overrides, field, message):
    before = settings_snapshot(clinic)
    response = admin_client.post(SETTINGS_URL, valid_settings(**overrides))
    assert response.status_code == 200
    assert response.context["form"].errors[field] == [message]
    assert shows(response, message)
    assert shows(response, "Les paramètres n'ont pas été enregistrés.")
    assert settings_snapshot(clinic) == before
    assert not AuditEntry.objects.exists()
    # A secret typed into a failing form is never sent back to the browser.
    assert SECRET not in text(response)


def test_clearing_the_client_id_while_its_secret_stays_is_refused(admin_client, clinic):
    admin_client.post(SETTINGS_URL, valid_settings(oauth_client_id="client-1", oauth_client_secret=SECRET))
    before = settings_snapshot(clinic)
    response = admin_client.post(SETTINGS_URL, valid_settings(oauth_client_id=""))
    assert response.status_code == 200
    assert response.context["form"].errors["oauth_client_id"] == [
        "Un secret est enregistré avec cet identifiant de client. Saisissez de nouveau l'identifiant de client, "
        "ou cochez « Supprimer les identifiants OAuth » pour retirer les deux."
    ]
    assert settings_snapshot(clinic) == before
    # Removing both on purpose still works.
    admin_client.post(SETTINGS_URL, valid_settings(oauth_client_id="", remove_credentials="on"))
    clinic.ocean.refresh_from_db()
    assert clinic.ocean.oauth_client_id == "" and not clinic.ocean.has_client_secret


def test_the_secret_is_encrypted_at_rest_and_never_rendered(admin_client, clinic):
    admin_client.post(SETTINGS_URL, valid_settings(oauth_client_id="client-1", oauth_client_secret=SECRET))
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM clinics_oceansettings WHERE clinic_id = %s", [clinic.pk])
        raw_row = cursor.fetchone()
    assert raw_row is not None
    assert SECRET not in repr(raw_row)
    clinic.ocean.refresh_from_db()
    assert clinic.ocean.oauth_client_secret_encrypted in [str(value) for value in raw_row]
    assert clinic.ocean.get_client_secret() == SECRET

    page = text(admin_client.get(SETTINGS_URL))
    assert SECRET not in page
    assert clinic.ocean.oauth_client_secret_encrypted not in page
    assert "•••••••• (enregistré)" in page
    assert "Remplacer le secret" in page


def test_an_empty_secret_field_keeps_the_stored_secret(admin_client, clinic):
    admin_client.post(SETTINGS_URL, valid_settings(oauth_client_id="client-1", oauth_client_secret=SECRET))
    response = admin_client.post(SETTINGS_URL, valid_settings(oauth_client_id="client-2", oauth_client_secret=""))
    assert response.status_code == 302
    clinic.ocean.refresh_from_db()
    assert clinic.ocean.oauth_client_id == "client-2"
    assert clinic.ocean.get_client_secret() == SECRET
    last = AuditEntry.objects.filter(action="ocean_settings.changed").first()
    assert last.details["fields"] == ["oauth_client_id"]


def test_replacing_the_secret_audits_only_that_it_changed(admin_client, clinic):
    admin_client.post(SETTINGS_URL, valid_settings(oauth_client_id="client-1", oauth_client_secret=SECRET))
    admin_client.post(SETTINGS_URL, valid_settings(oauth_client_id="client-1", oauth_client_secret="new-" + SECRET))
    clinic.ocean.refresh_from_db()
    assert clinic.ocean.get_client_secret() == "new-" + SECRET
    last = AuditEntry.objects.filter(action="ocean_settings.changed").first()
    assert last.details == {"fields": ["oauth_client_secret"]}


def test_the_credentials_can_be_removed(admin_client, clinic):
    admin_client.post(SETTINGS_URL, valid_settings(oauth_client_id="client-1", oauth_client_secret=SECRET))
    response = admin_client.post(SETTINGS_URL, valid_settings(oauth_client_id="client-1", remove_credentials="on"))
    assert response.status_code == 302
    clinic.ocean.refresh_from_db()
    assert clinic.ocean.oauth_client_id == "" and not clinic.ocean.has_client_secret
    last = AuditEntry.objects.filter(action="ocean_settings.changed").first()
    assert sorted(last.details["fields"]) == ["oauth_client_id", "oauth_client_secret"]


def test_removing_and_replacing_at_once_is_refused(admin_client, clinic):
    admin_client.post(SETTINGS_URL, valid_settings(oauth_client_id="client-1", oauth_client_secret=SECRET))
    before = settings_snapshot(clinic)
    response = admin_client.post(
        SETTINGS_URL, valid_settings(oauth_client_id="client-1", oauth_client_secret="other", remove_credentials="on")
    )
    assert response.context["form"].errors["remove_credentials"] == [
        "Supprimez les identifiants OAuth ou saisissez-en de nouveaux, mais pas les deux."
    ]
    assert settings_snapshot(clinic) == before


def test_saving_leaves_the_intake_status_columns_alone(admin_client, clinic):
    """The intake endpoint writes last_inbound_* on the same row; a settings save must not overwrite them."""
    from django.utils import timezone

    from harbour.clinics.models import OceanSettings

    OceanSettings.objects.filter(clinic=clinic).update(
        last_inbound_at=timezone.now(), last_inbound_result="accepted", rejected_count=7
    )
    admin_client.post(SETTINGS_URL, valid_settings(site_number="99"))
    row = OceanSettings.objects.get(clinic=clinic)
    assert (row.site_number, row.last_inbound_result, row.rejected_count) == ("99", "accepted", 7)


def test_the_status_line_says_none_yet_then_shows_the_last_calls(admin_client, clinic):
    from datetime import datetime, timezone as dt_timezone

    page = html.unescape(text(admin_client.get(SETTINGS_URL)))
    assert page.count("aucun pour l'instant") == 2

    ocean = clinic.ocean
    ocean.last_inbound_at = datetime(2026, 3, 2, 15, 4, tzinfo=dt_timezone.utc)
    ocean.last_inbound_result = "add-service-request accepted"
    ocean.last_rejected_at = datetime(2026, 3, 3, 16, 5, tzinfo=dt_timezone.utc)
    ocean.last_rejected_status = 401
    ocean.rejected_count = 3
    ocean.save()
    page = html.unescape(text(admin_client.get(SETTINGS_URL)))
    assert "aucun pour l'instant" not in page
    assert "add-service-request accepted" in page
    assert "401 le 3 mars 2026 11:05 (3 appels refusés en tout)" in page

    admin_client.post("/i18n/setlang/", {"language": "en", "next": SETTINGS_URL})
    page = text(admin_client.get(SETTINGS_URL))
    assert "401 at March 3, 2026, 11:05 a.m. (3 rejected calls in all)" in page


@pytest.mark.parametrize("status, reason", [
    (401, "La clé envoyée par Ocean était absente ou n'est pas celle générée ici."),
    (429, "Trop d'appels refusés sont venus de la même adresse"),
    (413, "Le message dépassait la taille maximale acceptée par ce Harbour."),
    (400, "L'appel ne contenait pas de message FHIR : vérifiez que le Payload Type"),
    (415, "L'appel ne contenait pas de message FHIR : vérifiez que le Payload Type"),
])
def test_the_last_rejected_call_says_why_and_whether_it_is_still_the_latest(admin_client, clinic, status, reason):
    from datetime import datetime, timezone as dt_timezone

    ocean = clinic.ocean
    ocean.last_inbound_at = datetime(2026, 3, 2, 15, 4, tzinfo=dt_timezone.utc)
    ocean.last_rejected_at = datetime(2026, 3, 3, 16, 5, tzinfo=dt_timezone.utc)
    ocean.last_rejected_status, ocean.rejected_count = status, 1
    ocean.save()
    page = html.unescape(text(admin_client.get(SETTINGS_URL)))
    assert reason in page
    assert '<span class="status-bad">' in page and "Des messages ont été reçus depuis." not in page

    ocean.last_inbound_at = datetime(2026, 3, 4, 9, 0, tzinfo=dt_timezone.utc)  # Ocean got through since
    ocean.save()
    page = html.unescape(text(admin_client.get(SETTINGS_URL)))
    assert reason in page
    assert '<span class="status-warn">' in page and "Des messages ont été reçus depuis." in page


def test_the_request_url_falls_back_to_the_public_url_without_domain(admin_client, clinic, settings):
    settings.HARBOUR_PUBLIC_URL = "https://harbour.example.net"
    ClinicDomain.objects.filter(clinic=clinic).delete()  # a single clinic is served on any host
    page = text(admin_client.get(SETTINGS_URL))
    assert "https://harbour.example.net/public/ocean/fhir_bundles" in page
    assert "soleil.example.org/public" not in page


def test_the_extension_point_for_the_connection_test_is_in_the_template():
    from django.template.loader import get_template

    source = get_template("clinics/ocean_settings.html").template.source
    assert "{% block ocean_connection %}{% endblock %}" in source


def test_a_post_without_csrf_token_is_refused(admin_user, clinic):
    client = Client(enforce_csrf_checks=True, HTTP_HOST="soleil.example.org")
    client.force_login(admin_user)
    before = settings_snapshot(clinic)
    assert client.post(SETTINGS_URL, valid_settings(site_number="777")).status_code == 403
    assert settings_snapshot(clinic) == before


def test_an_administrator_of_one_clinic_cannot_change_another(admin_user, clinic, other_clinic):
    intruder = client_for(admin_user, "lune.example.org")
    before = settings_snapshot(other_clinic)
    assert intruder.get(SETTINGS_URL).status_code == 403
    assert intruder.post(SETTINGS_URL, valid_settings(site_number="666")).status_code == 403
    assert settings_snapshot(other_clinic) == before
    assert not AuditEntry.objects.exists()


def test_signed_out_visitors_are_sent_to_the_login_page(clinic):
    response = Client(HTTP_HOST="soleil.example.org").get(SETTINGS_URL)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_the_page_switches_to_english(admin_client):
    response = admin_client.post("/i18n/setlang/", {"language": "en", "next": SETTINGS_URL})
    assert response.status_code == 302
    page = text(admin_client.get(SETTINGS_URL))
    for label in ["Site Number", "Inbound Authentication", "Generate", "Ocean OAuth Credentials", "Save Ocean Settings", "<title>Settings > Referral > Ocean · Harbour</title>"]:
        assert label in page, label
    assert "Enregistrer les paramètres Ocean" not in page
    assert '<html lang="en">' in page
    # Errors follow the language too.
    response = admin_client.post(SETTINGS_URL, valid_settings(site_number="12a"))
    assert response.context["form"].errors["site_number"] == [
        "The site number contains digits only (Ocean: Menu > Admin > Site Account)."
    ]
    admin_client.post("/i18n/setlang/", {"language": "fr", "next": SETTINGS_URL})
    assert "Enregistrer les paramètres Ocean" in text(admin_client.get(SETTINGS_URL))


def test_the_secret_is_hidden_from_error_reports(admin_client, clinic):
    from django.views.debug import SafeExceptionReporterFilter

    response = admin_client.post(
        SETTINGS_URL, valid_settings(oauth_client_id="client-1", oauth_client_secret=SECRET, shown_key="raw-inbound-key")
    )
    request = response.wsgi_request
    assert request.sensitive_post_parameters == ("oauth_client_secret", "shown_key")
    cleaned = SafeExceptionReporterFilter().get_post_parameters(request)
    assert cleaned["oauth_client_secret"] != SECRET and cleaned["oauth_client_id"] == "client-1"
    assert cleaned["shown_key"] != "raw-inbound-key"
