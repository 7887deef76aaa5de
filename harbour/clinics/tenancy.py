"""Which clinic a request is for: the one whose domain matches the host.

A clinic without a domain serves every host no clinic claims, as long as it is the only clinic
without one: a single clinic needs no domain, and adding a second clinic with its own domain
leaves the first one where its staff already reach it. `harbour create-clinic` refuses a second
clinic without a domain, which would leave both unreachable.
"""
from django.utils.functional import SimpleLazyObject

from harbour.clinics.models import Clinic, ClinicDomain, domain_of_host


def clinic_for_host(host: str) -> Clinic | None:
    match = ClinicDomain.objects.select_related("clinic").filter(domain=domain_of_host(host)).first()
    if match:
        return match.clinic
    domainless = list(Clinic.objects.filter(domains__isnull=True)[:2])
    return domainless[0] if len(domainless) == 1 else None


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
