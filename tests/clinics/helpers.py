"""Small helpers shared by the clinic page tests."""
import html

from django.forms.models import model_to_dict

from harbour.clinics.models import OceanSettings

SETTINGS_URL = "/settings/consultations/ocean/"
GENERATE_URL = "/settings/consultations/ocean/inbound-key/"
USERS_URL = "/settings/users/"
ADD_USER_URL = "/settings/users/add/"


def permissions_url(user) -> str:
    return f"/settings/users/{user.pk}/permissions/"


def settings_snapshot(clinic) -> dict:
    """Every column of the clinic's Ocean settings, hidden ones included."""
    row = OceanSettings.objects.get(clinic=clinic)
    values = model_to_dict(row)
    for name in ("inbound_key_hash", "inbound_key_generated_at", "oauth_client_secret_encrypted", "updated_at"):
        values[name] = getattr(row, name)
    return values


def valid_settings(**overrides) -> dict:
    data = {
        "site_number": "1234",
        "server": "production",
        "custom_server_url": "",
        "oauth_client_id": "",
        "oauth_client_secret": "",
    }
    data.update(overrides)
    return data


def text(response) -> str:
    return response.content.decode()


def shows(response, message: str) -> bool:
    """The message appears in the page as a person reads it (entities decoded)."""
    return message in html.unescape(text(response))
