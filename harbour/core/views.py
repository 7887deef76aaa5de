from django.http import JsonResponse
from django.shortcuts import render

from harbour.clinics.access import staff_view


@staff_view
def home(request):
    return render(request, "core/home.html")


def healthz(request):
    """Liveness: the process answers. Readiness (database, worker) is /readyz."""
    return JsonResponse({"status": "ok"})
