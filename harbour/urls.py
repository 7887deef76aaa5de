from django.contrib import admin
from django.urls import include, path

from harbour.core import health, views as core_views

urlpatterns = [
    path("", core_views.home, name="home"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("public/ocean/", include("harbour.intake.urls")),
    path("settings/", include("harbour.clinics.urls")),
    path("audit/", include("harbour.audit.urls")),
    path("referrals/", include("harbour.referrals.urls")),
    path("ocean/", include("harbour.ocean.urls")),
    path("patients/", include("harbour.patients.urls")),
]

# Refusals raised before any view (a Host header not allowed): see the handler.
handler400 = "harbour.core.views.bad_request"
