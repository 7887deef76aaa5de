"""Response headers Django 5.2 does not set by itself: Content-Security-Policy, Permissions-Policy.

The policy is written for Harbour's own templates (checked: no inline script, style or event
handler; one script file, one style sheet). Other URL confs run from these settings (the
sandbox) serve other pages and are left alone.
"""
from django.conf import settings
from django.core.exceptions import MiddlewareNotUsed


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        if settings.ROOT_URLCONF != "harbour.urls":
            raise MiddlewareNotUsed
        self.get_response = get_response
        self.headers = {
            name: value
            for name, value in (
                ("Content-Security-Policy", settings.HARBOUR_CONTENT_SECURITY_POLICY),
                ("Permissions-Policy", settings.HARBOUR_PERMISSIONS_POLICY),
            )
            if value
        }

    def __call__(self, request):
        response = self.get_response(request)
        for name, value in self.headers.items():
            response.headers.setdefault(name, value)
        return response
