"""The receiving site's staff working a referral in Ocean's portal, not through their EMR.

Ocean's portal offers the current receiver Accept, Decline (with a reason), Book an appointment
(date, time, duration; Booking Confirmed or Unconfirmed) and Cancel the appointment (contract
§5.1, §5.2). Each makes exactly the change the equivalent EMR message makes through
`$process-messages` (the same code paths in emr_events: a Task `accepted` or `rejected` with its
statusReason, an Appointment with a date, or cancelled), and Ocean reports it to every integration
of the referral as notify-update-service-request (§2.1), the receiver's own EMR included.

Only the referral's current receiver may do these (§5.4); the sender, or any other site, is
refused (403), and nothing changes on a referral its sender cancelled (409).
"""
from datetime import date, datetime, time, timedelta

from django.db import transaction
from django.utils import timezone

from harbour.sandbox import emr_events
from harbour.sandbox.errors import SandboxError
from harbour.sandbox.models import Referral, Site

MIN_MINUTES, MAX_MINUTES = 5, 8 * 60
NOT_RECEIVER = "Only the referral's current receiver can accept, decline or book it (the sender cannot)."


def _locked(referral: Referral) -> Referral:
    return Referral.objects.select_for_update().select_related("sender_site", "receiver_site", "target_listing").get(pk=referral.pk)


def _refused(exc: "emr_events.Refusal") -> SandboxError:
    """An EMR-message refusal as staff hear it: a 422 (the message was wrong) is a 409 here (the
    referral's state does not allow it)."""
    return SandboxError(exc.message, status=409 if exc.status == 422 else exc.status)


def check_receiver(referral: Referral, site: Site) -> None:
    """§5.4 as the portal and the admin API answer it: 403 for any site but the current receiver,
    409 once the sender cancelled the referral."""
    if site.pk != referral.receiver_site_id:
        raise SandboxError(NOT_RECEIVER, status=403)
    try:
        emr_events.receiver_only(site, referral)
    except emr_events.Refusal as exc:
        raise _refused(exc) from None


def _change(referral: Referral, site: Site, apply) -> Referral:
    """Lock, check §5.4, apply through emr_events, then report it to every integration."""
    with transaction.atomic():
        referral = _locked(referral)
        check_receiver(referral, site)
        try:
            apply(referral)
        except emr_events.Refusal as exc:
            raise _refused(exc) from None
        emr_events.echo(referral, "receiver")
    return referral


def accept(referral: Referral, site: Site, *, via: str = "portal") -> Referral:
    """Accept: Task `accepted`, Pending Booking."""
    return _change(referral, site, lambda r: emr_events.set_task_status(site, r, "accepted", via=via))


def decline(referral: Referral, site: Site, reason: str, *, via: str = "portal") -> Referral:
    """Decline with a reason: Task `rejected`, statusReason.text = the reason, Declined."""
    check_receiver(referral, site)  # the role first: the sender hears "not yours", not "enter a reason"
    reason = (reason or "").strip() if isinstance(reason, str) else ""
    if not reason:
        raise SandboxError("Enter the reason for declining.", field="reason")
    if len(reason) > 1000:
        raise SandboxError("The reason for declining is at most 1000 characters.", field="reason")
    return _change(referral, site, lambda r: emr_events.set_task_status(site, r, "rejected", reason, via=via))


def appointment_start(day, at) -> datetime:
    """A date (YYYY-MM-DD) and a time (HH:MM) in the sandbox's time zone, as an aware datetime."""
    if not isinstance(day, date):
        try:
            day = date.fromisoformat(str(day or "").strip())
        except ValueError:
            raise SandboxError("Enter the appointment's date as YYYY-MM-DD.", field="date") from None
    if not isinstance(at, time):
        try:
            at = time.fromisoformat(str(at or "").strip())
        except ValueError:
            raise SandboxError("Enter the appointment's time as HH:MM.", field="time") from None
    return timezone.make_aware(datetime.combine(day, at.replace(tzinfo=None)), timezone.get_current_timezone())


def clean_minutes(duration) -> int:
    if isinstance(duration, bool):
        duration = None
    try:
        minutes = int(str(duration).strip()) if not isinstance(duration, int) else duration
    except (TypeError, ValueError):
        minutes = None
    if minutes is None or not MIN_MINUTES <= minutes <= MAX_MINUTES:
        raise SandboxError(f"The duration is a number of minutes from {MIN_MINUTES} to {MAX_MINUTES}.", field="duration")
    return minutes


def book(referral: Referral, site: Site, *, start: datetime, minutes: int, confirmed: bool, instruction: str = "",
         via: str = "portal") -> Referral:
    """Book (or rebook) the appointment: Booked, Booking Confirmed or Unconfirmed."""
    check_receiver(referral, site)
    minutes = clean_minutes(minutes)
    if not isinstance(start, datetime) or timezone.is_naive(start):
        raise SandboxError("The appointment needs a date and a time.", field="date")
    instruction = (instruction or "").strip() if isinstance(instruction, str) else ""
    return _change(referral, site, lambda r: emr_events.change_appointment(
        site, r, status="booked", start=start, end=start + timedelta(minutes=minutes), instruction=instruction,
        confirmed=bool(confirmed), via=via,
    ))


def cancel_appointment(referral: Referral, site: Site, *, via: str = "portal") -> Referral:
    """Cancel the booked appointment: Pending Booking (Ocean then sends the Appointment undated, §5.2)."""
    return _change(referral, site, lambda r: emr_events.change_appointment(
        site, r, status="cancelled", start=None, end=None, via=via,
    ))


def current_appointment(referral: Referral):
    """The booked appointment staff may cancel, if any."""
    return referral.appointments.filter(cancelled=False, start__isnull=False).order_by("-id").first()
