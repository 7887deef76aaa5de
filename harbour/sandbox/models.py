"""Ocean's side, as the sandbox keeps it: sites and their setup, referrals, and the webhook queue.

Users are the project's user model (clinics.User) with no clinic, in the sandbox's own database.
Secrets the sandbox must send again (integration keys, passwords) are encrypted at rest;
secrets it only checks (SEK, OAuth secrets, access tokens) are stored as hashes.
"""
import hashlib
import hmac
import secrets
import uuid

from django.conf import settings
from django.db import models

from harbour.core import crypto


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class Site(models.Model):
    """An Ocean site: its number, its Shared Encryption Key and its Cloud Connect state."""

    number = models.CharField(max_length=20, unique=True)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    # Shared Encryption Key: only a salted hash, it is shown once and unrecoverable (like Ocean).
    sek_salt = models.CharField(max_length=32, blank=True)
    sek_hash = models.CharField(max_length=64, blank=True)
    sek_created_at = models.DateTimeField(null=True, blank=True)
    cloud_connect_enabled = models.BooleanField(default=False)
    cloud_connect_key_stored_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["number"]

    def __str__(self):
        return f"site {self.number}"

    @property
    def has_sek(self) -> bool:
        return bool(self.sek_hash)

    @property
    def key_in_cloud_connect(self) -> bool:
        return self.cloud_connect_enabled and self.cloud_connect_key_stored_at is not None

    def set_sek(self, key: str) -> None:
        self.sek_salt = secrets.token_hex(16)
        self.sek_hash = sha256(self.sek_salt + key)

    def sek_matches(self, key: str) -> bool:
        return bool(self.sek_hash) and hmac.compare_digest(self.sek_hash, sha256(self.sek_salt + (key or "")))


class SiteUser(models.Model):
    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sandbox_sites")
    is_admin = models.BooleanField(default=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["site", "user"], name="sandbox_site_user_unique")]


class Integration(models.Model):
    """Admin > Integrations: an eReferrals endpoint Ocean posts message bundles to."""

    class Auth(models.TextChoices):
        NONE = "none", "None"
        API_KEY = "api_key", "API Key Authentication"
        BASIC = "basic", "HTTP Basic Authentication"
        OAUTH2 = "oauth2", "OAuth2 Client Credentials"

    PAYLOAD_VERSIONS = [("0.11.1", "FHIR v0.11.1"), ("0.10.0", "FHIR v0.10.0")]

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="integrations")
    kind = models.CharField(max_length=30, default="eReferrals")
    name = models.CharField(max_length=200)
    request_url = models.URLField(max_length=500)
    payload_version = models.CharField(max_length=10, choices=PAYLOAD_VERSIONS, default="0.11.1")
    auth_type = models.CharField(max_length=10, choices=Auth.choices, default=Auth.NONE)
    header_name = models.CharField(max_length=100, blank=True)
    basic_username = models.CharField(max_length=200, blank=True)
    oauth_token_url = models.URLField(max_length=500, blank=True)
    oauth_client_id = models.CharField(max_length=200, blank=True)
    # The API key, the Basic password or the OAuth2 secret, encrypted (Ocean must send it).
    secret_encrypted = models.TextField(blank=True)
    send_copy = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # Health, shown like Ocean's hexagon: the last attempt's status code or error.
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    failing_since = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]

    def __str__(self):
        return f"integration {self.pk} of site {self.site_id}"

    def set_secret(self, value: str) -> None:
        self.secret_encrypted = crypto.encrypt(value) if value else ""

    def get_secret(self) -> str:
        return crypto.decrypt(self.secret_encrypted) if self.secret_encrypted else ""

    @property
    def health(self) -> str:
        """ok, warning (failing, still retrying), error (a delivery was given up) or unknown."""
        if self.last_attempt_at is None:
            return "unknown"
        if not self.failing_since:
            return "ok"
        return "error" if self.deliveries.filter(state=Delivery.State.GAVE_UP).exists() else "warning"


class Listing(models.Model):
    """A directory listing that accepts eReferrals, optionally bound to an integration."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="listings")
    name = models.CharField(max_length=200)
    ref = models.CharField(max_length=100, unique=True)
    accepts_ereferrals = models.BooleanField(default=True)
    integration = models.ForeignKey(Integration, null=True, blank=True, on_delete=models.SET_NULL, related_name="listings")
    external_service_id = models.CharField(max_length=100, blank=True)
    specialty_code = models.CharField(max_length=20, default="410223002")
    specialty_display = models.CharField(max_length=100, default="MENTAL_HEALTH_ASSESSMENT_AND_REFERRAL")
    address_line = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=100, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self):
        return f"listing {self.ref}"


class OAuthCredential(models.Model):
    """Manage Credentials > Manage OAuth Credentials: a Client ID and a hashed Secret."""

    site = models.ForeignKey(Site, on_delete=models.CASCADE, related_name="oauth_credentials")
    name = models.CharField(max_length=200)
    client_id = models.CharField(max_length=64, unique=True)
    secret_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked = models.BooleanField(default=False)

    class Meta:
        ordering = ["id"]

    def secret_matches(self, secret: str) -> bool:
        return hmac.compare_digest(self.secret_hash, sha256(secret or ""))


class AccessToken(models.Model):
    credential = models.ForeignKey(OAuthCredential, on_delete=models.CASCADE, related_name="tokens")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()


class Referral(models.Model):
    """The Ocean-side state of one eReferral, as both sides see it."""

    class Folder(models.TextChoices):
        NEW = "new", "New"
        PENDING_BOOKING = "pending_booking", "Pending Booking"
        BOOKED = "booked", "Booked"
        DECLINED = "declined", "Declined"
        CANCELLED = "cancelled", "Cancelled"
        COMPLETED = "completed", "Completed"

    ref = models.UUIDField(default=uuid.uuid4, unique=True)
    sender_site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="sent_referrals")
    sender_user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    target_listing = models.ForeignKey(Listing, on_delete=models.PROTECT, related_name="referrals")
    # The site that may change the status now (the listing's site unless forwarded).
    receiver_site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="received_referrals")
    folder = models.CharField(max_length=20, choices=Folder.choices, default=Folder.NEW)
    status = models.CharField(max_length=10, default="active")  # ServiceRequest.status: active / revoked
    task_status = models.CharField(max_length=20, blank=True)
    status_reason = models.TextField(blank=True)
    awaiting_reply = models.BooleanField(default=False)
    # Patient: {family, given, birth_date, gender, hcn, version_code, phone, email, address_line, city, postal_code, mrn}
    patient = models.JSONField(default=dict)
    # Referrer: {family, given, cpso, billing, phone, fax, username}
    referrer = models.JSONField(default=dict)
    reason = models.TextField(blank=True)
    priority = models.CharField(max_length=10, default="routine")
    # [{link_id, text, answer, hidden}]
    form_answers = models.JSONField(default=list)
    form_ref = models.CharField(max_length=100, default="quickReferral")
    authored_on = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Stable FHIR ids of the resources every bundle repeats (Ocean's bundles are snapshots).
    resource_ids = models.JSONField(default=dict)

    class Meta:
        ordering = ["-authored_on", "-id"]

    def __str__(self):
        return f"referral {self.ref}"

    def resource_id(self, key: str) -> str:
        """The UUID this referral's `key` resource (patient, requester, ...) keeps across bundles."""
        if key not in self.resource_ids:
            self.resource_ids[key] = str(uuid.uuid4())
            if self.pk:
                Referral.objects.filter(pk=self.pk).update(resource_ids=self.resource_ids)
        return self.resource_ids[key]


class Attachment(models.Model):
    referral = models.ForeignKey(Referral, on_delete=models.CASCADE, related_name="attachments")
    ref = models.UUIDField(default=uuid.uuid4, unique=True)
    title = models.CharField(max_length=200)
    content_type = models.CharField(max_length=100)
    data = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]


class Appointment(models.Model):
    referral = models.ForeignKey(Referral, on_delete=models.CASCADE, related_name="appointments")
    fhir_id = models.UUIDField(default=uuid.uuid4)
    status = models.CharField(max_length=20, default="booked")
    start = models.DateTimeField(null=True, blank=True)
    end = models.DateTimeField(null=True, blank=True)
    confirmed = models.BooleanField(default=False)
    patient_instruction = models.TextField(blank=True)
    cancelled = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]


class Message(models.Model):
    class Side(models.TextChoices):
        SENDER = "sender", "Referrer"
        RECEIVER = "receiver", "Receiver"

    referral = models.ForeignKey(Referral, on_delete=models.CASCADE, related_name="messages")
    fhir_id = models.UUIDField(default=uuid.uuid4)
    side = models.CharField(max_length=10, choices=Side.choices)
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="+")
    text = models.TextField(blank=True)  # blank when the message is only a file
    # The Communication's payload[].contentAttachment as the EMR sent them (FHIR Attachment keys:
    # contentType, title, data (base64) or url, size, creation...), repeated as-is in later bundles.
    attachments = models.JSONField(default=list, blank=True)
    via = models.CharField(max_length=10, default="portal")  # portal / api
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["sent_at", "id"]

    def attachment_rows(self) -> list[dict]:
        """The attachments for a page: title, content type, size in bytes (declared, else that of
        the inline data), url (empty for inline data)."""
        rows = []
        for att in self.attachments or []:
            size = att.get("size")
            if not isinstance(size, int) and isinstance(att.get("data"), str):
                size = len(att["data"]) * 3 // 4 - att["data"].count("=")
            rows.append({"title": att.get("title") or "(no title)", "content_type": att.get("contentType") or "",
                         "size": size if isinstance(size, int) else None, "url": att.get("url") or ""})
        return rows


class ReferralEvent(models.Model):
    """The referral's event log, as Ocean shows it."""

    referral = models.ForeignKey(Referral, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(auto_now_add=True)
    site = models.ForeignKey(Site, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    via = models.CharField(max_length=10, default="portal")  # portal / api / system
    kind = models.CharField(max_length=50)
    text = models.CharField(max_length=500)

    class Meta:
        ordering = ["at", "id"]


class Delivery(models.Model):
    """One message bundle to one integration: the persistent webhook queue."""

    class State(models.TextChoices):
        HELD = "held", "Held (no encryption key in Cloud Connect)"
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        GAVE_UP = "gave_up", "Gave up"

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="deliveries")
    referral = models.ForeignKey(Referral, null=True, blank=True, on_delete=models.CASCADE, related_name="deliveries")
    event = models.CharField(max_length=60)
    reason = models.CharField(max_length=30, default="target")  # target / copy / echo / resend
    bundle_id = models.CharField(max_length=64)
    bundle = models.BinaryField()
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    # The retry schedule counts from the first attempt's due time.
    schedule_start = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    excerpt = models.CharField(max_length=500, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="sandbox_delivery_due")]


class DeliveryAttempt(models.Model):
    """The delivery log of an integration: every attempt, its status code and response excerpt."""

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempt_log")
    number = models.PositiveIntegerField()
    at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=300, blank=True)
    excerpt = models.CharField(max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["id"]
