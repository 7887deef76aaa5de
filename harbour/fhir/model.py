"""What Harbour reads from an Ocean message bundle: frozen, JSON-free dataclasses.

Sequences are tuples so every object is immutable. Optional values are None when absent
or unreadable (the reason is in ``Message.warnings``). Datetimes are timezone-aware.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime


@dataclass(frozen=True, slots=True)
class Envelope:
    """The few header facts the intake endpoint needs before storing a body."""

    bundle_id: str | None
    header_id: str | None
    event_code: str | None
    referral_ref: str | None


@dataclass(frozen=True, slots=True)
class Address:
    use: str | None = None
    type: str | None = None
    lines: tuple[str, ...] = ()
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = None
    text: str | None = None

    def one_line(self) -> str:
        """``3080 Yonge St, Toronto, ON M4P 0C6`` (or the text form)."""
        if self.text and not (self.lines or self.city):
            return self.text
        region = " ".join(p for p in (self.state, self.postal_code) if p)
        return ", ".join(p for p in (*self.lines, self.city, region, self.country) if p)


@dataclass(frozen=True, slots=True)
class Telecom:
    system: str | None  # phone, fax, email, ...
    value: str
    use: str | None = None  # work, home, mobile, ...


@dataclass(frozen=True, slots=True)
class Patient:
    family: str | None
    given: tuple[str, ...]
    name_text: str | None
    gender: str | None
    birth_date: date | None
    hcn: str | None  # digits only
    hcn_version: str | None  # upper-case
    has_hcn_identifier: bool  # an HCN identifier exists, even without a value
    mrn: str | None  # sender's chart id (id-external-patient-reference)
    telecom: tuple[Telecom, ...]
    addresses: tuple[Address, ...]  # empty (use/type only) addresses are dropped
    deceased: bool | None

    @property
    def display_name(self) -> str:
        """``Given Family``, else the text name, else ""."""
        composed = " ".join([*self.given, self.family or ""]).strip()
        return composed or (self.name_text or "")


@dataclass(frozen=True, slots=True)
class Referrer:
    name: str | None  # "Doug Kavanagh"
    family: str | None
    given: tuple[str, ...]
    cpso: str | None  # ca-on-license-physician
    ohip_billing_number: str | None  # ca-on-ohip-billing-id
    ocean_username: str | None  # id-practitioner-username
    role_code: str | None  # e.g. 59058001 Family Physician
    location_name: str | None
    location_address: Address | None
    phone: str | None
    fax: str | None
    email: str | None
    organization_name: str | None


@dataclass(frozen=True, slots=True)
class TargetListing:
    reference: str | None  # id-referral-target-reference, e.g. autorouter_test49721437
    site_number: str | None  # id-site-number
    external_service_id: str | None  # id-referral-target-external-service
    name: str | None  # MessageHeader.destination[0].name
    specialties: tuple[str, ...]  # SNOMED codes
    location_name: str | None
    location_address: Address | None
    phone: str | None
    fax: str | None


@dataclass(frozen=True, slots=True)
class Referral:
    """The focus ServiceRequest."""

    ref: str | None  # id-ereferral-reference value (or v0.10 .id)
    status: str | None  # active, revoked, ...
    intent: str | None
    priority: str | None
    category_code: str | None
    category_display: str | None  # as sent, e.g. MENTAL_HEALTH_ASSESSMENT_AND_REFERRAL
    category_label: str | None  # humanised, e.g. "Mental health assessment and referral"
    specialties: tuple[str, ...]  # performerType codes, else the target's specialties
    authored_on: datetime | None
    reason_text: str | None  # plain text, never HTML
    replaces: tuple[str, ...]  # referral refs (or raw references) of replaced requests
    based_on: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FormItem:
    link_id: str | None
    text: str | None
    answers: tuple[str, ...]
    hidden: bool

    @property
    def label(self) -> str:
        return self.text or self.link_id or ""


@dataclass(frozen=True, slots=True)
class Form:
    """A QuestionnaireResponse (Ocean eForm)."""

    reference: str | None  # id-form-reference, e.g. quickReferral
    status: str | None
    authored: datetime | None
    items: tuple[FormItem, ...]  # flattened, in document order


@dataclass(frozen=True, slots=True)
class Attachment:
    """One DocumentReference content attachment."""

    kind: str  # "letter" or "attachment"
    identifier: str | None
    url: str | None
    title: str | None
    content_type: str | None
    size: int | None
    creation: datetime | None
    status: str | None
    content_index: int = 0  # which of its DocumentReference's contents (a document may hold several files)


@dataclass(frozen=True, slots=True)
class Appointment:
    status: str | None
    start: datetime | None
    end: datetime | None
    minutes_duration: int | None
    participant_status: str | None  # of the patient participant: tentative / accepted / ...
    patient_instruction: str | None
    appointment_type: str | None
    # Cancels a booking (§5.2): undated (Ocean's signal, sent as 'proposed'), or a cancelled
    # status. An undated one cancels only a dated booking made before it; processing knows that.
    is_cancellation_signal: bool


@dataclass(frozen=True, slots=True)
class Task:
    status: str | None
    intent: str | None
    code: str | None
    status_reason: str | None
    business_status: str | None
    description: str | None
    authored_on: datetime | None
    last_modified: datetime | None


@dataclass(frozen=True, slots=True)
class Communication:
    identifier: str | None
    status: str | None
    sent: datetime | None
    payload_texts: tuple[str, ...]
    attachment_titles: tuple[str, ...]
    attachment_urls: tuple[str, ...]
    sender: str | None  # display name of the sender
    in_response_to: tuple[str, ...]  # identifiers of earlier Communications (or raw references)


# Why processing cannot file a message under a referral (process.py raises it, inspect predicts it).
NO_REFERRAL_REFERENCE = "the message names no referral reference"


@dataclass(frozen=True, slots=True)
class Message:
    bundle_id: str | None
    timestamp: datetime | None
    event_code: str | None  # as sent
    event: str | None  # canonical (v0.11.1) name, None if unknown
    payload_version: str | None  # "0.11.1", "0.10.0" or None
    header_id: str | None
    referral_ref: str | None
    source_endpoint: str | None
    destination_endpoint: str | None
    header_reason: str | None  # e.g. "Initial"
    focus: tuple[str, ...]  # resource types of the resolved MessageHeader.focus
    service_request: Referral | None
    patient: Patient | None
    referrer: Referrer | None
    target: TargetListing | None
    forms: tuple[Form, ...]
    attachments: tuple[Attachment, ...]
    appointments: tuple[Appointment, ...]
    tasks: tuple[Task, ...]
    communications: tuple[Communication, ...]
    warnings: tuple[str, ...]  # short English WarningTexts (warning_text.py), never patient data

    @property
    def form(self) -> Form | None:
        """The first eForm (Ocean sends one)."""
        return self.forms[0] if self.forms else None
