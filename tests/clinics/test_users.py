"""The users page: the clinic's staff, their permissions, adding a user, the lock-out guard."""
from harbour.audit.models import AuditEntry
from harbour.clinics.models import User
from tests.clinics.helpers import ADD_USER_URL, USERS_URL, permissions_url, shows, text
from tests.conftest import make_user

SETTINGS = "manage_consultation_settings"
USERS = "manage_clinic_users"


def perms_of(user) -> set[str]:
    return set(User.objects.get(pk=user.pk).user_permissions.values_list("codename", flat=True))


def form_data(user, *codenames) -> dict:
    return {f"user-{user.pk}-{codename}": "on" for codename in codenames}


def test_the_page_lists_only_this_clinics_users_with_their_permissions(admin_client, admin_user, staff_user, other_admin):
    response = admin_client.get(USERS_URL)
    assert response.status_code == 200
    page = text(response)
    assert "admin-soleil" in page and "staff-soleil" in page
    assert "admin-lune" not in page
    assert "Paramètres de consultation" in page
    assert shows(response, "Modifier les autorisations d'un utilisateur")
    rows = {row["user"].username: row["form"] for row in response.context["rows"]}
    assert set(rows) == {"admin-soleil", "staff-soleil"}
    assert rows["admin-soleil"].initial == {SETTINGS: True, USERS: True}
    assert rows["staff-soleil"].initial == {SETTINGS: False, USERS: False}
    assert f'id="id_user-{staff_user.pk}-{SETTINGS}"' in page and f'for="id_user-{staff_user.pk}-{SETTINGS}"' in page


def test_granting_and_revoking_is_saved_and_audited(admin_client, admin_user, staff_user, clinic):
    response = admin_client.post(permissions_url(staff_user), form_data(staff_user, SETTINGS, USERS))
    assert response.status_code == 302
    assert perms_of(staff_user) == {SETTINGS, USERS}
    granted = AuditEntry.objects.filter(action="user.permission_granted").order_by("id")
    assert [(e.details["user_id"], e.details["permission"], e.details["change"]) for e in granted] == [
        (staff_user.pk, SETTINGS, "granted"),
        (staff_user.pk, USERS, "granted"),
    ]
    assert all(e.clinic == clinic and e.actor == admin_user and e.target == f"user:{staff_user.pk}" for e in granted)

    admin_client.post(permissions_url(staff_user), form_data(staff_user, USERS))
    assert perms_of(staff_user) == {USERS}
    revoked = AuditEntry.objects.get(action="user.permission_revoked")
    assert revoked.details == {"user_id": staff_user.pk, "permission": SETTINGS, "change": "revoked"}


def test_an_administrator_cannot_lock_themselves_out(admin_client, admin_user):
    response = admin_client.post(permissions_url(admin_user), form_data(admin_user, SETTINGS))
    assert response.status_code == 200
    assert shows(
        response,
        "Vous ne pouvez pas retirer votre propre autorisation de modifier les autorisations des utilisateurs : "
        "vous perdriez l'accès à cette page. Demandez-le à un autre administrateur.",
    )
    assert perms_of(admin_user) == {SETTINGS, USERS}
    assert not AuditEntry.objects.exists()
    # Dropping only the settings permission on oneself is allowed.
    admin_client.post(permissions_url(admin_user), form_data(admin_user, USERS))
    assert perms_of(admin_user) == {USERS}


def test_another_administrator_can_revoke_a_colleague(admin_client, clinic):
    colleague = make_user(clinic, "colleague", SETTINGS, USERS)
    admin_client.post(permissions_url(colleague), form_data(colleague))
    assert perms_of(colleague) == set()


def test_users_of_another_clinic_cannot_be_changed(admin_client, other_admin):
    response = admin_client.post(permissions_url(other_admin), form_data(other_admin))
    assert response.status_code == 404
    assert perms_of(other_admin) == {SETTINGS, USERS}
    assert not AuditEntry.objects.exists()


def test_adding_a_staff_user_to_the_clinic(admin_client, admin_user, clinic):
    response = admin_client.post(
        ADD_USER_URL,
        {"new-username": "nurse.lea", "new-password1": "a-long-pass-4242", "new-password2": "a-long-pass-4242", f"new-{SETTINGS}": "on"},
    )
    assert response.status_code == 302
    user = User.objects.get(username="nurse.lea")
    assert user.clinic == clinic and user.check_password("a-long-pass-4242")
    assert perms_of(user) == {SETTINGS}
    entry = AuditEntry.objects.get(action="user.created")
    assert entry.details == {"user_id": user.pk, "permissions": [SETTINGS]}
    assert entry.actor == admin_user and "a-long-pass-4242" not in str(entry.details)
    assert "nurse.lea" in text(admin_client.get(USERS_URL))


def test_adding_a_user_with_bad_input_is_refused_with_clear_errors(admin_client, other_admin):
    cases = [
        ({"new-username": "", "new-password1": "a-long-pass-4242", "new-password2": "a-long-pass-4242"}, "Ce champ est obligatoire."),
        ({"new-username": "léa x", "new-password1": "a-long-pass-4242", "new-password2": "a-long-pass-4242"}, "Saisissez un nom d’utilisateur valide."),
        ({"new-username": "admin-lune", "new-password1": "a-long-pass-4242", "new-password2": "a-long-pass-4242"}, "Un utilisateur avec ce nom existe déjà."),
        ({"new-username": "lea", "new-password1": "a-long-pass-4242", "new-password2": "another-pass-4242"}, "Les deux mots de passe ne correspondent pas."),
        ({"new-username": "lea", "new-password1": "short", "new-password2": "short"}, "Ce mot de passe est trop court."),
    ]
    for data, message in cases:
        response = admin_client.post(ADD_USER_URL, data)
        assert response.status_code == 200, data
        assert shows(response, message), (data, message)
    assert User.objects.count() == 2  # admin-soleil and admin-lune only
    assert not AuditEntry.objects.exists()
