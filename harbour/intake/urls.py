from django.urls import re_path

from harbour.intake import views

app_name = "intake"

urlpatterns = [
    # With or without the trailing slash: a POST must never meet an APPEND_SLASH redirect.
    re_path(r"^fhir_bundles/?$", views.fhir_bundles, name="fhir_bundles"),
]
