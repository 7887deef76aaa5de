"""Forms of the clinic pages: Ocean settings, the inbound key, users and their permissions."""
import re
from urllib.parse import urlsplit

from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.utils.translation import gettext_lazy as _

from harbour.clinics.models import OceanSettings, User

SITE_NUMBER_MAX_DIGITS = 10
SECRET_MAX_LENGTH = 500


class OceanSettingsForm(forms.Form):
    """Site number, Ocean server and OAuth credentials. The inbound key has its own form."""

    site_number = forms.CharField(
        label=_("Site Number"),
        max_length=SITE_NUMBER_MAX_DIGITS,
        help_text=_("Ocean: Menu > Admin > Site Account, the “Site Number”. Digits only."),
        error_messages={
            "required": _("Enter your Ocean site number (Ocean: Menu > Admin > Site Account)."),
            "max_length": _("The site number has at most %(limit_value)d digits."),
        },
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off", "class": "value"}),
    )
    server = forms.ChoiceField(
        label=_("Ocean server"),
        choices=OceanSettings.SERVER_CHOICES,
        widget=forms.RadioSelect,
        help_text=_("Production unless CognisantMD or eHealth Centre of Excellence told you otherwise."),
    )
    custom_server_url = forms.CharField(
        label=_("Custom server URL"),
        required=False,
        max_length=200,
        help_text=_("Only for “Custom URL”: the address of the server, for example http://localhost:8081 for the Ocean sandbox."),
        error_messages={"max_length": _("The address is too long (at most %(limit_value)d characters).")},
        widget=forms.URLInput(attrs={"autocomplete": "off", "class": "value"}),
    )
    oauth_client_id = forms.CharField(
        label=_("Client ID"),
        required=False,
        max_length=200,
        error_messages={"max_length": _("The Client ID is too long (at most %(limit_value)d characters).")},
        widget=forms.TextInput(attrs={"autocomplete": "off", "class": "value"}),
    )
    oauth_client_secret = forms.CharField(
        label=_("Secret"),
        required=False,
        strip=False,  # surrounding spaces are an error to report, not something to fix silently
        max_length=SECRET_MAX_LENGTH,
        error_messages={"max_length": _("The secret is too long (at most %(limit_value)d characters).")},
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    remove_credentials = forms.BooleanField(
        label=_("Remove the OAuth credentials"),
        required=False,
        help_text=_("Harbour will stop sending updates to Ocean until new credentials are saved."),
    )

    def __init__(self, *args, ocean: OceanSettings, **kwargs):
        self.ocean = ocean
        kwargs.setdefault(
            "initial",
            {
                "site_number": ocean.site_number,
                "server": ocean.server,
                "custom_server_url": ocean.custom_server_url,
                "oauth_client_id": ocean.oauth_client_id,
            },
        )
        super().__init__(*args, **kwargs)
        if ocean.has_client_secret:
            self.fields["oauth_client_secret"].label = _("Replace the secret")
            self.fields["oauth_client_secret"].help_text = _("Leave empty to keep the saved secret.")
            self.fields["oauth_client_secret"].widget.attrs["placeholder"] = _("•••••••• (saved)")

    def clean_site_number(self):
        value = self.cleaned_data["site_number"]
        if not re.fullmatch(r"[0-9]+", value):
            raise ValidationError(
                _("The site number contains digits only (Ocean: Menu > Admin > Site Account)."), code="digits"
            )
        if not value.strip("0"):
            raise ValidationError(
                _("0 is not an Ocean site number. Copy the “Site Number” from Ocean: Menu > Admin > Site Account."),
                code="zero",
            )
        return value

    def clean_custom_server_url(self):
        value = self.cleaned_data["custom_server_url"]
        if not value:
            return ""
        message = _("Enter the address of the server only, starting with https:// or http://, for example https://ocean.example.org or http://localhost:8081.")
        try:
            URLValidator(schemes=["http", "https"])(value)
        except ValidationError:
            raise ValidationError(message, code="invalid") from None
        parts = urlsplit(value)
        if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username or parts.password:
            raise ValidationError(message, code="path")
        return value.rstrip("/")

    def clean_oauth_client_secret(self):
        value = self.cleaned_data["oauth_client_secret"]
        if value and value != value.strip():
            raise ValidationError(
                _("The secret has spaces at the start or end. Copy it again from Ocean without the spaces; nothing was saved."),
                code="spaces",
            )
        return value

    def clean(self):
        data = super().clean()
        if data.get("server") == "custom" and "custom_server_url" in data and not data["custom_server_url"]:
            self.add_error("custom_server_url", _("Enter the address of the custom server, or choose another server."))
        if data.get("remove_credentials"):
            if data.get("oauth_client_secret") or (
                data.get("oauth_client_id") and data.get("oauth_client_id") != self.ocean.oauth_client_id
            ):
                self.add_error(
                    "remove_credentials",
                    _("Either remove the OAuth credentials or enter new ones, not both."),
                )
            return data
        client_id = data.get("oauth_client_id")
        secret = data.get("oauth_client_secret")
        if secret and "oauth_client_id" in data and not client_id:
            self.add_error("oauth_client_id", _("Enter the Client ID that Ocean showed with this secret."))
        if client_id and "oauth_client_secret" in data and not secret and not self.ocean.has_client_secret:
            self.add_error("oauth_client_secret", _("Enter the secret that Ocean showed with this Client ID."))
        if "oauth_client_id" in data and not client_id and not secret and self.ocean.has_client_secret:
            # The saved secret would stay without its Client ID: Harbour could no longer call Ocean.
            self.add_error(
                "oauth_client_id",
                _("A secret is saved with this Client ID. Enter the Client ID again, or tick “Remove the OAuth credentials” to remove both."),
            )
        return data

    def apply(self) -> list[str]:
        """Copy the cleaned values onto the settings; return the names of the fields that changed."""
        data = self.cleaned_data
        ocean = self.ocean
        changed = []
        if data["remove_credentials"]:
            new_values = {"oauth_client_id": ""}
        else:
            new_values = {"oauth_client_id": data["oauth_client_id"]}
        new_values.update(
            site_number=data["site_number"], server=data["server"], custom_server_url=data["custom_server_url"]
        )
        for name in ("site_number", "server", "custom_server_url", "oauth_client_id"):
            if getattr(ocean, name) != new_values[name]:
                setattr(ocean, name, new_values[name])
                changed.append(name)
        if data["remove_credentials"]:
            if ocean.has_client_secret:
                ocean.set_client_secret("")
                changed.append("oauth_client_secret")
        elif data["oauth_client_secret"]:
            ocean.set_client_secret(data["oauth_client_secret"])
            changed.append("oauth_client_secret")
        return changed


class GenerateKeyForm(forms.Form):
    """The « Générer » button. Replacing an existing key needs confirm_replace=1, and `replaces`
    must name the key in force when the page was shown (OceanSettings.inbound_key_stamp)."""

    confirm_replace = forms.BooleanField(required=False, widget=forms.HiddenInput)
    replaces = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)


# The permissions a clinic administrator hands out from the users page.
MANAGED_PERMISSIONS = [
    ("manage_consultation_settings", _("Consultation settings")),
    ("manage_clinic_users", _("Edit a user's permissions")),
]


class PermissionsForm(forms.Form):
    """One user's permissions; refuses to let an administrator lock themselves out."""

    manage_consultation_settings = forms.BooleanField(
        label=_("Consultation settings"),
        required=False,
        help_text=_("Settings > Referral > Ocean: site number, keys and credentials."),
    )
    manage_clinic_users = forms.BooleanField(
        label=_("Edit a user's permissions"),
        required=False,
        help_text=_("This page: add users and change their permissions; read the audit log."),
    )

    def __init__(self, *args, target: User, actor: User, **kwargs):
        self.target = target
        self.actor = actor
        # Direct permissions only: those are what this form grants and revokes.
        held = {permission.codename for permission in target.user_permissions.all()}
        kwargs.setdefault("initial", {codename: codename in held for codename, _label in MANAGED_PERMISSIONS})
        kwargs.setdefault("prefix", f"user-{target.pk}")
        super().__init__(*args, **kwargs)

    def clean(self):
        data = super().clean()
        if self.target.pk == self.actor.pk and not data.get("manage_clinic_users"):
            raise ValidationError(
                _("You cannot remove your own permission to edit users' permissions: you would lock yourself out. Ask another administrator."),
                code="lockout",
            )
        return data


class AddUserForm(UserCreationForm):
    """A new staff user of the administrator's clinic, with the permissions chosen here."""

    manage_consultation_settings = forms.BooleanField(label=_("Consultation settings"), required=False)
    manage_clinic_users = forms.BooleanField(label=_("Edit a user's permissions"), required=False)

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username",)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("prefix", "new")
        super().__init__(*args, **kwargs)
        self.fields["username"].widget.attrs["autocomplete"] = "off"
        # The users table comes first on the page; jumping to this form would lose keyboard users.
        self.fields["username"].widget.attrs.pop("autofocus", None)
