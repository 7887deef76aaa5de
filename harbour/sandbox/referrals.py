"""Referral actions in the portal (and the admin API) and who hears about them.

Who receives a message about a referral: the integration of the target listing (when the
listing's site is still the receiver), and every integration of the sending site that has the
copy checkbox ("Allow a copy of the referral to be sent to this endpoint when a new referral is
sent from this site"); Ocean sends those copies the referral's updates too (contract §1, [I]).
"""
import base64
import binascii
import re
import uuid
from datetime import date

from django.db import transaction

from harbour.sandbox import delivery
from harbour.sandbox.bundles import STABLE_RESOURCES
from harbour.sandbox.errors import SandboxError
from harbour.sandbox.models import Attachment, Integration, Listing, Message, Referral, ReferralEvent, Site

GENDERS = {"male", "female", "other", "unknown"}
PRIORITIES = {"routine", "urgent", "asap", "stat"}
PATIENT_FIELDS = [
    "family", "given", "birth_date", "gender", "hcn", "version_code", "phone", "email",
    "address_line", "city", "postal_code", "mrn",
]
REFERRER_FIELDS = ["family", "given", "cpso", "billing", "phone", "fax", "username"]
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024


def log_event(referral: Referral, kind: str, text: str, *, site: Site | None = None, via: str = "portal") -> None:
    ReferralEvent.objects.create(referral=referral, kind=kind, text=text[:500], site=site, via=via)


def integrations_for(referral: Referral) -> list[tuple[Integration, str]]:
    """(integration, reason) pairs that hear about this referral: the target's, then copies."""
    found: list[tuple[Integration, str]] = []
    listing = referral.target_listing
    if listing.integration_id and listing.site_id == referral.receiver_site_id:
        found.append((listing.integration, "target"))
    for integration in Integration.objects.filter(site=referral.sender_site, send_copy=True).select_related("site"):
        if all(integration.pk != known.pk for known, _ in found):
            found.append((integration, "copy"))
    return found


def notify(referral: Referral, event: str, *, author: str = "sender", focus: str = "service_request",
           reason_text: str = "", only: set[str] | None = None) -> list:
    """Queue `event` to every integration that hears about the referral (or the `only` reasons)."""
    return [
        delivery.enqueue(integration, referral, event, reason=reason, author=author, focus=focus, reason_text=reason_text)
        for integration, reason in integrations_for(referral)
        if only is None or reason in only
    ]


# --- Input checks ------------------------------------------------------------------------------

def clean_patient(data: dict, *, partial: bool = False) -> dict:
    if not isinstance(data, dict):
        raise SandboxError("The patient must be an object.", field="patient")
    patient = {key: str(data.get(key) or "").strip() for key in PATIENT_FIELDS if key in data or not partial}
    if not partial and not patient.get("family"):
        raise SandboxError("Enter the patient's last name.", field="patient.family")
    hcn = patient.get("hcn", "")
    if hcn:
        digits = re.sub(r"[\s-]", "", hcn)
        if not re.fullmatch(r"\d{10}", digits):
            raise SandboxError("An Ontario health card number has 10 digits.", field="patient.hcn")
        patient["hcn"] = digits
    code = patient.get("version_code", "")
    if code:
        if not re.fullmatch(r"[A-Za-z]{1,2}", code):
            raise SandboxError("The version code is one or two letters.", field="patient.version_code")
        patient["version_code"] = code.upper()
    if patient.get("birth_date"):
        try:
            date.fromisoformat(patient["birth_date"])
        except ValueError:
            raise SandboxError("Enter the birth date as YYYY-MM-DD.", field="patient.birth_date") from None
    if patient.get("gender") and patient["gender"] not in GENDERS:
        raise SandboxError("The gender is male, female, other or unknown.", field="patient.gender")
    return patient


def clean_answers(answers) -> list[dict]:
    if answers in (None, ""):
        return []
    if not isinstance(answers, list):
        raise SandboxError("Form answers must be a list.", field="answers")
    cleaned = []
    for item in answers:
        if not isinstance(item, dict) or not str(item.get("link_id") or item.get("linkId") or "").strip():
            raise SandboxError("Each form answer needs a link_id.", field="answers")
        cleaned.append({
            "link_id": str(item.get("link_id") or item.get("linkId")).strip(),
            "text": str(item.get("text") or ""),
            "answer": str(item.get("answer") or ""),
            "hidden": bool(item.get("hidden")),
        })
    return cleaned


def clean_attachments(attachments) -> list[dict]:
    """[{title, content_type, data (base64)}] -> [{title, content_type, data (bytes)}]."""
    if not attachments:
        return []
    if not isinstance(attachments, list):
        raise SandboxError("Attachments must be a list.", field="attachments")
    cleaned = []
    for item in attachments:
        if not isinstance(item, dict) or not item.get("title"):
            raise SandboxError("Each attachment needs a title.", field="attachments")
        data = item.get("data", b"")
        if isinstance(data, str):
            try:
                data = base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError):
                raise SandboxError(f"Attachment {item['title']}: data is not valid base64.", field="attachments") from None
        if not data or len(data) > MAX_ATTACHMENT_BYTES:
            raise SandboxError(f"Attachment {item['title']}: empty or larger than 10 MB.", field="attachments")
        cleaned.append({"title": str(item["title"])[:200], "content_type": str(item.get("content_type") or "application/octet-stream")[:100], "data": bytes(data)})
    return cleaned


# --- Sender actions ----------------------------------------------------------------------------

@transaction.atomic
def create_referral(
    sender_site: Site, listing: Listing, *, patient: dict, reason: str, answers=None, attachments=None,
    referrer: dict | None = None, priority: str = "routine", user=None, via: str = "portal",
) -> Referral:
    """Send a referral from `sender_site` to `listing`: add-service-request to its integration."""
    if not listing.accepts_ereferrals:
        raise SandboxError("This listing does not accept eReferrals.", status=409, field="listing")
    reason = (reason or "").strip()
    if not reason:
        raise SandboxError("Enter the reason for referral.", field="reason")
    if priority not in PRIORITIES:
        raise SandboxError("The priority is routine, urgent, asap or stat.", field="priority")
    referrer = {key: str((referrer or {}).get(key) or "").strip() for key in REFERRER_FIELDS}
    if not referrer["family"] and user is not None:
        referrer.update(family=user.last_name or user.get_username(), given=user.first_name, username=user.get_username())
    answers = clean_answers(answers)
    if not any(a["link_id"] == "rfr" for a in answers):
        # Ocean's quickReferral form carries the reason as the 'rfr' answer too.
        answers.append({"link_id": "rfr", "text": "", "answer": reason, "hidden": False})
    referral = Referral.objects.create(
        ref=uuid.uuid4(), sender_site=sender_site, sender_user=user, target_listing=listing, receiver_site=listing.site,
        patient=clean_patient(patient), referrer=referrer, reason=reason, priority=priority, form_answers=answers,
        # Ids of the resources every bundle repeats, fixed once so concurrent builds agree.
        resource_ids={key: str(uuid.uuid4()) for key in STABLE_RESOURCES},
    )
    for item in clean_attachments(attachments):
        Attachment.objects.create(referral=referral, **item)
    log_event(referral, "sent", f"Referral sent from site {sender_site.number} to {listing.name}.", site=sender_site, via=via)
    notify(referral, "add-service-request", reason_text="Initial")
    return referral


def _locked(referral: Referral) -> Referral:
    return Referral.objects.select_for_update().select_related("sender_site", "receiver_site", "target_listing").get(pk=referral.pk)


@transaction.atomic
def cancel_referral(referral: Referral, site: Site, *, via: str = "portal", reason: str = "") -> Referral:
    """Only the sender cancels (contract §5.3): revoke-service-request to everyone."""
    referral = _locked(referral)
    if site.pk != referral.sender_site_id:
        raise SandboxError("Only the referral's sender can cancel it.", status=403)
    if referral.folder == Referral.Folder.CANCELLED:
        raise SandboxError("This referral is already cancelled.", status=409)
    referral.status = "revoked"
    referral.folder = Referral.Folder.CANCELLED
    referral.status_reason = reason or referral.status_reason
    referral.save(update_fields=["status", "folder", "status_reason", "updated_at"])
    log_event(referral, "cancelled", "Referral cancelled by the sender.", site=site, via=via)
    notify(referral, "revoke-service-request")
    return referral


@transaction.atomic
def send_message(referral: Referral, site: Site, text: str, *, via: str = "portal") -> Message:
    """A message in the referral's thread, from whichever side `site` is."""
    referral = _locked(referral)
    text = (text or "").strip()
    if not text:
        raise SandboxError("Enter a message.", field="text")
    if site.pk == referral.sender_site_id:
        side = Message.Side.SENDER
    elif site.pk == referral.receiver_site_id:
        side = Message.Side.RECEIVER
    else:
        raise SandboxError("This site is not a party to the referral.", status=403)
    message = Message.objects.create(referral=referral, side=side, site=site, text=text, via=via)
    referral.awaiting_reply = side == Message.Side.RECEIVER
    referral.save(update_fields=["awaiting_reply", "updated_at"])
    log_event(referral, "message", f"Message from the {'referrer' if side == 'sender' else 'receiver'}.", site=site, via=via)
    if side == Message.Side.SENDER:
        notify(referral, "send-communication-from-requester", focus="communication")
    else:
        # The receiver's own EMR wrote it (or the portal did): the referrer's copies hear of it.
        notify(referral, "send-communication-from-provider", author="receiver", focus="communication", only={"copy"})
    return message


@transaction.atomic
def edit_referral(referral: Referral, site: Site, *, patient: dict | None = None, reason: str | None = None,
                  answers=None, priority: str | None = None, via: str = "portal") -> Referral:
    """The sender edits the referral: notify-update-service-request to everyone."""
    referral = _locked(referral)
    if site.pk != referral.sender_site_id:
        raise SandboxError("Only the referral's sender can edit it.", status=403)
    if referral.folder == Referral.Folder.CANCELLED:
        raise SandboxError("A cancelled referral cannot be edited.", status=409)
    changed = []
    if patient:
        updates = clean_patient(patient, partial=True)
        if "family" in updates and not updates["family"]:
            raise SandboxError("Enter the patient's last name.", field="patient.family")
        new = {**referral.patient, **updates}
        if new != referral.patient:
            referral.patient = new
            changed.append("patient")
    if reason is not None:
        reason = reason.strip()
        if not reason:
            raise SandboxError("Enter the reason for referral.", field="reason")
        if reason != referral.reason:
            referral.reason = reason
            referral.form_answers = [
                {**a, "answer": reason} if a["link_id"] == "rfr" else a for a in referral.form_answers
            ]
            changed.append("reason")
    if answers is not None:
        referral.form_answers = clean_answers(answers)
        changed.append("answers")
    if priority is not None:
        if priority not in PRIORITIES:
            raise SandboxError("The priority is routine, urgent, asap or stat.", field="priority")
        if priority != referral.priority:
            referral.priority = priority
            changed.append("priority")
    if not changed:
        raise SandboxError("Nothing to change.", status=400)
    referral.save()
    log_event(referral, "edited", f"Referral edited by the sender ({', '.join(changed)}).", site=site, via=via)
    notify(referral, "notify-update-service-request")
    return referral


# --- Bulk resend -------------------------------------------------------------------------------

def bulk_resend(integration: Integration, refs: list[str], mode: str) -> dict:
    """Integrations > Bulk Actions: resend referrals "as a new referral" or "as an updated referral"."""
    if mode not in {"new", "update"}:
        raise SandboxError('Choose "Send as a new referral" or "Send as an updated referral".', field="mode")
    if not refs:
        raise SandboxError("Give at least one referral reference.", field="refs")
    if len(refs) > delivery.BULK_LIMIT:
        raise SandboxError(f"At most {delivery.BULK_LIMIT} referral references at a time.", field="refs")
    event = "add-service-request" if mode == "new" else "notify-update-service-request"
    queued, not_found = [], []
    site = integration.site
    for ref in refs:
        try:
            key = uuid.UUID(ref)
        except ValueError:
            not_found.append(ref)
            continue
        referral = (
            Referral.objects.filter(ref=key).filter(sender_site=site).first()
            or Referral.objects.filter(ref=key, receiver_site=site).first()
        )
        if referral is None:
            not_found.append(ref)
            continue
        with transaction.atomic():
            delivery.enqueue(integration, referral, event, reason="resend", reason_text="Initial" if mode == "new" else "")
            log_event(
                referral, "resent",
                f"Resent to integration {integration.name} as {'a new' if mode == 'new' else 'an updated'} referral.",
                site=site, via="system",
            )
        queued.append(str(referral.ref))
    return {"queued": queued, "not_found": not_found, "event": event}
