"""What of a message is the referral's *snapshot*: the fields an older bundle must never overwrite.

Ocean sends every bundle with all accumulated resources (contract §2.1), so each one carries a
full picture; Harbour keeps the newest picture on the Referral row and records what changed.
"""
from __future__ import annotations

import hashlib

import orjson

from harbour.fhir.model import Message, Telecom

from .models import Referral

# Groups of fields, in the order changes are listed on the timeline.
PATIENT_FIELDS = (
    "patient_family", "patient_given", "patient_sex", "patient_birth_date", "patient_hcn",
    "patient_hcn_version", "patient_mrn", "patient_phone", "patient_email", "patient_address",
    "patient_deceased",
)
# Ocean never overwrites these in an EMR (contract §5.6): a change is a review item.
PROTECTED_PATIENT_FIELDS = frozenset({
    "patient_family", "patient_given", "patient_sex", "patient_birth_date", "patient_hcn",
})
REFERRER_FIELDS = (
    "referrer_name", "referrer_licence", "referrer_billing_number", "referrer_username",
    "referrer_location_name", "referrer_location_address", "referrer_phone", "referrer_fax",
    "referrer_email", "referrer_organization",
)
TARGET_FIELDS = ("listing_ref", "site_number", "listing_name", "external_service_id")
REQUEST_FIELDS = (
    "priority", "category_code", "category_display", "specialties", "reason", "authored_at",
    "replaces_refs", "ocean_status",
)
GROUPS = {
    "patient": PATIENT_FIELDS,
    "referrer": REFERRER_FIELDS,
    "target": TARGET_FIELDS,
    "request": REQUEST_FIELDS,
    "form": ("form_reference", "form_digest"),
}

_MAX_LENGTHS = {
    f.name: f.max_length for f in Referral._meta.get_fields()
    if getattr(f, "max_length", None) and f.get_internal_type() == "CharField"
}


def _text(value) -> str:
    return value.strip() if isinstance(value, str) else ""


def _first(telecoms: tuple[Telecom, ...], system: str) -> str:
    for telecom in telecoms:
        if telecom.system == system and telecom.value:
            return telecom.value
    return ""


def form_digest(message: Message) -> str:
    """Of every eForm of the message: the stored answers are rewritten only when it changes."""
    if not message.forms:
        return ""
    forms = [[form.reference, [[i.link_id, i.text, list(i.answers), i.hidden] for i in form.items]]
             for form in message.forms]
    if len(forms) == 1:  # the digest one form always had, so stored referrals do not rewrite theirs
        forms = forms[0]
    return hashlib.sha256(orjson.dumps(forms)).hexdigest()


def snapshot_fields(message: Message) -> dict:
    """Referral field values from the message. A part the bundle lacks (an unresolved
    reference) is left out, so it never blanks what Harbour already knows."""
    fields: dict = {}
    sr = message.service_request
    if sr is not None:
        fields.update(
            priority=_text(sr.priority),
            category_code=_text(sr.category_code),
            category_display=_text(sr.category_display),
            specialties=list(sr.specialties or (message.target.specialties if message.target else ())),
            reason=sr.reason_text or "",
            authored_at=sr.authored_on,
            replaces_refs=list(sr.replaces),
            ocean_status=_text(sr.status),
        )
    target = message.target
    if target is not None:
        fields.update(
            listing_ref=_text(target.reference),
            site_number=_text(target.site_number),
            listing_name=_text(target.name),
            external_service_id=_text(target.external_service_id),
        )
    referrer = message.referrer
    if referrer is not None:
        fields.update(
            referrer_name=_text(referrer.name),
            referrer_licence=_text(referrer.cpso),
            referrer_billing_number=_text(referrer.ohip_billing_number),
            referrer_username=_text(referrer.ocean_username),
            referrer_location_name=_text(referrer.location_name),
            referrer_location_address=referrer.location_address.one_line() if referrer.location_address else "",
            referrer_phone=_text(referrer.phone),
            referrer_fax=_text(referrer.fax),
            referrer_email=_text(referrer.email),
            referrer_organization=_text(referrer.organization_name),
        )
    patient = message.patient
    if patient is not None:
        fields.update(
            patient_family=_text(patient.family) or (_text(patient.name_text) if not patient.given else ""),
            patient_given=" ".join(patient.given),
            patient_sex=_text(patient.gender),
            patient_birth_date=patient.birth_date,
            patient_hcn=_text(patient.hcn),
            patient_hcn_version=_text(patient.hcn_version),
            patient_mrn=_text(patient.mrn),
            patient_phone=_first(patient.telecom, "phone"),
            patient_email=_first(patient.telecom, "email"),
            patient_address=patient.addresses[0].one_line() if patient.addresses else "",
            patient_deceased=patient.deceased,
        )
    if message.forms:
        fields.update(form_reference=_text(message.form.reference), form_digest=form_digest(message))
    # Values longer than a column would fail on PostgreSQL; keep what fits.
    for name, limit in _MAX_LENGTHS.items():
        value = fields.get(name)
        if isinstance(value, str) and len(value) > limit:
            fields[name] = value[:limit]
    return fields


def apply_snapshot(referral: Referral, fields: dict) -> dict[str, list[str]]:
    """Set the fields on the referral; return the changed field names by group."""
    changed: dict[str, list[str]] = {}
    for group, names in GROUPS.items():
        for name in names:
            if name in fields and getattr(referral, name) != fields[name]:
                setattr(referral, name, fields[name])
                changed.setdefault(group, []).append(name)
    return changed
