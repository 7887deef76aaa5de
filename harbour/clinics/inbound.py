"""Where Ocean must send a clinic's referrals: the Request URL shown on the settings page."""
from django.conf import settings

INBOUND_PATH = "/public/ocean/fhir_bundles"


def inbound_request_url(clinic) -> str:
    """https://<the clinic's first domain>/public/ocean/fhir_bundles, else HARBOUR_PUBLIC_URL + the path."""
    domain = clinic.domains.order_by("pk").values_list("domain", flat=True).first()
    if domain:
        return f"https://{domain}{INBOUND_PATH}"
    return f"{settings.HARBOUR_PUBLIC_URL}{INBOUND_PATH}"
