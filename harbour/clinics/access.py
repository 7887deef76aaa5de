"""Access rules for staff views: signed in, and a member of the request's clinic."""
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404


def current_clinic(request):
    """The request's clinic, or 404 when this host serves none."""
    clinic = request.clinic
    if clinic is None or not getattr(clinic, "pk", None):
        raise Http404("No clinic is served at this address.")
    return clinic


def staff_view(view=None, *, permission: str | None = None):
    """Signed-in staff of this host's clinic; with `permission`, only users who hold it (else 403)."""

    def decorate(func):
        @wraps(func)
        @login_required
        def wrapper(request, *args, **kwargs):
            clinic = current_clinic(request)
            if request.user.clinic_id != clinic.pk:
                raise PermissionDenied
            if permission and not request.user.has_perm(permission):
                raise PermissionDenied
            return func(request, *args, **kwargs)

        return wrapper

    return decorate(view) if view is not None else decorate
