"""Without the right permission, every page and every action of the clinic screens answers 403."""
import pytest
from django.test import Client

from harbour.audit.models import AuditEntry
from harbour.clinics.models import User
from tests.clinics.helpers import ADD_USER_URL, GENERATE_URL, SETTINGS_URL, USERS_URL, permissions_url, settings_snapshot, valid_settings
from tests.conftest import client_for, make_user


def actions(staff_user):
    return [
        ("get", SETTINGS_URL, {}),
        ("post", SETTINGS_URL, valid_settings(site_number="42")),
        ("post", GENERATE_URL, {"confirm_replace": "1"}),
        ("get", USERS_URL, {}),
        ("post", permissions_url(staff_user), {f"user-{staff_user.pk}-manage_clinic_users": "on", f"user-{staff_user.pk}-manage_consultation_settings": "on"}),
        ("post", ADD_USER_URL, {"new-username": "mallory", "new-password1": "a-long-pass-4242", "new-password2": "a-long-pass-4242"}),
        ("get", "/audit/", {}),
    ]


def test_staff_without_permissions_get_403_everywhere_and_change_nothing(staff_client, staff_user, clinic):
    before = settings_snapshot(clinic)
    for method, url, data in actions(staff_user):
        response = getattr(staff_client, method)(url, data)
        assert response.status_code == 403, (method, url)
    assert settings_snapshot(clinic) == before
    assert not staff_user.user_permissions.exists()
    assert not User.objects.filter(username="mallory").exists()
    assert not AuditEntry.objects.exists()


def test_the_settings_permission_opens_only_the_settings(clinic):
    settings_only = make_user(clinic, "settings-only", "manage_consultation_settings")
    client = client_for(settings_only, "soleil.example.org")
    assert client.get(SETTINGS_URL).status_code == 200
    assert client.post(SETTINGS_URL, valid_settings(site_number="42")).status_code == 302
    assert client.post(GENERATE_URL).status_code == 200
    assert client.get("/audit/").status_code == 200  # settings administrators read the audit log
    assert client.get(USERS_URL).status_code == 403
    assert client.post(permissions_url(settings_only), {f"user-{settings_only.pk}-manage_clinic_users": "on"}).status_code == 403
    assert client.post(ADD_USER_URL, {"new-username": "x", "new-password1": "a-long-pass-4242", "new-password2": "a-long-pass-4242"}).status_code == 403
    settings_only.refresh_from_db()
    assert not settings_only.has_perm("clinics.manage_clinic_users")


def test_the_users_permission_opens_only_the_users_page(clinic):
    users_only = make_user(clinic, "users-only", "manage_clinic_users")
    client = client_for(users_only, "soleil.example.org")
    assert client.get(USERS_URL).status_code == 200
    assert client.get("/audit/").status_code == 200
    before = settings_snapshot(clinic)
    assert client.get(SETTINGS_URL).status_code == 403
    assert client.post(SETTINGS_URL, valid_settings(site_number="42")).status_code == 403
    assert client.post(GENERATE_URL).status_code == 403
    assert settings_snapshot(clinic) == before


def test_the_home_and_menu_show_only_what_the_user_may_open(staff_client, admin_client):
    staff_page = staff_client.get("/").content.decode()
    assert SETTINGS_URL not in staff_page and USERS_URL not in staff_page and "/audit/" not in staff_page
    admin_page = admin_client.get("/").content.decode()
    assert SETTINGS_URL in admin_page and USERS_URL in admin_page and "/audit/" in admin_page


@pytest.mark.parametrize("method, url", [("get", SETTINGS_URL), ("get", USERS_URL), ("get", "/audit/"), ("post", GENERATE_URL)])
def test_a_user_of_another_clinic_is_refused(other_admin, clinic, method, url):
    client = client_for(other_admin, "soleil.example.org")
    assert getattr(client, method)(url).status_code == 403


def test_permissions_granted_through_the_page_take_effect(admin_client, staff_user, clinic):
    assert client_for(staff_user, "soleil.example.org").get(SETTINGS_URL).status_code == 403
    admin_client.post(permissions_url(staff_user), {f"user-{staff_user.pk}-manage_consultation_settings": "on"})
    assert client_for(User.objects.get(pk=staff_user.pk), "soleil.example.org").get(SETTINGS_URL).status_code == 200


def test_csrf_is_enforced_on_every_post(admin_user, staff_user, clinic):
    client = Client(enforce_csrf_checks=True, HTTP_HOST="soleil.example.org")
    client.force_login(admin_user)
    for method, url, data in actions(staff_user):
        if method == "post":
            assert client.post(url, data).status_code == 403, url
    assert not staff_user.user_permissions.exists()
    assert not AuditEntry.objects.exists()
