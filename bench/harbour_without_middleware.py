"""Harbour's settings with only the tenancy middleware: for `bench/intake.py --without-middleware`.

Shows what the site-wide middleware stack (security, static files, sessions, locale, CSRF,
auth, messages, clickjacking) costs the intake endpoint. Not a supported configuration.
"""
from harbour.settings import *  # noqa: F401,F403

MIDDLEWARE = ["harbour.clinics.tenancy.ClinicMiddleware"]
