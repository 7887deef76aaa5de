"""Where Ocean must send a clinic's referrals: the Request URL shown on the settings page."""
from django.conf import settings
from django.utils.translation import gettext_lazy as _

INBOUND_PATH = "/public/ocean/fhir_bundles"


def inbound_request_url(clinic) -> str:
    """https://<the clinic's first domain>/public/ocean/fhir_bundles, else HARBOUR_PUBLIC_URL + the path."""
    domain = clinic.domains.order_by("pk").values_list("domain", flat=True).first()
    if domain:
        return f"https://{domain}{INBOUND_PATH}"
    return f"{settings.HARBOUR_PUBLIC_URL}{INBOUND_PATH}"


def rejection_help(ocean) -> dict | None:
    """What the settings page says about the last call Harbour refused: why, in words an
    administrator can act on, and whether it is still the latest news (no message accepted since)."""
    if not ocean.last_rejected_at:
        return None
    return {
        "reason": _REJECTION_REASONS.get(ocean.last_rejected_status, ""),
        "current": ocean.last_inbound_at is None or ocean.last_rejected_at > ocean.last_inbound_at,
    }


_REJECTION_REASONS = {
    401: _(
        "Ocean's key was missing or is not the key generated here. In Ocean, paste the current key in the "
        "integration (Menu > Admin > Integrations), or generate a new key here and paste that one."
    ),
    429: _(
        "Too many refused calls came from the same address, so Harbour refused its calls for a while. "
        "Correct the key in Ocean; Ocean sends them again on its own."
    ),
    413: _("The message was larger than the limit this Harbour accepts. Ask whoever runs Harbour to raise it."),
    415: _("The call was not a FHIR message: check that the integration's Payload Type is FHIR v0.11.1."),
    400: _("The call was not a FHIR message: check that the integration's Payload Type is FHIR v0.11.1."),
    405: _("The call did not send a referral: check the integration's Request URL."),
}
