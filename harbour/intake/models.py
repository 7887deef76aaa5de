"""Every message Ocean sent us, kept as it came: the append-only inbound log."""
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class InboundMessage(models.Model):
    class State(models.TextChoices):
        PENDING = "pending", _("Waiting to be processed")
        PROCESSED = "processed", _("Processed")
        FAILED = "failed", _("Failed")
        UNKNOWN_EVENT = "unknown_event", _("Not understood")
        DUPLICATE = "duplicate", _("Duplicate")

    # Indexes cost every intake INSERT, so there are only those a query needs (each named below
    # its query); the clinic's own FK index is covered by the unique constraint, which leads with it.
    clinic = models.ForeignKey(
        "clinics.Clinic", on_delete=models.PROTECT, related_name="inbound_messages", db_index=False
    )
    received_at = models.DateTimeField(_("received"), auto_now_add=True)
    sha256 = models.CharField(max_length=64)
    content_type = models.CharField(max_length=100, blank=True)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)
    # Read from the envelope at intake (cheap); the rest is read by the worker.
    bundle_id = models.CharField(max_length=200, blank=True)
    header_id = models.CharField(max_length=200, blank=True)
    event_code = models.CharField(_("event"), max_length=100, blank=True)
    # Indexed for the outbox's latest snapshot of a referral (ocean.outbox.latest_snapshot) and the
    # worker's per-referral order on PostgreSQL (intake.jobs._claim).
    referral_ref = models.CharField(_("referral reference"), max_length=200, blank=True, db_index=True)

    state = models.CharField(_("outcome"), max_length=20, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # The error of the last failed attempt: exception class and a message free of patient data.
    error = models.TextField(_("error"), blank=True)
    # What the last processing noticed, in English (machines, `harbour inspect`, the admin read these).
    warnings = models.JSONField(default=list, blank=True)
    # The same warnings as {"text": English template, "params": {...}} in the same order, so a page
    # shows them in the reader's language (harbour.referrals.attention); empty on rows older than it.
    warning_templates = models.JSONField(default=list, blank=True)
    # Processed with a warning that may mean the referral was read wrong or in part: the inbound
    # page's "Needs attention" (harbour.fhir.warning_text.ATTENTION_TEMPLATES; set with `warnings`).
    needs_attention = models.BooleanField(default=False)
    processed_at = models.DateTimeField(null=True, blank=True)
    # Last: SQLite stores a row's columns in order and the tail of a large value in overflow pages,
    # so reading a column placed after the body walks all of the body's pages (the inbound page's
    # count by outcome read 5 pages a row instead of 1). Migration 0005 moved it in existing tables.
    raw = models.BinaryField(_("raw bytes"))

    class Meta:
        verbose_name = _("inbound message")
        verbose_name_plural = _("inbound messages")
        ordering = ["-received_at", "-id"]
        constraints = [
            # The same bundle delivered again (retries, resends) is stored once; also the
            # intake's duplicate lookup.
            models.UniqueConstraint(fields=["clinic", "bundle_id", "sha256"], name="inbound_unique_delivery"),
        ]
        indexes = [
            # The worker's queue (intake.jobs): only pending rows are in it, so it stays small.
            models.Index(fields=["id"], condition=Q(state="pending"), name="inbound_pending"),
            # The inbound messages page, newest first, read backwards. Ascending so that a new row
            # is appended at the end: a descending index took it at the start, which cost each
            # intake INSERT about 0.6 more written pages, and SQLite a sort for the id ties.
            models.Index(fields=["clinic", "received_at"], name="inbound_by_clinic"),
            # Its count of failed messages; rows are inserted pending, so intake never writes it.
            models.Index(fields=["clinic"], condition=Q(state="failed"), name="inbound_failed"),
            # "Needs attention", newest first, and its count. Rows are inserted pending, so intake
            # never writes it.
            models.Index(fields=["clinic", "received_at"], condition=Q(state="processed", needs_attention=True),
                         name="inbound_attention"),
        ]

    def __str__(self):
        return f"inbound {self.pk} {self.event_code} {self.state}"


class RejectedCaller(models.Model):
    """Rejected calls per caller address and host in the current window: the intake's shared rate limit.

    Kept in the database so every server process sees the same counts. Rows are written only
    when a call fails authentication, and expired rows are deleted whenever a new one is added.
    """

    # An IPv4 address or an IPv6 /64, then the host called (ratelimit.throttle_key).
    address = models.CharField(max_length=320, unique=True)
    window_start = models.DateTimeField(db_index=True)
    failures = models.PositiveIntegerField(default=0)
    blocked_until = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"{self.address}: {self.failures} rejected"
