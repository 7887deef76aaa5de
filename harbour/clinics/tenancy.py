"""Which clinic a request is for: the one whose domain matches the host.

A deployment with a single clinic needs no domain: that clinic serves every host.
"""
from django.utils.functional import SimpleLazyObject

from harbour.clinics.models import Clinic, ClinicDomain


def clinic_for_host(host: str) -> Clinic | None:
    domain = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    domain = domain.strip().lower().rstrip(".")
    match = ClinicDomain.objects.select_related("clinic").filter(domain=domain).first()
    if match:
        return match.clinic
    only = list(Clinic.objects.all()[:2])
    return only[0] if len(only) == 1 else None


def _request_clinic(request) -> Clinic | None:
    try:
        host = request.get_host()
    except Exception:  # DisallowedHost and the like: no clinic, the view decides.
        return None
    return clinic_for_host(host)


class ClinicMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.clinic = SimpleLazyObject(lambda: _request_clinic(request))
        return self.get_response(request)
