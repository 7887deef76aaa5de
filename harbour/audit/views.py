"""The clinic's audit log, for its administrators."""
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from harbour.audit.models import AuditEntry
from harbour.clinics.access import current_clinic, staff_view

READER_PERMISSIONS = ("clinics.manage_clinic_users", "clinics.manage_consultation_settings")
PAGE_SIZE = 50

# What a person reads for the actions Harbour records; unknown actions show their code.
ACTION_LABELS = {
    "clinic.created": _("Clinic created"),
    "user.created": _("User added"),
    "user.permission_granted": _("Permission granted"),
    "user.permission_revoked": _("Permission revoked"),
    "ocean_settings.changed": _("Ocean settings changed"),
    "ocean_settings.inbound_key_generated": _("Inbound key generated"),
}
DETAIL_LABELS = {
    "fields": _("fields"),
    "permission": _("permission"),
    "permissions": _("permissions"),
    "user_id": _("user"),
    "replaced": _("replaced the previous key"),
    "change": _("change"),
    "domains": _("domains"),
}
VALUE_LABELS = {
    True: _("yes"),
    False: _("no"),
    "granted": _("granted"),
    "revoked": _("revoked"),
}


def _details(details: dict) -> list[tuple[str, str]]:
    rows = []
    for key, value in (details or {}).items():
        if isinstance(value, (list, tuple)):
            shown = ", ".join(str(item) for item in value) or "—"
        else:
            shown = VALUE_LABELS.get(value, value) if isinstance(value, (bool, str)) else value
        rows.append((DETAIL_LABELS.get(key, key), shown))
    return rows


@staff_view
@require_http_methods(["GET"])
def log(request):
    if not any(request.user.has_perm(permission) for permission in READER_PERMISSIONS):
        raise PermissionDenied
    clinic = current_clinic(request)
    entries = AuditEntry.objects.filter(clinic=clinic).order_by("-created_at", "-id")
    page = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [
        {"entry": entry, "label": ACTION_LABELS.get(entry.action, entry.action), "details": _details(entry.details)}
        for entry in page.object_list
    ]
    return render(request, "audit/log.html", {"page": page, "rows": rows})
