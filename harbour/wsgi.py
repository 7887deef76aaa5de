"""WSGI entry point: the site, and a lean route for Ocean's deliveries.

Ocean's POST /public/ocean/fhir_bundles is machine-to-machine and hot (issue #3 asks it to
run at >= 0.8 of a Django view that only stores the body). Through the site's handler it paid
for the whole middleware stack: sessions, locale, CSRF, auth, messages, static files, URL
resolution over every app, none of which the endpoint uses (it is CSRF-exempt, has no session
or user, answers in English FHIR). So the exact endpoint paths go to a second Django handler:

- same settings, same view, same signals (request_started/finished: connections are managed
  as usual), same exception-to-response conversion;
- the middleware is settings.MIDDLEWARE minus SITE_ONLY_MIDDLEWARE below. Everything else is
  kept, so the request id and access line (harbour.core.logging), the security headers,
  CommonMiddleware (ALLOWED_HOSTS is enforced with a 400, and Content-Length is set) and
  X-Frame-Options stay identical; a middleware added later is kept unless it is listed here;
- no URL resolution: the dispatcher matched the path already.

Dropping LocaleMiddleware removes `Content-Language`/`Vary: Accept-Language` from these answers
(their text is English whatever the language). Everything else the caller sees (status codes,
OperationOutcomes, headers, logs) is the same on both routes: tests/intake/test_lean_route.py
compares them over real HTTP.
"""
import ctypes
import os

from django.core.exceptions import MiddlewareNotUsed
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application
from django.urls import NoReverseMatch, ResolverMatch, reverse
from django.utils.module_loading import import_string

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "harbour.settings")

# Middleware the intake endpoint does not need (see the module docstring).
SITE_ONLY_MIDDLEWARE = frozenset({
    "harbour.core.health.ProbeMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
})


def return_large_blocks_to_the_system(threshold: int = 1024 * 1024) -> bool:
    """Serve blocks above `threshold` bytes from their own mappings, returned to the system when freed.

    glibc's default threshold moves up to the size of the last large block freed (up to 32 MB):
    after one 25 MB delivery, later ones were carved from the heap and thread arenas, which keep
    the memory, so each burst of large bundles left the web worker holding hundreds of MB.
    Setting the threshold fixes it (mallopt turns the moving threshold off). Elsewhere than glibc: nothing.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_mmap_threshold = -3
    return bool(libc.mallopt(m_mmap_threshold, threshold))


class IntakeHandler(WSGIHandler):
    """Django's WSGI handler for the intake endpoint only: lean middleware, no URL resolution."""

    def __init__(self, view, url_name: str, route: str):
        self.match = ResolverMatch(view, (), {}, url_name=url_name, app_names=["intake"], namespaces=["intake"],
                                   route=route)
        super().__init__()

    def load_middleware(self, is_async=False):
        # BaseHandler.load_middleware for a sync stack, over the lean list instead of settings.MIDDLEWARE.
        from django.conf import settings

        self._view_middleware, self._template_response_middleware, self._exception_middleware = [], [], []
        self.middleware = []  # the paths in use, outermost first
        handler = convert_exception_to_response(self._get_response)
        for path in reversed([p for p in settings.MIDDLEWARE if p not in SITE_ONLY_MIDDLEWARE]):
            try:
                instance = import_string(path)(handler)
            except MiddlewareNotUsed:
                continue
            if hasattr(instance, "process_view"):
                self._view_middleware.insert(0, instance.process_view)
            if hasattr(instance, "process_template_response"):
                self._template_response_middleware.append(instance.process_template_response)
            if hasattr(instance, "process_exception"):
                self._exception_middleware.append(instance.process_exception)
            handler = convert_exception_to_response(instance)
            self.middleware.insert(0, path)
        self._middleware_chain = handler

    def resolve_request(self, request):
        request.resolver_match = self.match
        return self.match


def build():
    return_large_blocks_to_the_system()
    site = get_wsgi_application()
    from harbour.intake import views

    try:
        path = reverse("intake:fhir_bundles")  # "/public/ocean/fhir_bundles" (the route takes an optional "/")
    except NoReverseMatch:  # the sandbox's settings serve this module too, and have no intake endpoint
        return site
    intake = IntakeHandler(views.fhir_bundles, "fhir_bundles", path.lstrip("/"))
    intake_paths = frozenset({path.rstrip("/"), path.rstrip("/") + "/"})

    def application(environ, start_response):
        handler = intake if environ.get("PATH_INFO") in intake_paths else site
        return handler(environ, start_response)

    application.site, application.intake, application.intake_paths = site, intake, intake_paths
    return application


application = build()
