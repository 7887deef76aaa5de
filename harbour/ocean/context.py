"""Template context: the banners about Harbour's link with Ocean, shown on every page.

- while Ocean refuses the clinic's OAuth credentials (seen by the outbox, or by the document
  fetcher: a clinic may receive referrals and send nothing), to those who can correct them;
- while the worker (`harbour worker`) is not running and the clinic's messages wait for it, to
  everyone of the clinic: the intake keeps storing what Ocean sends, but no referral appears and
  no update leaves until it runs again, and staff would otherwise see nothing wrong.
"""
from datetime import timedelta
from functools import cache

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

SETTINGS_PERMISSION = "clinics.manage_consultation_settings"


def _own_clinic(request):
    """The request's clinic when a signed-in user of that clinic asks, else None."""
    user = getattr(request, "user", None)
    clinic = getattr(request, "clinic", None)
    if (user is None or not user.is_authenticated or clinic is None
            or user.clinic_id != getattr(clinic, "pk", None)):
        return None
    return clinic


def credentials_banner(request):
    """`ocean_credentials_rejected`: computed only when base.html asks, for those who can fix the settings."""
    clinic = _own_clinic(request)
    if clinic is None:
        return {"ocean_credentials_rejected": False}
    user = request.user

    @cache
    def rejected() -> bool:  # at most one query a request, and none on pages that do not ask
        if not user.has_perm(SETTINGS_PERMISSION):
            return False
        from . import documents, outbox

        return outbox.credentials_rejected(clinic) or documents.credentials_rejected(clinic)

    return {"ocean_credentials_rejected": rejected}


def worker_banner(request):
    """`processing_waits`: None, or what waits for the stopped worker (computed only when base.html asks)."""
    clinic = _own_clinic(request)
    if clinic is None:
        return {"processing_waits": None}

    @cache
    def waits() -> dict | None:  # one query a page while the worker beats; three when it does not
        return processing_waits(clinic)

    return {"processing_waits": waits}


def processing_waits(clinic) -> dict | None:
    """While no worker has beaten for HARBOUR_WORKER_STALE_SECONDS (as /readyz says "stale"): the
    clinic's messages that have waited for one longer than that. None when nothing waits."""
    from harbour.core.models import WorkerHeartbeat
    from harbour.intake.models import InboundMessage

    from .models import OutboundMessage

    now = timezone.now()
    since = now - timedelta(seconds=settings.HARBOUR_WORKER_STALE_SECONDS)
    last_beat = WorkerHeartbeat.latest()
    if last_beat is not None and last_beat > since:
        return None
    inbound = InboundMessage.objects.filter(clinic=clinic, state=InboundMessage.State.PENDING)
    received = inbound.filter(received_at__lte=since).count()
    # Updates queued, or failed and due for their retry, before the worker's grace period.
    outbound = OutboundMessage.objects.filter(
        Q(state=OutboundMessage.State.PENDING, created_at__lte=since)
        | Q(state=OutboundMessage.State.FAILED, next_attempt_at__lte=since), clinic=clinic).count()
    if not received and not outbound:
        return None
    return {"received": received, "outbound": outbound, "last_beat": last_beat}
