import pytest


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """Users are created in most tests here; the production hasher would cost ~0.5 s each."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
