"""The audit log page: administrators of the clinic read its entries, newest first, paginated."""
import html

from harbour.audit.log import record
from harbour.audit.models import AuditEntry
from harbour.audit.views import PAGE_SIZE
from tests.conftest import client_for, make_user

AUDIT_URL = "/audit/"


def test_administrators_read_their_clinics_entries_newest_first(admin_client, admin_user, clinic, other_clinic):
    record("ocean_settings.changed", clinic=clinic, actor=admin_user, target="ocean_settings:1", fields=["site_number"])
    record("user.permission_granted", clinic=clinic, actor=admin_user, target="user:9", user_id=9, permission="manage_clinic_users", change="granted")
    record("ocean_settings.changed", clinic=other_clinic, target="ocean_settings:2", fields=["secret-of-lune"])
    response = admin_client.get(AUDIT_URL)
    assert response.status_code == 200
    page = html.unescape(response.content.decode())
    assert "<title>Journal d'audit · Harbour</title>" in page
    assert page.index("Autorisation accordée") < page.index("Paramètres Ocean modifiés")
    # Codes become words: the permission granted and the field changed, under translated names.
    assert "<dt>autorisation</dt><dd>Modifier les autorisations d'un utilisateur</dd>" in page
    assert "<dt>champs</dt><dd>Numéro de site</dd>" in page
    assert "secret-of-lune" not in page and "ocean_settings:2" not in page
    assert [row["entry"].action for row in response.context["rows"]] == ["user.permission_granted", "ocean_settings.changed"]


def test_entries_are_paginated(admin_client, clinic):
    AuditEntry.objects.bulk_create(
        [AuditEntry(clinic=clinic, action="test.action", target=f"n:{i}") for i in range(PAGE_SIZE + 3)]
    )
    first = admin_client.get(AUDIT_URL)
    assert len(first.context["rows"]) == PAGE_SIZE
    assert "Page 1 sur 2" in first.content.decode()
    second = admin_client.get(AUDIT_URL, {"page": 2})
    assert len(second.context["rows"]) == 3
    assert admin_client.get(AUDIT_URL, {"page": "nonsense"}).status_code == 200


def test_who_may_read_it(clinic, staff_client):
    assert staff_client.get(AUDIT_URL).status_code == 403
    for codename in ["manage_clinic_users", "manage_consultation_settings"]:
        reader = make_user(clinic, f"reader-{codename}", codename)
        assert client_for(reader, "soleil.example.org").get(AUDIT_URL).status_code == 200


def test_another_clinics_administrator_is_refused(other_admin, clinic):
    assert client_for(other_admin, "soleil.example.org").get(AUDIT_URL).status_code == 403


def test_the_whole_flow_leaves_a_trail_without_secrets(admin_client, clinic):
    from tests.clinics.helpers import GENERATE_URL, SETTINGS_URL, valid_settings

    admin_client.post(SETTINGS_URL, valid_settings(oauth_client_id="cid", oauth_client_secret="TopSecretValue1"))
    key_page = admin_client.post(GENERATE_URL).content.decode()
    assert "copy-inbound-key" in key_page
    page = html.unescape(admin_client.get(AUDIT_URL).content.decode())
    assert "<dd>Numéro de site, Identifiant de client (Client ID), Secret</dd>" in page
    assert "TopSecretValue1" not in page
    clinic.ocean.refresh_from_db()
    assert clinic.ocean.inbound_key_hash not in page
    assert "TopSecretValue1" not in str(list(AuditEntry.objects.values_list("details", flat=True)))


def test_the_admin_site_registers_the_models_read_only_for_audit(db):
    from django.contrib import admin

    from harbour.clinics.models import Clinic, OceanSettings, User

    for model in [Clinic, OceanSettings, User, AuditEntry]:
        assert admin.site.is_registered(model), model
    model_admin = admin.site._registry[AuditEntry]
    assert not model_admin.has_change_permission(None) and not model_admin.has_delete_permission(None)
    assert "oauth_client_secret_encrypted" not in admin.site._registry[OceanSettings].fields
    assert "inbound_key_hash" not in admin.site._registry[OceanSettings].fields


def test_the_admin_pages_open_for_an_operator(clinic, admin_user):
    from django.test import Client

    from harbour.clinics.models import User

    record("user.created", clinic=clinic, actor=admin_user, target="user:1", user_id=1, permissions=[])
    operator = User.objects.create_superuser("operator", password="operator-pass-4242")
    client = Client(HTTP_HOST="soleil.example.org")
    client.force_login(operator)
    for url in [
        "/admin/clinics/clinic/",
        f"/admin/clinics/clinic/{clinic.pk}/change/",
        "/admin/clinics/user/",
        "/admin/clinics/user/add/",
        f"/admin/clinics/user/{admin_user.pk}/change/",
        "/admin/clinics/oceansettings/",
        f"/admin/clinics/oceansettings/{clinic.ocean.pk}/change/",
        "/admin/audit/auditentry/",
        f"/admin/audit/auditentry/{AuditEntry.objects.get().pk}/change/",
    ]:
        assert client.get(url).status_code == 200, url
    response = client.post(
        "/admin/clinics/user/add/",
        {"username": "added-by-operator", "clinic": clinic.pk, "usable_password": "true", "password1": "a-long-pass-4242", "password2": "a-long-pass-4242"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert User.objects.get(username="added-by-operator").clinic == clinic
