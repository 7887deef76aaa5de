"""Referrals and everything that hangs off them: the projection of Ocean's messages and staff actions.

Every row carries its clinic (directly, or through its referral). The referral keeps the latest
applied snapshot of what Ocean sent (patient, referrer, target listing, form, attachments); the
timeline (Event) keeps what happened and when, one or more entries per inbound message.
"""
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower, Replace
from django.utils.translation import gettext_lazy as _


# Name search keys (the list's patient filter): accents folded, lower case, computed by the database
# itself (a stored generated column), so every writer of the names keeps them right.
# SQLite's parser allows about 25 nested calls, so the folds are the letters of French names.
ACCENT_FOLDS = {
    "à": "a", "â": "a", "ç": "c", "é": "e", "è": "e", "ê": "e", "ë": "e", "î": "i", "ï": "i", "ô": "o",
    "ù": "u", "û": "u", "ü": "u", "ÿ": "y", "œ": "oe",
    "À": "a", "Â": "a", "Ç": "c", "É": "e", "È": "e", "Ê": "e", "Î": "i", "Ô": "o",
}


def name_key_expression(field: str):
    expression = models.F(field)
    for accented, plain in ACCENT_FOLDS.items():
        expression = Replace(expression, models.Value(accented), models.Value(plain))
    return Lower(expression)


def name_key(text: str) -> str:
    """The Python twin of name_key_expression, for what a person types."""
    for accented, plain in ACCENT_FOLDS.items():
        text = text.replace(accented, plain)
    return text.lower()


class Direction(models.TextChoices):
    RECEIVED = "received", _("Received")
    SENT = "sent", _("Sent (copy)")
    UNKNOWN = "unknown", _("Direction unknown")


class Status(models.TextChoices):
    """Harbour's states (contract §5.1 stance)."""

    NEW = "new", _("New")
    ACCEPTED = "accepted", _("Accepted")
    BOOKED = "booked", _("Booked")
    COMPLETED = "completed", _("Completed")
    DECLINED = "declined", _("Declined")
    CANCELLED = "cancelled", _("Cancelled by sender")
    AWAITING_REPLY = "awaiting_reply", _("Awaiting reply")
    EXTERNALLY_MANAGED = "externally_managed", _("Externally managed")
    FORWARDED = "forwarded", _("Forwarded")


class OceanFolder(models.TextChoices):
    """The Ocean folder a referral sits in (contract §5.1), for staff who know Ocean's screens."""

    SENT = "sent", _("Sent (All)")
    NEW = "new", _("New")
    PENDING_BOOKING = "pending_booking", _("Pending Booking")
    BOOKING_UNCONFIRMED = "booking_unconfirmed", _("Booking Unconfirmed")
    BOOKING_CONFIRMED = "booking_confirmed", _("Booking Confirmed")
    AWAITING_RESPONSE = "awaiting_response", _("Awaiting Response")
    DECLINED = "declined", _("Declined")
    CANCELLED = "cancelled", _("Cancelled")
    COMPLETED = "completed", _("Completed")
    FORWARDED = "forwarded", _("Forwarded")
    EXTERNALLY_MANAGED = "externally_managed", _("Externally Managed")


class Referral(models.Model):
    clinic = models.ForeignKey("clinics.Clinic", on_delete=models.PROTECT, related_name="referrals")
    ocean_ref = models.CharField(_("referral reference"), max_length=200)
    direction = models.CharField(_("direction"), max_length=10, choices=Direction.choices, default=Direction.UNKNOWN)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default=Status.NEW)
    ocean_folder = models.CharField(_("Ocean folder"), max_length=20, choices=OceanFolder.choices, default=OceanFolder.NEW)
    # Staff should look: e.g. "appointment_cancelled" (an undated proposed appointment after a dated one).
    attention = models.CharField(_("needs attention"), max_length=40, blank=True)

    # Ocean's own states, as last read (ServiceRequest.status, latest Task.status).
    ocean_status = models.CharField(max_length=30, blank=True)
    ocean_task_status = models.CharField(max_length=30, blank=True)
    ocean_server = models.CharField(max_length=300, blank=True)  # from MessageHeader.source.endpoint

    priority = models.CharField(_("priority"), max_length=30, blank=True)
    category_code = models.CharField(max_length=50, blank=True)
    category_display = models.CharField(_("category"), max_length=200, blank=True)
    specialties = models.JSONField(default=list, blank=True)  # SNOMED codes
    reason = models.TextField(_("reason"), blank=True)  # plain text, HTML removed by the reader
    authored_at = models.DateTimeField(_("authored"), null=True, blank=True)
    replaces_refs = models.JSONField(default=list, blank=True)  # forwarding (§5.3)

    # Target listing (performer / destination receiver).
    listing_ref = models.CharField(_("listing reference"), max_length=200, blank=True)
    site_number = models.CharField(_("site number"), max_length=20, blank=True)
    listing_name = models.CharField(_("listing"), max_length=300, blank=True)
    external_service_id = models.CharField(_("External Service ID"), max_length=200, blank=True)

    # Referrer (requester PractitionerRole and what it points to).
    referrer_name = models.CharField(_("referrer"), max_length=300, blank=True)
    referrer_licence = models.CharField(_("CPSO licence"), max_length=50, blank=True)
    referrer_billing_number = models.CharField(_("OHIP billing number"), max_length=50, blank=True)
    referrer_username = models.CharField(_("Ocean username"), max_length=200, blank=True)
    referrer_location_name = models.CharField(_("location"), max_length=300, blank=True)
    referrer_location_address = models.TextField(_("address"), blank=True)
    referrer_phone = models.CharField(_("phone"), max_length=100, blank=True)
    referrer_fax = models.CharField(_("fax"), max_length=100, blank=True)
    referrer_email = models.CharField(_("email"), max_length=300, blank=True)
    referrer_organization = models.CharField(_("organization"), max_length=300, blank=True)

    # Patient as Ocean sent it (a snapshot; the patient-matching issue links a chart).
    patient_family = models.CharField(_("family name"), max_length=200, blank=True)
    patient_given = models.CharField(_("given names"), max_length=200, blank=True)
    patient_sex = models.CharField(_("sex"), max_length=20, blank=True)
    patient_birth_date = models.DateField(_("birth date"), null=True, blank=True)
    patient_hcn = models.CharField(_("health card number"), max_length=20, blank=True)
    patient_hcn_version = models.CharField(_("version code"), max_length=4, blank=True)
    patient_mrn = models.CharField(_("sender's chart number"), max_length=100, blank=True)
    patient_phone = models.CharField(_("phone"), max_length=100, blank=True)
    patient_email = models.CharField(_("email"), max_length=300, blank=True)
    patient_address = models.TextField(_("address"), blank=True)
    patient_deceased = models.BooleanField(null=True, blank=True)
    patient_family_key = models.GeneratedField(expression=name_key_expression("patient_family"),
                                               output_field=models.CharField(max_length=200), db_persist=True)
    patient_given_key = models.GeneratedField(expression=name_key_expression("patient_given"),
                                              output_field=models.CharField(max_length=200), db_persist=True)

    form_reference = models.CharField(_("form"), max_length=200, blank=True)
    form_digest = models.CharField(max_length=64, blank=True, editable=False)  # skip rewriting an unchanged form

    first_seen_in_update = models.BooleanField(_("first seen in an update"), default=False)
    # Bundle timestamp of the latest applied snapshot: an older snapshot never overwrites a newer one.
    snapshot_at = models.DateTimeField(null=True, blank=True)
    last_activity_at = models.DateTimeField(_("last activity"))
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("referral")
        verbose_name_plural = _("referrals")
        ordering = ["-last_activity_at", "-id"]
        constraints = [
            # Resends "as new", retries and races end in one referral per Ocean ref.
            models.UniqueConstraint(fields=["clinic", "ocean_ref"], name="referral_unique_ref"),
        ]
        indexes = [
            # The lists (views.referral_list): each tab and folder reads its newest rows straight
            # from an index in the page's order; see bench/referral_list.py and docs/performance.md.
            models.Index(fields=["clinic", "direction", "-last_activity_at", "-id"], name="referral_inbox"),
            models.Index(fields=["clinic", "-last_activity_at", "-id"], name="referral_activity"),
            models.Index(fields=["clinic", "direction", "ocean_folder", "-last_activity_at", "-id"],
                         name="referral_folder"),
            models.Index(fields=["clinic", "direction", "authored_at"], name="referral_authored"),
            models.Index(fields=["clinic", "patient_family_key"], name="referral_family_key"),
            models.Index(fields=["clinic", "patient_given_key"], name="referral_given_key"),
            models.Index(fields=["clinic", "status"], name="referral_status"),
            models.Index(fields=["ocean_ref"], name="referral_ref"),
            models.Index(fields=["patient_hcn"], name="referral_hcn"),
            models.Index(fields=["clinic", "listing_ref"], name="referral_listing"),
        ]

    def __str__(self):
        return f"referral {self.pk} {self.ocean_ref}"

    @property
    def patient_name(self) -> str:
        return " ".join(p for p in (self.patient_given, self.patient_family) if p)

    @property
    def category_label(self) -> str:
        """The category as words ("Mental health assessment and referral"), not Ocean's code-like display."""
        from .labels import category_label

        return category_label(self.category_display)

    @property
    def is_read_only(self) -> bool:
        """Actions only on received referrals that are still ours to act on (§5.4)."""
        return self.direction != Direction.RECEIVED or self.status in (
            Status.CANCELLED, Status.FORWARDED, Status.EXTERNALLY_MANAGED,
        )


class FormAnswer(models.Model):
    """One item of the referral's eForm (QuestionnaireResponse), in document order."""

    referral = models.ForeignKey(Referral, on_delete=models.CASCADE, related_name="form_answers")
    position = models.PositiveIntegerField()
    # Which of the message's eForms (0 for the first; Ocean sends one) and its reference
    # (id-form-reference, e.g. quickReferral): the page names each form when there are several.
    form_number = models.PositiveSmallIntegerField(default=0)
    form = models.CharField(max_length=200, blank=True)
    link_id = models.CharField(max_length=200, blank=True)
    label = models.TextField(blank=True)
    answers = models.TextField(blank=True)  # one answer per line
    hidden = models.BooleanField(default=False)

    class Meta:
        ordering = ["referral", "position"]
        constraints = [models.UniqueConstraint(fields=["referral", "position"], name="form_answer_position")]

    @property
    def form_ordinal(self) -> int:
        """The form's number as people count: 1 for the first."""
        return self.form_number + 1

    @property
    def answer_list(self) -> list[str]:
        return self.answers.split("\n") if self.answers else []


class Attachment(models.Model):
    """A letter or attachment Ocean offers (DocumentReference); the file is fetched by a later job."""

    class Kind(models.TextChoices):
        LETTER = "letter", _("Referral letter")
        ATTACHMENT = "attachment", _("Attachment")

    class FetchState(models.TextChoices):
        PENDING = "pending", _("PDF pending")
        FETCHED = "fetched", _("Fetched")
        FAILED = "failed", _("Fetch failed")

    referral = models.ForeignKey(Referral, on_delete=models.CASCADE, related_name="attachments")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    # Identity within the referral: the Ocean identifier, else the URL (§4.1 "key by identifier and URL").
    key = models.CharField(max_length=500)
    identifier = models.CharField(max_length=200, blank=True)
    url = models.URLField(max_length=1000, blank=True)
    title = models.CharField(_("title"), max_length=500, blank=True)
    content_type = models.CharField(max_length=100, blank=True)
    size = models.PositiveBigIntegerField(null=True, blank=True)
    created = models.DateTimeField(null=True, blank=True)  # attachment.creation
    ocean_status = models.CharField(max_length=30, blank=True)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    # No longer in Ocean's latest snapshot (kept: Harbour's copy is the lasting record).
    removed = models.BooleanField(default=False)

    fetch_state = models.CharField(max_length=10, choices=FetchState.choices, default=FetchState.PENDING)
    file = models.FileField(upload_to="attachments/%Y/%m/", blank=True)
    fetch_attempts = models.PositiveIntegerField(default=0)
    last_fetch_error = models.TextField(blank=True)
    fetched_at = models.DateTimeField(null=True, blank=True)
    next_fetch_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["referral", "kind", "id"]
        constraints = [models.UniqueConstraint(fields=["referral", "key"], name="attachment_unique_key")]
        indexes = [models.Index(fields=["fetch_state", "next_fetch_at"], name="attachment_fetch_queue")]


class Appointment(models.Model):
    """One booking as Ocean (or Harbour) stated it. A change makes a new row; the old one is superseded."""

    referral = models.ForeignKey(Referral, on_delete=models.CASCADE, related_name="appointments")
    ocean_identity = models.CharField(max_length=300, blank=True)  # resource id or fullUrl, when Ocean sends one
    status = models.CharField(max_length=30, blank=True)  # FHIR Appointment.status
    start = models.DateTimeField(null=True, blank=True)
    end = models.DateTimeField(null=True, blank=True)
    minutes = models.PositiveIntegerField(null=True, blank=True)
    participant_status = models.CharField(max_length=30, blank=True)
    confirmed = models.BooleanField(default=False)  # patient participant 'accepted' (vs 'tentative')
    patient_instruction = models.TextField(blank=True)
    # Where, as staff typed it when booking here (sent to Ocean as a display-only Location participant).
    # Ocean's inbound Appointments carry no location (contract §4.1), so rows from Ocean leave it empty.
    location = models.CharField(_("location"), max_length=200, blank=True)
    appointment_type = models.CharField(max_length=200, blank=True)
    cancelled = models.BooleanField(default=False)
    superseded = models.BooleanField(default=False)  # a later statement replaced this one
    inbound_message = models.ForeignKey(
        "intake.InboundMessage", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    outbound_id = models.PositiveBigIntegerField(null=True, blank=True)  # hook for the outbox issue
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["referral", "id"]
        indexes = [models.Index(fields=["referral", "superseded"], name="appointment_current")]

    @property
    def is_dated(self) -> bool:
        return self.start is not None


class StatusChange(models.Model):
    """Status history: who moved the referral from what to what, and the Ocean Task status behind it."""

    referral = models.ForeignKey(Referral, on_delete=models.CASCADE, related_name="status_changes")
    from_status = models.CharField(max_length=20, choices=Status.choices, blank=True)
    to_status = models.CharField(max_length=20, choices=Status.choices)
    task_status = models.CharField(max_length=30, blank=True)
    reason = models.TextField(blank=True)  # Task.statusReason.text
    inbound_message = models.ForeignKey(
        "intake.InboundMessage", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    outbound_id = models.PositiveBigIntegerField(null=True, blank=True)
    actor = models.ForeignKey("clinics.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["referral", "id"]


class CommunicationMessage(models.Model):
    """The referral's message thread."""

    class Direction(models.TextChoices):
        FROM_REFERRER = "from_referrer", _("From the referrer")
        FROM_US = "from_us", _("From us")
        # On a copy of a referral the clinic sent, the other side is the receiver.
        FROM_RECEIVER = "from_receiver", _("From the receiver")

    referral = models.ForeignKey(Referral, on_delete=models.CASCADE, related_name="messages")
    direction = models.CharField(max_length=20, choices=Direction.choices)
    text = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    sender_name = models.CharField(max_length=300, blank=True)
    identifier = models.CharField(max_length=200, blank=True)  # Ocean sends the referral ref here
    attachment_titles = models.JSONField(default=list, blank=True)
    attachment_urls = models.JSONField(default=list, blank=True)
    in_response_to = models.JSONField(default=list, blank=True)
    # Same message seen again (cumulative bundles, echoes of ours) stays one row.
    dedupe_key = models.CharField(max_length=100)
    read_at = models.DateTimeField(null=True, blank=True)
    inbound_message = models.ForeignKey(
        "intake.InboundMessage", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    outbound_id = models.PositiveBigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["referral", "sent_at", "id"]
        constraints = [models.UniqueConstraint(fields=["referral", "dedupe_key"], name="message_unique_dedupe")]


class Event(models.Model):
    """The timeline shown to staff. `code` + `params` render a translated sentence (see timeline.py).

    `dedupe_key` (unique per referral when set) makes facts idempotent: the outbox writes
    e.g. "task:accepted:<authoredOn>" when Harbour sends a Task, and Ocean's echo of it, which
    builds the same key, adds nothing. Message-level entries use "msg:<inbound id>:<code>" so
    reprocessing a message never doubles its entries.
    """

    clinic = models.ForeignKey("clinics.Clinic", on_delete=models.PROTECT, related_name="+")
    referral = models.ForeignKey(Referral, null=True, blank=True, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=100)  # the event code, or a Harbour action ("harbour:accept")
    code = models.CharField(max_length=60)  # what the summary says, e.g. "status_changed"
    params = models.JSONField(default=dict, blank=True)
    dedupe_key = models.CharField(max_length=300, blank=True)
    occurred_at = models.DateTimeField(null=True, blank=True)  # Bundle timestamp, when from Ocean
    inbound_message = models.ForeignKey(
        "intake.InboundMessage", null=True, blank=True, on_delete=models.SET_NULL, related_name="events"
    )
    outbound_id = models.PositiveBigIntegerField(null=True, blank=True)  # hook for the outbox issue
    actor = models.ForeignKey("clinics.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("timeline event")
        verbose_name_plural = _("timeline events")
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["referral", "dedupe_key"], condition=~Q(dedupe_key=""), name="event_unique_dedupe"
            ),
        ]
        indexes = [models.Index(fields=["referral", "created_at"], name="event_timeline")]

    def __str__(self):
        return f"event {self.pk} {self.kind} {self.code}"


class ReferralRead(models.Model):
    """When a user last opened a referral: it is unread for them while its last activity is later."""

    user = models.ForeignKey("clinics.User", on_delete=models.CASCADE, related_name="+")
    referral = models.ForeignKey(Referral, on_delete=models.CASCADE, related_name="reads")
    seen_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "referral"], name="referral_read_once")]


class ReadWatermark(models.Model):
    """Per user: referrals with no activity after `all_read_before` count as read ("mark all as read").

    Without a row, the user's joining date plays this part, so a new colleague does not start
    with the clinic's whole history unread, and counting unread referrals only ever looks at
    the recent ones.
    """

    user = models.OneToOneField("clinics.User", on_delete=models.CASCADE, related_name="referral_watermark")
    all_read_before = models.DateTimeField()
