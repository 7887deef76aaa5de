"""Security headers on every page, secure cookies behind TLS, CSRF everywhere but the Ocean
endpoint, and templates that keep the strict Content-Security-Policy true."""
import re
from pathlib import Path

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from tests.conftest import PASSWORD
from tests.intake.intake_client import URL as INTAKE_URL

pytestmark = pytest.mark.django_db

HARBOUR = Path(__file__).resolve().parents[2] / "harbour"


def test_pages_carry_the_security_headers(admin_client):
    response = admin_client.get("/referrals/")
    assert response.status_code == 200
    csp = dict(part.strip().split(" ", 1) for part in response["Content-Security-Policy"].split(";"))
    assert csp["default-src"] == csp["script-src"] == csp["style-src"] == "'self'"
    assert csp["object-src"] == "'none'" and csp["frame-ancestors"] == "'none'" and csp["form-action"] == "'self'"
    assert "unsafe" not in response["Content-Security-Policy"]
    assert "camera=()" in response["Permissions-Policy"] and "geolocation=()" in response["Permissions-Policy"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["Cross-Origin-Opener-Policy"] == "same-origin"


def test_the_ocean_endpoint_and_the_probes_carry_them_too():
    for response in (Client().post(INTAKE_URL, b"{}", content_type="application/fhir+json"), Client().get("/healthz")):
        assert response["Content-Security-Policy"].startswith("default-src 'self'")
        assert response["X-Content-Type-Options"] == "nosniff"


def test_hsts_is_sent_over_https_in_production(settings, production_settings):
    assert production_settings["SECURE_HSTS_SECONDS"] >= 31536000
    settings.SECURE_HSTS_SECONDS = production_settings["SECURE_HSTS_SECONDS"]
    assert Client().get("/healthz", secure=True)["Strict-Transport-Security"] == "max-age=31536000"
    assert "Strict-Transport-Security" not in Client().get("/healthz")  # never over plain HTTP


def test_cookies_are_secure_behind_tls_in_production(production_settings, settings, admin_user):
    assert production_settings["SESSION_COOKIE_SECURE"] is True
    assert production_settings["CSRF_COOKIE_SECURE"] is True
    assert production_settings["SESSION_COOKIE_HTTPONLY"] is True
    assert production_settings["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]
    assert production_settings["DEBUG"] is False
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    client = Client(HTTP_HOST="soleil.example.org", HTTP_X_FORWARDED_PROTO="https")
    client.get("/accounts/login/")
    token = client.cookies["csrftoken"].value
    response = client.post("/accounts/login/", {"username": admin_user.username, "password": PASSWORD,
                                                 "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert client.cookies["sessionid"]["secure"] and client.cookies["sessionid"]["httponly"]
    assert client.cookies["csrftoken"]["secure"]


def test_https_redirect_is_opt_in_and_spares_the_probes(settings):
    assert settings.SECURE_SSL_REDIRECT is False
    settings.SECURE_SSL_REDIRECT = True
    client = Client()
    response = client.get("/accounts/login/")
    assert response.status_code == 301 and response["Location"].startswith("https://")
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code in (200, 503)


def _views(resolver=None, prefix=""):
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            yield from _views(entry, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry.callback


def test_only_the_ocean_endpoint_is_exempt_from_csrf():
    exempt = sorted(path for path, view in _views() if getattr(view, "csrf_exempt", False))
    assert exempt == ["public/ocean/^fhir_bundles/?$"]  # the intake view, with or without the slash


def test_a_post_without_a_csrf_token_is_refused_and_the_ocean_endpoint_is_not(admin_user):
    client = Client(HTTP_HOST="soleil.example.org", enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert client.post("/settings/consultations/ocean/", {"site_number": "1"}).status_code == 403
    assert client.post("/accounts/logout/").status_code == 403
    # Ocean has no CSRF token: it is refused for its missing key (401), not for CSRF.
    anonymous = Client(enforce_csrf_checks=True)
    assert anonymous.post(INTAKE_URL, b"{}", content_type="application/fhir+json").status_code == 401


INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I), "an inline <script>"),
    (re.compile(r"<style\b", re.I), "a <style> element"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "an on* event handler"),
    (re.compile(r"\sstyle\s*=", re.I), "a style attribute"),
    (re.compile(r"javascript:", re.I), "a javascript: URL"),
]


def test_harbour_templates_need_nothing_the_policy_forbids():
    """The policy has no 'unsafe-inline': a template that needs it would break in the browser.

    The sandbox is served by its own settings and URL conf, without this policy."""
    templates = [p for p in HARBOUR.rglob("templates/**/*.html") if "sandbox" not in p.parts]
    assert len(templates) > 10
    found = []
    for path in templates:
        text = path.read_text()
        found += [f"{path.relative_to(HARBOUR)}: {what}" for pattern, what in INLINE if pattern.search(text)]
    assert not found, found
