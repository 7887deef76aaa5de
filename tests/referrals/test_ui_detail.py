"""The referral page: what it shows, its sync banner and timeline states, documents, read marks."""
import html

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone

from harbour.referrals.staleness import state_token
from harbour.core.worker import run_until_idle
from harbour.ocean.models import OutboundMessage
from harbour.referrals.models import Attachment, Event, Referral, ReferralRead
from tests.conftest import client_for
from tests.ocean.conftest import configure, make_referral
from tests.referrals import bundles as B

PDF = b"%PDF-1.4\n% a letter\n%%EOF\n"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"}}


@pytest.fixture
def ocean(clinic):
    return configure(clinic, "https://ocean.example.org")


@pytest.fixture
def referral(clinic, ocean):
    return make_referral(clinic, patient_family="Tremblay", patient_given="Marie")


def page_of(client, referral, lang="en"):
    response = client.get(reverse("referrals:detail", args=[referral.pk]), HTTP_ACCEPT_LANGUAGE=lang)
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def test_everything_ocean_sent_is_shown(staff_client, clinic, ocean):
    # No OAuth credentials: the worker's document fetch stops before any network call.
    ocean.oauth_client_id = ""
    ocean.save()
    B.store(clinic, B.load())
    B.store(clinic, B.variant(B.FULL, timestamp="2025-06-03T09:15:00-04:00"))
    run_until_idle()
    referral = Referral.objects.get(clinic=clinic)
    page = page_of(staff_client, referral)
    for text in ("Doug Kavanagh", "98765", "Kavanagh Family Practice", "Autorouter Test", "Urgent",
                 "Back pain with no red flags", "xray.png", "Any update on this referral?",
                 "Bring your health card.", "Patient chart", "Ocean folder:"):
        assert text in page, text
    assert '<details>' in page  # hidden form items folded away
    expected = f"https://ocean.example.org/ocean/portal.html?siteNum=1234#/referrals/{B.REF}/edit"
    assert f'href="{expected}"' in page
    assert 'data-sync="received"' in page and "received from Ocean" in page
    assert 'id="not-synced"' not in page


def test_view_in_ocean_uses_the_configured_server(staff_client, clinic, referral, ocean):
    ocean.custom_server_url = "http://127.0.0.1:8123"
    ocean.save()
    page = page_of(staff_client, referral)
    assert f'href="http://127.0.0.1:8123/ocean/portal.html?siteNum=1234#/referrals/{referral.ocean_ref}/edit"' in page


def test_not_synced_banner_shows_refusal_and_retry_now(staff_client, staff_user, referral):
    staff_client.post(reverse("referrals:action", args=[referral.pk, "accept"]), {"seen_state": state_token(referral)})
    [message] = OutboundMessage.objects.filter(referral=referral)
    page = page_of(staff_client, referral)
    assert 'id="not-synced"' in page and "Not synced to Ocean" in page and "Waiting to be sent" in page
    assert reverse("referrals:retry_outbound", args=[referral.pk, message.pk]) not in page  # pending: nothing to retry

    OutboundMessage.objects.filter(pk=message.pk).update(
        state="rejected", last_status=422, last_error="This referral was forwarded to another clinic.")
    page = page_of(staff_client, referral)
    assert "Ocean's answer:" in page and "This referral was forwarded to another clinic." in page
    assert 'data-sync="rejected"' in page and "refused by Ocean" in page
    retry = reverse("referrals:retry_outbound", args=[referral.pk, message.pk])
    assert retry not in page  # a refusal is final: sending it again would be refused too
    assert "sending it again would be refused too" in page

    OutboundMessage.objects.filter(pk=message.pk).update(state="dead", last_error="Ocean answered 500")
    page = page_of(staff_client, referral)
    assert retry in page and "Ocean answered 500." in page
    response = staff_client.post(retry, HTTP_ACCEPT_LANGUAGE="en", follow=True)
    assert "The message will be sent to Ocean again in a moment." in [str(m) for m in response.context["messages"]]
    message.refresh_from_db()
    assert message.state == "pending" and message.attempts == 0

    OutboundMessage.objects.filter(pk=message.pk).update(state="delivered", delivered_at=timezone.now())
    page = page_of(staff_client, referral)
    assert 'id="not-synced"' not in page and 'data-sync="delivered"' in page and "delivered to Ocean" in page


def test_retry_now_of_another_referral_or_clinic_is_404(staff_client, clinic, other_admin, referral, ocean):
    other_referral = make_referral(clinic, "other-ref")
    staff_client.post(reverse("referrals:action", args=[referral.pk, "accept"]), {"seen_state": state_token(referral)})
    message = OutboundMessage.objects.get(referral=referral)
    OutboundMessage.objects.filter(pk=message.pk).update(state="dead")
    assert staff_client.post(reverse("referrals:retry_outbound", args=[other_referral.pk, message.pk])).status_code == 404
    other = client_for(other_admin, "lune.example.org")
    assert other.post(reverse("referrals:retry_outbound", args=[referral.pk, message.pk])).status_code == 404
    assert OutboundMessage.objects.get(pk=message.pk).state == "dead"


def _letter(referral, **fields):
    return Attachment.objects.create(referral=referral, kind="letter", key=f"k-{timezone.now().timestamp()}",
                                     title="letter.pdf", content_type="application/pdf", **fields)


def test_fetched_document_downloads_for_its_clinic_only(staff_client, referral, other_admin):
    letter = _letter(referral, fetch_state="fetched")
    letter.file.save("ocean/1/abc.pdf", ContentFile(PDF))
    url = reverse("referrals:document", args=[referral.pk, letter.pk])
    page = page_of(staff_client, referral)
    assert f'href="{url}"' in page
    response = staff_client.get(url)
    assert response.status_code == 200 and b"".join(response.streaming_content) == PDF
    assert response["Content-Type"] == "application/pdf" and "letter.pdf" in response["Content-Disposition"]
    from harbour.audit.models import AuditEntry

    assert AuditEntry.objects.filter(action="referral.document.downloaded", target=f"attachment:{letter.pk}").exists()

    other = client_for(other_admin, "lune.example.org")
    assert other.get(url).status_code == 404
    assert client_for(other_admin, "soleil.example.org").get(url).status_code == 403  # not staff of this clinic


def test_document_under_another_referral_url_is_404(staff_client, clinic, referral, ocean):
    letter = _letter(referral, fetch_state="fetched")
    letter.file.save("ocean/1/abc.pdf", ContentFile(PDF))
    other_referral = make_referral(clinic, "other-ref")
    assert staff_client.get(reverse("referrals:document", args=[other_referral.pk, letter.pk])).status_code == 404


def test_non_pdf_document_is_a_download_not_inline(staff_client, referral):
    doc = Attachment.objects.create(referral=referral, kind="attachment", key="html", title="notes",
                                    content_type="text/html", fetch_state="fetched")
    doc.file.save("ocean/1/x.bin", ContentFile(b"<script>alert(1)</script>"))
    response = staff_client.get(reverse("referrals:document", args=[referral.pk, doc.pk]))
    assert response.status_code == 200 and response["Content-Disposition"].startswith("attachment;")


def test_pending_and_failed_documents(staff_client, staff_user, referral):
    pending = _letter(referral)
    failed = Attachment.objects.create(referral=referral, kind="attachment", key="x", title="xray.png",
                                       fetch_state="failed", last_fetch_error="Ocean answered 503.")
    page = page_of(staff_client, referral)
    assert "PDF pending" in page and "fetch failed" in page and "Ocean answered 503." in page
    assert staff_client.get(reverse("referrals:document", args=[referral.pk, pending.pk])).status_code == 404
    assert staff_client.get(reverse("referrals:document", args=[referral.pk, failed.pk])).status_code == 404
    ask = reverse("referrals:fetch_again", args=[referral.pk, failed.pk])
    assert ask in page and reverse("referrals:fetch_again", args=[referral.pk, pending.pk]) not in page
    response = staff_client.post(ask, HTTP_ACCEPT_LANGUAGE="en", follow=True)
    assert "Harbour will fetch this document from Ocean again in a moment." in [str(m) for m in response.context["messages"]]
    failed.refresh_from_db()
    assert failed.fetch_state == "pending" and failed.next_fetch_at is not None and failed.last_fetch_error == ""


@pytest.mark.parametrize("state, note", [("pending", "a newer copy is being fetched"),
                                         ("failed", "fetching a newer copy failed")])
def test_the_copy_kept_stays_readable_while_a_newer_one_is_fetched_or_after_that_failed(
        staff_client, referral, state, note):
    """A reviewer's finding: « Demander de nouveau » on a letter Harbour had made it unreadable (404),
    and a failed refresh (Ocean drops referrals after a year) kept it so."""
    letter = _letter(referral, fetch_state="fetched")
    letter.file.save("ocean/1/abc.pdf", ContentFile(PDF))
    Attachment.objects.filter(pk=letter.pk).update(fetch_state=state, last_fetch_error="Ocean answered 404.",
                                                   fetched_at=timezone.now())
    url = reverse("referrals:document", args=[referral.pk, letter.pk])
    response = staff_client.get(url)
    assert response.status_code == 200 and b"".join(response.streaming_content) == PDF
    page = page_of(staff_client, referral)
    assert url in page and note in page and "(the copy kept on " in page
    assert "PDF pending" not in page


def test_fetch_again_refuses_other_clinics_and_get(referral, other_admin, staff_client):
    failed = Attachment.objects.create(referral=referral, kind="attachment", key="x", fetch_state="failed")
    url = reverse("referrals:fetch_again", args=[referral.pk, failed.pk])
    assert client_for(other_admin, "lune.example.org").post(url).status_code == 404
    assert staff_client.get(url).status_code == 405
    assert Attachment.objects.get(pk=failed.pk).fetch_state == "failed"


def test_opening_marks_read(staff_client, staff_user, referral):
    assert not ReferralRead.objects.filter(user=staff_user, referral=referral).exists()
    page_of(staff_client, referral)
    assert ReferralRead.objects.get(user=staff_user, referral=referral).seen_at >= referral.last_activity_at


def test_timeline_names_the_actor_and_sync_state(staff_client, staff_user, referral):
    staff_client.post(reverse("referrals:action", args=[referral.pk, "accept"]), {"seen_state": state_token(referral)})
    event = Event.objects.get(referral=referral, code="task_status")
    page = page_of(staff_client, referral)
    entry = page.split(f'id="event-{event.pk}"', 1)[1].split("</li>", 1)[0]
    assert staff_user.get_username() in entry and 'data-sync="pending"' in entry and "waiting to be sent to Ocean" in entry
    french = page_of(staff_client, referral, "fr")
    assert "en attente d'envoi à Ocean" in french.split(f'id="event-{event.pk}"', 1)[1].split("</li>", 1)[0]


def test_read_only_reasons(staff_client, clinic, ocean):
    sent = make_referral(clinic, "sent-ref", direction="sent")
    assert "copy of a referral your clinic sent" in page_of(staff_client, sent)
    cancelled = make_referral(clinic, "c-ref", status="cancelled")
    assert "The sender cancelled this referral" in page_of(staff_client, cancelled)


def test_referral_page_in_french(staff_client, referral):
    page = page_of(staff_client, referral, "fr")
    for text in ("Actions", "Accepter", "Prendre un rendez-vous", "Refuser", "Envoyer un message au référent",
                 "Voir dans Ocean"):
        assert text in page, text


def test_settings_page_has_the_connection_test_and_outbox(admin_client):
    page = admin_client.get(reverse("clinics:ocean_settings"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert reverse("ocean:test_connection") in page and "Test the connection to Ocean" in page
    assert "Messages to Ocean" in page
