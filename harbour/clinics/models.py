"""Clinics (tenants), their staff, and each clinic's Ocean settings."""
import hashlib
import hmac
import re
import secrets

from django.contrib.auth.models import AbstractUser
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from harbour.core import crypto

# A host name as browsers and Ocean send it in the Host header: letters, digits, hyphens, dots.
HOST_NAME = r"(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?"
host_name_validator = RegexValidator(
    rf"\A{HOST_NAME}\Z", message=_("Enter a host name, such as clinique.example.org."), flags=re.IGNORECASE
)



def normalise_domain(value: str) -> str:
    """A domain as ClinicDomain stores it and requests look it up: lower case, no final dot."""
    return value.strip().lower().rstrip(".")


def domain_of_host(host: str) -> str:
    """The domain of a Host header value ("Clinique.example.org:8443" -> "clinique.example.org")."""
    return normalise_domain(host.rsplit(":", 1)[0] if not host.endswith("]") else host)


OCEAN_SERVERS = {
    "production": "https://ocean.cognisantmd.com",
    "test": "https://test.cognisantmd.com",
    "staging": "https://staging.cognisantmd.com",
}


class Clinic(models.Model):
    name = models.CharField(_("name"), max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("clinic")
        verbose_name_plural = _("clinics")
        ordering = ["name"]

    def __str__(self):
        return self.name


class ClinicDomain(models.Model):
    """A host name a clinic is served on; requests find their clinic by it."""

    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="domains")
    domain = models.CharField(_("domain"), max_length=253, unique=True, validators=[host_name_validator])

    class Meta:
        verbose_name = _("clinic domain")
        verbose_name_plural = _("clinic domains")

    def save(self, *args, **kwargs):
        self.domain = normalise_domain(self.domain)
        super().save(*args, **kwargs)

    def __str__(self):
        return self.domain


class User(AbstractUser):
    """A person who signs in. Staff belong to one clinic; operators (superusers) may not."""

    clinic = models.ForeignKey(
        Clinic, verbose_name=_("clinic"), null=True, blank=True, on_delete=models.PROTECT, related_name="users"
    )

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
        permissions = [("manage_clinic_users", _("Edit a user's permissions"))]


def hash_inbound_key(raw_key: str) -> str:
    # The key is 256 random bits, so a plain SHA-256 is enough and lets us look a clinic up by it.
    return hashlib.sha256(raw_key.encode("utf-8", "surrogatepass")).hexdigest()


class OceanSettings(models.Model):
    """Paramètres > Consultations > Ocean, one row per clinic."""

    SERVER_CHOICES = [
        ("production", _("Production (ocean.cognisantmd.com)")),
        ("test", _("Test (test.cognisantmd.com)")),
        ("staging", _("Staging (staging.cognisantmd.com)")),
        ("custom", _("Custom URL (for example the Ocean sandbox)")),
    ]
    INBOUND_KEY_HEADER = "Referral-Integration-API-Key"

    clinic = models.OneToOneField(Clinic, on_delete=models.CASCADE, related_name="ocean")
    site_number = models.CharField(_("Site number"), max_length=20, blank=True)
    server = models.CharField(_("Ocean server"), max_length=20, choices=SERVER_CHOICES, default="production")
    custom_server_url = models.URLField(_("Custom server URL"), blank=True)

    inbound_key_hash = models.CharField(max_length=64, null=True, blank=True, unique=True, editable=False)
    inbound_key_generated_at = models.DateTimeField(null=True, blank=True, editable=False)
    inbound_key_generated_by = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", editable=False
    )

    oauth_client_id = models.CharField(_("Client ID"), max_length=200, blank=True)
    oauth_client_secret_encrypted = models.TextField(blank=True, editable=False)

    # Filled by the intake endpoint, shown read-only on the settings page.
    last_inbound_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_inbound_result = models.CharField(max_length=200, blank=True, editable=False)
    last_rejected_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_rejected_status = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)
    rejected_count = models.PositiveIntegerField(default=0, editable=False)

    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("Ocean settings")
        verbose_name_plural = _("Ocean settings")
        permissions = [("manage_consultation_settings", _("Consultation settings"))]

    def __str__(self):
        return f"Ocean settings of clinic {self.clinic_id}"

    @property
    def ocean_base_url(self) -> str:
        """The Ocean server every outbound call derives from."""
        if self.server == "custom":
            return self.custom_server_url.rstrip("/")
        return OCEAN_SERVERS.get(self.server, OCEAN_SERVERS["production"])

    @property
    def fhir_base_url(self) -> str:
        return f"{self.ocean_base_url}/svc/fhir/v1"

    # Inbound key: shown once, stored as a hash.
    def generate_inbound_key(self, user=None) -> str:
        from django.utils import timezone

        raw_key = secrets.token_urlsafe(32)
        self.inbound_key_hash = hash_inbound_key(raw_key)
        self.inbound_key_generated_at = timezone.now()
        self.inbound_key_generated_by = user
        return raw_key

    @property
    def inbound_key_stamp(self) -> str:
        """Names the key in force (not secret): a « Générer » form carries it, so the same form sent
        again (a reload) after the key changed cannot replace the key a second time."""
        if not self.inbound_key_hash:
            return ""
        return self.inbound_key_generated_at.isoformat() if self.inbound_key_generated_at else "set"

    def inbound_key_matches(self, raw_key: str) -> bool:
        if not self.inbound_key_hash or not raw_key:
            return False
        return hmac.compare_digest(self.inbound_key_hash, hash_inbound_key(raw_key))

    # OAuth secret: encrypted at rest, never rendered back.
    @property
    def has_client_secret(self) -> bool:
        return bool(self.oauth_client_secret_encrypted)

    def set_client_secret(self, secret: str) -> None:
        self.oauth_client_secret_encrypted = crypto.encrypt(secret) if secret else ""

    def get_client_secret(self) -> str:
        if not self.oauth_client_secret_encrypted:
            return ""
        return crypto.decrypt(self.oauth_client_secret_encrypted)

    @property
    def has_oauth_credentials(self) -> bool:
        return bool(self.oauth_client_id and self.oauth_client_secret_encrypted)


def ocean_settings_for(clinic: Clinic) -> OceanSettings:
    settings_row, _created = OceanSettings.objects.get_or_create(clinic=clinic)
    return settings_row
