"""Shared fixtures: clinics, users with and without the consultation settings permission."""
import pytest
from django.test import Client

from harbour.clinics.models import Clinic, ClinicDomain, OceanSettings, User, ocean_settings_for
from harbour.clinics.setup import ADMIN_PERMISSIONS, grant

PASSWORD = "harbour-test-password-1"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # The default hasher costs ~0.5 s a user on these machines; tests don't need its strength.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def intake_memories_start_empty():
    # The intake remembers, per process, keys that passed and the last result it noted per clinic
    # id; each test's rollback gives ids (and may give keys) out again, so each test starts afresh.
    from harbour.intake import lookup, store

    lookup.forget_all()
    store.forget_noted()


def make_clinic(name: str, domain: str) -> Clinic:
    clinic = Clinic.objects.create(name=name)
    ClinicDomain.objects.create(clinic=clinic, domain=domain)
    OceanSettings.objects.create(clinic=clinic)
    return clinic


def make_user(clinic: Clinic, username: str, *permissions: str) -> User:
    user = User.objects.create_user(username=username, password=PASSWORD, clinic=clinic)
    if permissions:
        grant(user, *permissions)
    return user


@pytest.fixture
def clinic(db):
    return make_clinic("Clinique Soleil", "soleil.example.org")


@pytest.fixture
def site(clinic):
    """The clinic's Ocean site is the target of the real payload (site number 1234)."""
    settings_row = ocean_settings_for(clinic)
    settings_row.site_number = "1234"
    settings_row.save()
    return settings_row


@pytest.fixture
def other_clinic(db):
    return make_clinic("Clinique Lune", "lune.example.org")


@pytest.fixture
def admin_user(clinic):
    return make_user(clinic, "admin-soleil", *ADMIN_PERMISSIONS)


@pytest.fixture
def staff_user(clinic):
    return make_user(clinic, "staff-soleil")


@pytest.fixture
def other_admin(other_clinic):
    return make_user(other_clinic, "admin-lune", *ADMIN_PERMISSIONS)


def client_for(user, host: str) -> Client:
    client = Client(HTTP_HOST=host)
    client.force_login(user)
    return client


@pytest.fixture
def admin_client(admin_user):
    return client_for(admin_user, "soleil.example.org")


@pytest.fixture
def staff_client(staff_user):
    return client_for(staff_user, "soleil.example.org")
