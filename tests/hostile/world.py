"""Two clinics, each with one object of every kind a staff URL can name, and its six roles.

`build_world()` gives the clinic under test (A, soleil.example.org) and another clinic
(B, lune.example.org), each holding a referral (with a fetched letter, an attachment, a message
and an appointment), an inbound and an outbound message, a chart, a patient link, an open review
item and a spare user. Each clinic's patient has a distinctive name, so a response that leaks
the other clinic's data is easy to spot.
"""
from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.core.files.base import ContentFile
from django.utils import timezone

from harbour.clinics.models import OceanSettings
from harbour.clinics.setup import ADMIN_PERMISSIONS
from harbour.intake.models import InboundMessage
from harbour.ocean.models import OutboundMessage
from harbour.patients.matching import save_new_chart
from harbour.patients.models import ChartReviewItem, PatientChart, ReferralPatientLink, ReviewField
from harbour.referrals.models import Appointment, Attachment, CommunicationMessage, Direction, Referral
from tests.conftest import make_clinic, make_user

SETTINGS = "manage_consultation_settings"
USERS = "manage_clinic_users"
# Nothing listens on port 9 of the loopback: a view that calls Ocean fails fast and locally.
UNREACHABLE_OCEAN = "http://127.0.0.1:9"

# The six roles of the matrix, as seen from clinic A's host.
ROLES = ("anonymous", "other_clinic_admin", "staff", "settings_only", "users_only", "admin")


@dataclass
class ClinicObjects:
    clinic: object
    host: str
    patient_family: str
    users: dict = field(default_factory=dict)  # role -> User
    objects: dict = field(default_factory=dict)  # kind -> model instance


@dataclass
class World:
    a: ClinicObjects
    b: ClinicObjects

    def user(self, role: str):
        """The user playing `role` on clinic A's host (None for anonymous)."""
        if role == "anonymous":
            return None
        if role == "other_clinic_admin":
            return self.b.users["admin"]
        return self.a.users[role]


def _objects_for(clinic, tag: str, family: str, given: str) -> dict:
    now = timezone.now()
    ocean = OceanSettings.objects.get(clinic=clinic)
    ocean.server = "custom"
    ocean.custom_server_url = UNREACHABLE_OCEAN
    ocean.site_number = "1234"
    ocean.save()

    raw = f'{{"resourceType":"Bundle","id":"{tag}","type":"message","entry":[]}}'.encode()
    inbound = InboundMessage.objects.create(
        clinic=clinic, raw=raw, sha256=hashlib.sha256(raw).hexdigest(), bundle_id=f"bundle-{tag}",
        event_code="add-service-request", referral_ref=f"ref-{tag}", state=InboundMessage.State.FAILED,
        error="ProcessingError: test",
    )
    referral = Referral.objects.create(
        clinic=clinic, ocean_ref=f"ref-{tag}-{uuid.uuid4()}", direction=Direction.RECEIVED, site_number="1234",
        last_activity_at=now, patient_family=family, patient_given=given, patient_birth_date=date(1961, 7, 14),
        patient_hcn="9876543217", patient_hcn_version="ZX", reason=f"Reason of {family}",
        patient_address=f"12 Rue {family}, Gatineau QC",
    )
    letter = Attachment.objects.create(
        referral=referral, kind=Attachment.Kind.LETTER, key=f"letter-{tag}", title=f"Letter for {family}",
        content_type="application/pdf", fetch_state=Attachment.FetchState.FETCHED, fetched_at=now,
    )
    letter.file.save(f"letter-{tag}.pdf", ContentFile(b"%PDF-1.4\n% " + family.encode() + b"\n%%EOF\n"), save=True)
    attachment = Attachment.objects.create(
        referral=referral, kind=Attachment.Kind.ATTACHMENT, key=f"attachment-{tag}", title="Imaging",
        content_type="application/pdf", fetch_state=Attachment.FetchState.FAILED, last_fetch_error="test",
    )
    message = CommunicationMessage.objects.create(
        referral=referral, direction=Direction.RECEIVED, text=f"Hello about {family}", sent_at=now,
        dedupe_key=f"message-{tag}",
    )
    appointment = Appointment.objects.create(
        referral=referral, status="booked", start=now + timedelta(days=3), end=now + timedelta(days=3, minutes=30),
        minutes=30,
    )
    outbound = OutboundMessage.objects.create(
        clinic=clinic, referral=referral, kind=OutboundMessage.Kind.ACCEPT, event_code="notify-update-service-request",
        bundle={"resourceType": "Bundle", "type": "message"}, state=OutboundMessage.State.FAILED, attempts=2,
        next_attempt_at=now + timedelta(hours=1), last_error="test",
    )
    chart = save_new_chart(PatientChart(
        clinic=clinic, family=family, given=given, birth_date=date(1961, 7, 14), hcn="9876543217", hcn_version="AA",
    ))
    link = ReferralPatientLink.objects.create(referral=referral, clinic=clinic, chart=chart, state="linked_by_person", reason="manual")
    review = ChartReviewItem.objects.create(
        clinic=clinic, chart=chart, referral=referral, field=ReviewField.HCN_VERSION, chart_value="AA",
        referral_value="ZX",
    )
    spare_user = make_user(clinic, f"spare-{tag}")
    return {
        "referral": referral, "letter": letter, "attachment": attachment, "message": message,
        "appointment": appointment, "inbound": inbound, "outbound": outbound, "chart": chart, "link": link,
        "review": review, "user": spare_user,
    }


def _clinic(name: str, host: str, tag: str, family: str, given: str) -> ClinicObjects:
    clinic = make_clinic(name, host)
    users = {
        "admin": make_user(clinic, f"admin-{tag}", *ADMIN_PERMISSIONS),
        "staff": make_user(clinic, f"staff-{tag}"),
        "settings_only": make_user(clinic, f"settings-{tag}", SETTINGS),
        "users_only": make_user(clinic, f"users-{tag}", USERS),
    }
    return ClinicObjects(clinic, host, family, users, _objects_for(clinic, tag, family, given))


def build_world() -> World:
    return World(
        a=_clinic("Clinique Soleil", "soleil.example.org", "a", "Quaxworthy", "Zébulonne"),
        b=_clinic("Clinique Lune", "lune.example.org", "b", "Vindralesque", "Ottoline"),
    )
