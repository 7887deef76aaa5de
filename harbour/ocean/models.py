"""What Harbour keeps about its side of the Ocean conversation: the token cache and the outbox."""
from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _, pgettext_lazy

from harbour.fhir.parse import LenientJSONDecoder, StrictJSONEncoder


class OceanToken(models.Model):
    """The clinic's current OAuth2 access token, shared by every process (web and workers).

    `credentials_fingerprint` ties the token to the Client ID and Secret it came from, so new
    credentials never reuse a token fetched with the old ones.
    """

    clinic = models.OneToOneField("clinics.Clinic", on_delete=models.CASCADE, related_name="ocean_token")
    access_token_encrypted = models.TextField()
    credentials_fingerprint = models.CharField(max_length=64)
    expires_at = models.DateTimeField()
    obtained_at = models.DateTimeField()

    def __str__(self):
        return f"Ocean token of clinic {self.clinic_id}"


class OutboundMessage(models.Model):
    """One message for Ocean's $process-messages: a row exists from the staff action until Ocean says 2xx.

    Delivered in creation order per referral (id order): message N+1 waits while N is pending,
    sending or failed (waiting to retry).
    """

    class Kind(models.TextChoices):
        # A context: the referral page's buttons « Accepter » / « Refuser » share these msgids.
        ACCEPT = "accept", pgettext_lazy("message to Ocean", "Accept")
        DECLINE = "decline", pgettext_lazy("message to Ocean", "Decline")
        BOOK = "book", _("Booking")
        REBOOK = "rebook", _("Booking change")
        CANCEL_APPOINTMENT = "cancel_appointment", _("Appointment cancellation")
        COMPLETE = "complete", _("Completion")
        MESSAGE = "message", _("Message")
        STATUS = "status", _("Status")
        DATA_CORRECTION = "data_correction", _("Data correction")

    class State(models.TextChoices):
        PENDING = "pending", _("Waiting to be sent")
        SENDING = "sending", _("Being sent")
        DELIVERED = "delivered", _("Delivered")
        FAILED = "failed", _("Failed, will retry")
        DEAD = "dead", _("Gave up after repeated failures")
        REJECTED = "rejected", _("Refused by Ocean")

    class Refusal(models.TextChoices):
        """What Harbour did with its own change once Ocean refused it for good (state REJECTED)."""

        UNDONE = "undone", _("Undone: the referral is back as it was")
        KEPT = "kept", _("Kept: the referral changed since")
        # A kept refusal a person has dealt with (checked the referral in Ocean, corrected it here):
        # it no longer makes the referral "not synced".
        HANDLED = "handled", _("Kept, then handled by a person")

    # States that keep the referral "not synced to Ocean" and hold back later messages.
    OPEN_STATES = (State.PENDING, State.SENDING, State.FAILED)
    # States a person can send again with "retry now": transient failures only. A refusal
    # (REJECTED: a final 4xx) would be refused again; the person redoes the action instead.
    RETRYABLE_STATES = (State.FAILED, State.DEAD)
    UNDELIVERED_STATES = (State.PENDING, State.SENDING, State.FAILED, State.DEAD, State.REJECTED)

    clinic = models.ForeignKey("clinics.Clinic", on_delete=models.PROTECT, related_name="outbound_messages")
    referral = models.ForeignKey("referrals.Referral", on_delete=models.PROTECT, related_name="outbound_messages")
    kind = models.CharField(_("kind"), max_length=30, choices=Kind.choices)
    event_code = models.CharField(_("event"), max_length=100)
    # Built and validated at enqueue time; stored as `dump_json` writes it, the body sent (strict
    # JSON at any depth the reader accepts), and read back with the reader itself.
    bundle = models.JSONField(encoder=StrictJSONEncoder, decoder=LenientJSONDecoder)
    # A double-clicked form posts the same key twice: the unique constraint makes it one message.
    idempotency_key = models.CharField(max_length=100, blank=True)
    # What the echo of this message will carry (the timeline Event uses the same key).
    echo_key = models.CharField(max_length=300, blank=True)

    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True)
    last_attempt_at = models.DateTimeField(_("last attempt"), null=True, blank=True)
    last_status = models.PositiveSmallIntegerField(_("last HTTP status"), null=True, blank=True)
    # Ocean's OperationOutcome text for a refusal, or a plain description of the failure. Never secrets.
    last_error = models.TextField(_("last error"), blank=True)

    # The referral's local state before and after the action (ocean.actions), so a final refusal
    # can put it back when nothing happened since (ocean.refusals).
    undo = models.JSONField(default=dict, blank=True)
    refusal = models.CharField(_("after Ocean's refusal"), max_length=10, choices=Refusal.choices, blank=True)

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    delivered_at = models.DateTimeField(_("delivered"), null=True, blank=True)

    class Meta:
        verbose_name = _("message to Ocean")
        verbose_name_plural = _("messages to Ocean")
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["referral", "kind", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="outbound_unique_submit",
            ),
        ]
        indexes = [
            models.Index(fields=["state", "next_attempt_at"], name="outbound_queue"),
            models.Index(fields=["referral", "state"], name="outbound_by_referral"),
            models.Index(fields=["clinic", "state"], name="outbound_by_clinic"),
        ]

    def __str__(self):
        return f"outbound {self.pk} {self.kind} {self.state}"

    @property
    def can_retry_now(self) -> bool:
        return self.state in self.RETRYABLE_STATES

    # Refusals that leave nothing for a person to do.
    SETTLED_REFUSALS = (Refusal.UNDONE, Refusal.HANDLED)

    @classmethod
    def unsynced_q(cls) -> Q:
        """Messages that leave their referral "not synced to Ocean": not delivered, except a refusal
        Harbour undid (the referral is back as Ocean has it) or a person handled. `is_unsynced` is
        the same rule."""
        return Q(state__in=cls.UNDELIVERED_STATES) & ~cls.settled_refusal_q()

    @classmethod
    def settled_refusal_q(cls) -> Q:
        """Refusals that leave nothing for a person to do. `is_settled_refusal` is the same rule."""
        return Q(state=cls.State.REJECTED, refusal__in=cls.SETTLED_REFUSALS)

    @property
    def is_settled_refusal(self) -> bool:
        return self.state == self.State.REJECTED and self.refusal in self.SETTLED_REFUSALS

    @property
    def is_unsynced(self) -> bool:
        return self.state in self.UNDELIVERED_STATES and not self.is_settled_refusal

    @property
    def can_mark_handled(self) -> bool:
        """A refusal Harbour could not undo: a person checks the referral, then says so."""
        return self.state == self.State.REJECTED and not self.is_settled_refusal
