"""The sandbox's settings, read with defaults so the app also works under Harbour's settings
(its in-process tests run there and override what they need)."""
from django.conf import settings


def public_url() -> str:
    """The address the sandbox is reached at: root of naming systems and $letter URLs."""
    return getattr(settings, "SANDBOX_PUBLIC_URL", "http://localhost:8081").rstrip("/")


def fhir_base() -> str:
    return public_url() + "/svc/fhir/v1"


def naming_system(suffix: str) -> str:
    return f"{fhir_base()}/NamingSystem/{suffix}"


def time_scale() -> float:
    """How much faster than real time the retry schedule runs (60: an hour in a minute)."""
    scale = float(getattr(settings, "SANDBOX_TIME_SCALE", 1) or 1)
    return scale if scale > 0 else 1.0


def token_lifetime_seconds() -> int:
    return int(getattr(settings, "SANDBOX_TOKEN_LIFETIME_SECONDS", 3600))


def delivery_timeout_seconds() -> float:
    return float(getattr(settings, "SANDBOX_DELIVERY_TIMEOUT_SECONDS", 10))


def admin_token() -> str:
    return getattr(settings, "SANDBOX_ADMIN_TOKEN", "") or ""
