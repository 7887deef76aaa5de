"""The clinic's audit log, for its administrators."""
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from harbour.audit import labels
from harbour.audit.models import AuditEntry
from harbour.clinics.access import current_clinic, staff_view

READER_PERMISSIONS = ("clinics.manage_clinic_users", "clinics.manage_consultation_settings")
PAGE_SIZE = 50


@staff_view
@require_http_methods(["GET"])
def log(request):
    if not any(request.user.has_perm(permission) for permission in READER_PERMISSIONS):
        raise PermissionDenied
    clinic = current_clinic(request)
    entries = AuditEntry.objects.filter(clinic=clinic).order_by("-created_at", "-id")
    page = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [
        {"entry": entry, "label": labels.action_label(entry.action), "details": labels.details(entry.action, entry.details)}
        for entry in page.object_list
    ]
    return render(request, "audit/log.html", {"page": page, "rows": rows})
