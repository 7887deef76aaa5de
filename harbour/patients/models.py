"""Patient charts, the link from each referral to a chart, and the differences waiting for a person.

A referral keeps the patient as Ocean sent it (a snapshot on Referral.patient_*); a chart is the
clinic's own record of the patient. Matching (matching.py) links the two; a referral never
overwrites the chart's protected fields, it raises ChartReviewItems instead (contract §5.6).
"""
import re
import unicodedata

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _, pgettext_lazy


def fold(text: str) -> str:
    """A name reduced for comparison: no accents, no case, letters and digits only
    ("Saint-Pierre", "SAINT PIERRE" and "saint pierre" are the same key)."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"[\W_]+", "", bare.casefold())


def hcn_digits(value: str) -> str:
    return re.sub(r"\D", "", value or "")


class Sex(models.TextChoices):
    """FHIR administrative gender, as Ocean sends it."""

    FEMALE = "female", _("Female")
    MALE = "male", _("Male")
    OTHER = "other", pgettext_lazy("sex", "Other")
    UNKNOWN = "unknown", pgettext_lazy("sex", "Unknown")


class PatientChart(models.Model):
    clinic = models.ForeignKey("clinics.Clinic", on_delete=models.PROTECT, related_name="patient_charts")
    # The clinic's chart number (MRN). Generated as H000001, H000002… when none is given.
    chart_number = models.CharField(_("chart number"), max_length=100)
    # Per-clinic counter behind generated chart numbers (null for numbers given by a person or an import).
    sequence = models.PositiveIntegerField(null=True, blank=True, editable=False)
    family = models.CharField(_("family name"), max_length=200, blank=True)
    given = models.CharField(_("given names"), max_length=200, blank=True)
    sex = models.CharField(_("sex"), max_length=20, blank=True, choices=Sex.choices)
    birth_date = models.DateField(_("birth date"), null=True, blank=True)
    hcn = models.CharField(_("health card number"), max_length=20, blank=True)  # digits only
    hcn_version = models.CharField(_("version code"), max_length=4, blank=True)
    phone = models.CharField(_("phone"), max_length=100, blank=True)
    email = models.CharField(_("email"), max_length=300, blank=True)
    address = models.TextField(_("address"), blank=True)
    # Folded names (see fold()), kept in step by save(): the weak match and the search use them.
    family_key = models.CharField(max_length=200, blank=True, editable=False)
    given_key = models.CharField(max_length=200, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("patient chart")
        verbose_name_plural = _("patient charts")
        ordering = ["family_key", "given_key", "id"]
        constraints = [
            models.UniqueConstraint(fields=["clinic", "chart_number"], name="chart_unique_number"),
            # NULLs are distinct: only generated numbers take part.
            models.UniqueConstraint(fields=["clinic", "sequence"], name="chart_unique_sequence"),
        ]
        indexes = [
            models.Index(fields=["clinic", "hcn"], name="chart_hcn"),
            # The weak match (family name + birth date) compares the folded name.
            models.Index(fields=["clinic", "family_key", "birth_date"], name="chart_name_birth"),
        ]

    def __str__(self):
        return f"chart {self.pk} {self.chart_number}"

    def save(self, *args, **kwargs):
        self.hcn = hcn_digits(self.hcn)
        self.hcn_version = (self.hcn_version or "").strip().upper()
        self.family_key = fold(self.family)
        self.given_key = fold(self.given)
        if kwargs.get("update_fields") is not None:
            kwargs["update_fields"] = sorted(
                set(kwargs["update_fields"]) | {"hcn", "hcn_version", "family_key", "given_key", "updated_at"}
            )
        super().save(*args, **kwargs)

    @property
    def name(self) -> str:
        return " ".join(p for p in (self.given, self.family) if p)


class LinkState(models.TextChoices):
    AUTO_LINKED = "auto_linked", _("Linked automatically")
    LINKED_BY_PERSON = "linked_by_person", _("Linked by a person")
    WAITING = "waiting", _("Waiting for a person")
    NO_CANDIDATES = "no_candidates", _("No matching chart")


class LinkReason(models.TextChoices):
    # Why a chart is linked.
    HCN_BIRTH_DATE = "hcn_birth_date", _("Same health card number and birth date")
    MRN = "mrn", _("The chart number the referral carries")
    MANUAL = "manual", _("Chosen by a person")
    CREATED_FROM_REFERRAL = "created_from_referral", _("Chart created from the referral")
    # Why it waits.
    NO_HCN = "no_hcn", _("The referral has no health card number")
    NO_BIRTH_DATE = "no_birth_date", _("The referral has no birth date")
    SEVERAL_MATCHES = "several_matches", _("Several charts have this health card number and birth date")
    NO_MATCH = "no_match", _("No chart has this health card number and birth date")
    MRN_CONFLICT = "mrn_conflict", _(
        "The chart with this chart number has another health card number, birth date or family name"
    )
    MRN_OTHER_CHART = "mrn_other_chart", _(
        "The chart number and the health card number with birth date point to different charts"
    )
    UNLINKED = "unlinked", _("Unlinked by a person")


class ReferralPatientLink(models.Model):
    """One per referral: which chart it belongs to, or that it waits for a person."""

    referral = models.OneToOneField("referrals.Referral", on_delete=models.CASCADE, related_name="patient_link")
    clinic = models.ForeignKey("clinics.Clinic", on_delete=models.PROTECT, related_name="+")
    chart = models.ForeignKey(
        PatientChart, null=True, blank=True, on_delete=models.PROTECT, related_name="referral_links"
    )
    state = models.CharField(_("state"), max_length=20, choices=LinkState.choices, default=LinkState.WAITING)
    reason = models.CharField(_("reason"), max_length=30, choices=LinkReason.choices, blank=True)
    # Set when a person decided (link, create, unlink): the matcher never auto-links after that.
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    # The referral's updated_at when the matcher last looked, and a digest of the patient snapshot
    # it saw: a later notify-update that changes demographics is checked again (jobs.py).
    checked_at = models.DateTimeField(null=True, blank=True)
    snapshot_digest = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("referral patient link")
        verbose_name_plural = _("referral patient links")
        indexes = [models.Index(fields=["clinic", "state"], name="patient_link_state")]

    def __str__(self):
        return f"link referral {self.referral_id} chart {self.chart_id} {self.state}"

    @property
    def is_linked(self) -> bool:
        return self.chart_id is not None

    @property
    def needs_person(self) -> bool:
        return self.chart_id is None


class ReviewField(models.TextChoices):
    FAMILY = "family", _("Family name")
    GIVEN = "given", _("Given names")
    SEX = "sex", _("Sex")
    BIRTH_DATE = "birth_date", _("Birth date")
    HCN = "hcn", _("Health card number")
    HCN_VERSION = "hcn_version", _("Version code")
    PHONE = "phone", _("Phone")
    EMAIL = "email", _("Email")
    ADDRESS = "address", _("Address")


# Ocean never overwrites these in an EMR (contract §5.6).
PROTECTED_FIELDS = (ReviewField.FAMILY, ReviewField.GIVEN, ReviewField.HCN, ReviewField.BIRTH_DATE, ReviewField.SEX)
# The fields that say who the patient is: a person's link compares them (matching.identity_rows),
# and copying one of them from a referral into the chart needs the person's confirmation.
IDENTITY_FIELDS = (
    ReviewField.FAMILY, ReviewField.GIVEN, ReviewField.SEX, ReviewField.BIRTH_DATE,
    ReviewField.HCN, ReviewField.HCN_VERSION,
)


class ChartReviewItem(models.Model):
    """A referral says something else than the chart: a person accepts (the chart takes the
    referral's value) or ignores it. Values are stored as text (birth date as YYYY-MM-DD)."""

    class State(models.TextChoices):
        OPEN = "open", pgettext_lazy("chart review", "Open")
        ACCEPTED = "accepted", pgettext_lazy("chart review", "Accepted")
        IGNORED = "ignored", pgettext_lazy("chart review", "Ignored")

    clinic = models.ForeignKey("clinics.Clinic", on_delete=models.PROTECT, related_name="+")
    chart = models.ForeignKey(PatientChart, on_delete=models.CASCADE, related_name="review_items")
    referral = models.ForeignKey("referrals.Referral", on_delete=models.CASCADE, related_name="chart_review_items")
    field = models.CharField(_("field"), max_length=20, choices=ReviewField.choices)
    chart_value = models.TextField(_("chart value"), blank=True)
    referral_value = models.TextField(_("referral value"), blank=True)
    state = models.CharField(_("state"), max_length=10, choices=State.choices, default=State.OPEN)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("chart review item")
        verbose_name_plural = _("chart review items")
        ordering = ["chart", "id"]
        constraints = [
            # One open question per field and referral; a later snapshot updates it in place.
            models.UniqueConstraint(
                fields=["chart", "referral", "field"], condition=Q(state="open"), name="review_one_open_per_field"
            ),
        ]
        indexes = [models.Index(fields=["clinic", "chart", "state"], name="review_open")]

    def __str__(self):
        return f"review {self.pk} chart {self.chart_id} {self.field} {self.state}"

    @property
    def is_protected(self) -> bool:
        return self.field in PROTECTED_FIELDS

    @property
    def is_version_update(self) -> bool:
        return self.field == ReviewField.HCN_VERSION

    @property
    def replaces_card(self) -> bool:
        """The chart has another card number: almost always another patient, never a reissue."""
        return self.field == ReviewField.HCN and bool(self.chart_value)


class MatchQueue(models.Model):
    """Referrals the matcher must look at: new ones, and those whose patient snapshot or direction
    changed (queue.py fills it when a referral is saved). The worker job reads the oldest entries
    and deletes each one it handled, so a pass costs the size of a batch, not of the clinic's history.

    `queued_at` tells an entry added again while the job worked on it (then it stays).
    """

    referral = models.OneToOneField("referrals.Referral", on_delete=models.CASCADE, related_name="+")
    queued_at = models.DateTimeField()

    def __str__(self):
        return f"match referral {self.referral_id}"
