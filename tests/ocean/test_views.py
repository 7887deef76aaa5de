"""Settings-page additions: the connection test, the outbox summary and failures page, retry now."""
import pytest
from django.template import Context, RequestContext, Template
from django.test import RequestFactory
from django.urls import reverse

from harbour.audit.models import AuditEntry
from harbour.ocean import actions
from harbour.ocean.models import OutboundMessage
from tests.conftest import client_for
from tests.ocean.conftest import configure, make_referral
from tests.ocean.test_client import closed_port_url


def test_connection_test_needs_permission(staff_client, other_admin, clinic, fake_ocean):
    configure(clinic, fake_ocean.url)
    assert staff_client.post(reverse("ocean:test_connection")).status_code == 403
    # An admin of another clinic, on this clinic's host: refused too.
    assert client_for(other_admin, "soleil.example.org").post(reverse("ocean:test_connection")).status_code == 403
    assert fake_ocean.requests == []


def test_connection_test_is_post_only(admin_client):
    assert admin_client.get(reverse("ocean:test_connection")).status_code == 405


@pytest.mark.parametrize("settings_kw, english, french", [
    ({}, "Harbour can reach Ocean with your OAuth credentials", "Harbour peut joindre Ocean avec vos identifiants OAuth"),
    ({"client_id": "nope"}, "Ocean does not know this Client ID", "Ocean ne connaît pas cet identifiant client"),
    ({"secret": "nope-secret"}, "refused the Secret", "a refusé le secret"),
    ({"unreachable": True}, "Ocean could not be reached", "Impossible de joindre Ocean"),
])
def test_connection_test_results(admin_user, clinic, fake_ocean, settings_kw, english, french):
    url = closed_port_url() if settings_kw.pop("unreachable", False) else fake_ocean.url
    configure(clinic, url, **settings_kw)
    for language, text in (("en", english), ("fr", french)):
        client = client_for(admin_user, "soleil.example.org")
        client.cookies["django_language"] = language
        response = client.post(reverse("ocean:test_connection"), follow=True)
        assert response.status_code == 200
        assert response.redirect_chain[-1][0] == reverse("clinics:ocean_settings")
        assert text in response.content.decode()
        assert "nope-secret" not in response.content.decode()  # the secret is never shown back
    entry = AuditEntry.objects.filter(action="ocean.connection_tested").last()
    assert entry.details["result"] in ("works", "wrong_client_id", "wrong_secret", "unreachable")
    assert "nope" not in str(entry.details)  # ids and codes only


def test_settings_panel_summary_and_link(admin_user, clinic, fake_ocean, rf=None):
    configure(clinic, fake_ocean.url)
    referral = make_referral(clinic)
    message = actions.accept(referral, admin_user)
    request = RequestFactory().get("/", HTTP_HOST="soleil.example.org")
    request.clinic, request.user = clinic, admin_user
    template = Template('{% include "ocean/settings_panel.html" %}')
    html = template.render(RequestContext(request, {}))
    assert reverse("ocean:test_connection") in html
    assert reverse("ocean:outbox_failures") not in html  # nothing failed
    OutboundMessage.objects.filter(pk=message.pk).update(state="dead", last_error="Ocean answered 500")
    html = template.render(RequestContext(request, {}))
    assert reverse("ocean:outbox_failures") in html
    assert Template('{% include "ocean/settings_panel.html" %}').render(Context({})).count("<form") == 1


def test_settings_page_renders_with_panel(admin_client):
    """The settings page still renders (the panel is included there by its owner)."""
    assert admin_client.get(reverse("clinics:ocean_settings")).status_code == 200


def test_failures_page_and_retry_now(admin_client, staff_client, admin_user, clinic, other_clinic, fake_ocean):
    configure(clinic, fake_ocean.url)
    referral = make_referral(clinic)
    message = actions.accept(referral, admin_user)
    OutboundMessage.objects.filter(pk=message.pk).update(
        state="rejected", last_status=422, last_error="You are not the current receiver")
    assert staff_client.get(reverse("ocean:outbox_failures")).status_code == 403
    page = admin_client.get(reverse("ocean:outbox_failures"), HTTP_ACCEPT_LANGUAGE="en")
    body = page.content.decode()
    assert page.status_code == 200 and "You are not the current receiver" in body and "422" in body
    retry_url = reverse("ocean:retry_message", args=[message.pk])
    assert retry_url not in body  # a refusal is final: no "retry now"
    admin_client.post(retry_url)
    message.refresh_from_db()
    assert message.state == "rejected"
    OutboundMessage.objects.filter(pk=message.pk).update(state="dead", last_error="Ocean answered 500")
    assert retry_url in admin_client.get(reverse("ocean:outbox_failures")).content.decode()
    assert staff_client.post(retry_url).status_code == 403
    assert admin_client.get(retry_url).status_code == 405
    response = admin_client.post(retry_url)
    assert response.status_code == 302
    message.refresh_from_db()
    assert message.state == "pending"
    # Another clinic's message is not found from this clinic.
    other_ref = make_referral(other_clinic, "0b0b0b0b-1111-2222-3333-444444444444", snapshot=False)
    foreign = OutboundMessage.objects.create(clinic=other_clinic, referral=other_ref, kind="accept",
                                             event_code="x", bundle={}, state="dead")
    assert admin_client.post(reverse("ocean:retry_message", args=[foreign.pk])).status_code == 404
    foreign.refresh_from_db()
    assert foreign.state == "dead"
