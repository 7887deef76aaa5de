"""`harbour rotate-keys`: every stored secret re-encrypted with the first key; old keys can go."""
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.utils import timezone

from harbour.clinics.models import ocean_settings_for
from harbour.core import crypto
from harbour.ocean.models import OceanToken
from tests.conftest import make_clinic

pytestmark = pytest.mark.django_db

OLD, NEW, STRANGER = (Fernet.generate_key().decode() for _ in range(3))


def store_secrets(clinic, secret: str, token: str):
    ocean = ocean_settings_for(clinic)
    ocean.oauth_client_id = "client"
    ocean.set_client_secret(secret)
    ocean.save()
    now = timezone.now()
    OceanToken.objects.create(clinic=clinic, access_token_encrypted=crypto.encrypt(token),
                              credentials_fingerprint="f" * 64, expires_at=now, obtained_at=now)


def test_rotation_re_encrypts_every_secret_so_the_old_key_can_be_dropped(settings, clinic, other_clinic):
    settings.HARBOUR_ENCRYPTION_KEYS = [OLD]
    store_secrets(clinic, "secret-soleil", "token-soleil")
    store_secrets(other_clinic, "secret-lune", "token-lune")
    before = sorted(OceanToken.objects.values_list("access_token_encrypted", flat=True))

    settings.HARBOUR_ENCRYPTION_KEYS = [NEW, OLD]  # the new key in front, the old one still there
    out = StringIO()
    call_command("rotate_keys", stdout=out)
    assert "clinics.OceanSettings.oauth_client_secret_encrypted: 2 re-encrypted, 0 unreadable" in out.getvalue()
    assert "ocean.OceanToken.access_token_encrypted: 2 re-encrypted, 0 unreadable" in out.getvalue()
    assert sorted(OceanToken.objects.values_list("access_token_encrypted", flat=True)) != before

    settings.HARBOUR_ENCRYPTION_KEYS = [NEW]  # the old key dropped: everything still reads
    assert ocean_settings_for(clinic).get_client_secret() == "secret-soleil"
    assert ocean_settings_for(other_clinic).get_client_secret() == "secret-lune"
    tokens = {t.clinic_id: crypto.decrypt(t.access_token_encrypted) for t in OceanToken.objects.all()}
    assert tokens == {clinic.pk: "token-soleil", other_clinic.pk: "token-lune"}


def test_a_value_no_key_reads_is_reported_and_left_untouched(settings, clinic, other_clinic):
    settings.HARBOUR_ENCRYPTION_KEYS = [STRANGER]
    store_secrets(other_clinic, "lost", "lost-token")
    unreadable = ocean_settings_for(other_clinic).oauth_client_secret_encrypted
    settings.HARBOUR_ENCRYPTION_KEYS = [OLD]
    store_secrets(clinic, "secret-soleil", "token-soleil")

    settings.HARBOUR_ENCRYPTION_KEYS = [NEW, OLD]
    out = StringIO()
    with pytest.raises(CommandError, match="2 value"):
        call_command("rotate_keys", stdout=out)
    assert "clinics.OceanSettings.oauth_client_secret_encrypted: 1 re-encrypted, 1 unreadable" in out.getvalue()
    assert ocean_settings_for(other_clinic).oauth_client_secret_encrypted == unreadable
    settings.HARBOUR_ENCRYPTION_KEYS = [NEW]
    assert ocean_settings_for(clinic).get_client_secret() == "secret-soleil"
    assert "secret-soleil" not in out.getvalue() and "lost" not in out.getvalue()
