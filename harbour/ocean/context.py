"""Template context: the banner shown on every page while Ocean refuses the clinic's OAuth credentials
(seen by the outbox, or by the document fetcher: a clinic may receive referrals and send nothing)."""
from functools import cache

SETTINGS_PERMISSION = "clinics.manage_consultation_settings"


def credentials_banner(request):
    """`ocean_credentials_rejected`: computed only when base.html asks, for those who can fix the settings."""
    user = getattr(request, "user", None)
    clinic = getattr(request, "clinic", None)
    if (user is None or not user.is_authenticated or clinic is None
            or user.clinic_id != getattr(clinic, "pk", None)):
        return {"ocean_credentials_rejected": False}

    @cache
    def rejected() -> bool:  # at most one query a request, and none on pages that do not ask
        if not user.has_perm(SETTINGS_PERMISSION):
            return False
        from . import documents, outbox

        return outbox.credentials_rejected(clinic) or documents.credentials_rejected(clinic)

    return {"ocean_credentials_rejected": rejected}
