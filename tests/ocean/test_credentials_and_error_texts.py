"""Refused OAuth credentials: a banner on every page for those who can fix them; the error texts
Harbour stores in English shown in the reader's language; one log line per failed document fetch."""
import html
import logging
import random

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from harbour.ocean import actions, documents, outbox
from harbour.ocean.errortext import translate
from harbour.referrals.models import Attachment
from tests.ocean.conftest import REF, configure, make_referral
from tests.ocean.fake_ocean import Reply, outcome

BANNER_EN = ("Ocean refuses Harbour's OAuth credentials: updates are not sent to Ocean, and letters and "
             "attachments are not fetched, until they are corrected.")
BANNER_FR = "Ocean refuse les identifiants OAuth de Harbour\u00a0: les mises à jour ne sont pas envoyées à Ocean"


def text_of(client, url, lang="en"):
    response = client.get(url, HTTP_ACCEPT_LANGUAGE=lang)
    assert response.status_code == 200
    return html.unescape(response.content.decode())


@pytest.fixture
def paused(clinic, admin_user, fake_ocean, http):
    """The clinic's outbox paused: Ocean refuses its Secret."""
    configure(clinic, fake_ocean.url, secret="wrong")
    referral = make_referral(clinic)
    message = actions.accept(referral, admin_user)
    outbox.deliver_outbox(now=timezone.now(), rng=random.Random(1), http=http)
    message.refresh_from_db()
    assert message.state == "failed" and outbox.credentials_rejected(clinic)
    return referral


def test_banner_on_every_page_for_settings_admins(paused, admin_client):
    for url in (reverse("referrals:list"), reverse("referrals:detail", args=[paused.pk]),
                reverse("clinics:ocean_settings")):
        page = text_of(admin_client, url)
        assert 'id="ocean-credentials-rejected"' in page and BANNER_EN in page
        assert f'href="{reverse("clinics:ocean_settings")}"' in page
    assert BANNER_FR in text_of(admin_client, reverse("referrals:list"), "fr")


def test_banner_when_only_a_document_fetch_met_the_refusal(clinic, admin_client, admin_user, fake_ocean, http,
                                                           settings, tmp_path):
    # A clinic that receives referrals and has sent nothing yet: only the letter fetch meets Ocean.
    settings.MEDIA_ROOT = tmp_path / "media"
    configure(clinic, fake_ocean.url, secret="wrong")
    referral = make_referral(clinic)
    row = Attachment.objects.create(referral=referral, kind="letter", key="letter:1", identifier=REF)
    assert 'id="ocean-credentials-rejected"' not in text_of(admin_client, reverse("referrals:list"))
    documents.fetch_documents(now=timezone.now(), http=http, rng=random.Random(1))
    row.refresh_from_db()
    assert row.fetch_state == "failed" and not outbox.credentials_rejected(clinic)
    assert BANNER_EN in text_of(admin_client, reverse("referrals:list"))
    # Corrected credentials: the next try fetches the letter and the banner goes.
    configure(clinic, fake_ocean.url)
    documents.request_fetch_again(row)
    documents.fetch_documents(now=timezone.now(), http=http, rng=random.Random(1))
    row.refresh_from_db()
    assert row.fetch_state == "fetched"
    assert 'id="ocean-credentials-rejected"' not in text_of(admin_client, reverse("referrals:list"))


def test_no_banner_for_staff_without_the_permission(paused, staff_client):
    page = text_of(staff_client, reverse("referrals:detail", args=[paused.pk]))
    assert 'id="ocean-credentials-rejected"' not in page
    # Triage staff see on the referral that it is not sent to Ocean, in their language.
    assert 'id="not-synced"' in page and "not sent to Ocean until they are corrected" in page
    french = text_of(staff_client, reverse("referrals:detail", args=[paused.pk]), "fr")
    assert "Ocean refuses the OAuth" not in french and "Ocean refused the OAuth" not in french
    assert "pas envoyé à Ocean" in french


def test_no_banner_when_the_credentials_work(clinic, admin_client, admin_user, fake_ocean, http):
    configure(clinic, fake_ocean.url)
    actions.accept(make_referral(clinic), admin_user)
    outbox.deliver_outbox(now=timezone.now(), rng=random.Random(1), http=http)
    assert 'id="ocean-credentials-rejected"' not in text_of(admin_client, reverse("referrals:list"))


@pytest.mark.parametrize("stored, english, french", [
    ("Ocean refused the OAuth credentials (secret).", "(the Secret): not sent to Ocean", "(le secret)\u00a0: pas envoyé"),
    ("Ocean refused the OAuth credentials (client_id).", "(the Client ID)", "(l'identifiant client)"),
    ("Ocean refused the OAuth credentials (unknown).", "Ocean refuses Harbour's OAuth credentials: not sent",
     "Ocean refuse les identifiants OAuth de Harbour\u00a0: pas envoyé"),
    ("Ocean could not be reached (ConnectError)", "Ocean could not be reached (ConnectError).",
     "Impossible de joindre Ocean (ConnectError)."),
    ("Ocean answered 503: busy", "Ocean answered 503: busy", "Ocean a répondu 503\u00a0: busy"),
    ("Ocean answered 403", "Ocean answered 403.", "Ocean a répondu 403."),
    ("Unexpected error: KeyError", "Unexpected error in Harbour (KeyError).", "Erreur inattendue dans Harbour"),
    ("Ocean gave no address for this document.", "Ocean gave no address", "Ocean n'a donné aucune adresse"),
])
def test_stored_error_texts_are_shown_translated(stored, english, french):
    with translation.override("en"):
        assert english in translate(stored)
    with translation.override("fr"):
        assert french in translate(stored)


def test_oceans_own_words_are_shown_as_sent():
    with translation.override("fr"):
        assert translate("You are not the current receiver") == "You are not the current receiver"
        assert translate("") == ""


def test_each_failed_fetch_logs_one_warning_without_the_url(referral, fake_ocean, http, settings, tmp_path, caplog):
    settings.MEDIA_ROOT = tmp_path / "media"
    fake_ocean.queue("binary", Reply(403, outcome("forbidden")))
    url = fake_ocean.url + "/svc/fhir/v1/DocumentReference/d1/$binary?patient=Tremblay"
    row = Attachment.objects.create(referral=referral, kind="attachment", key=url, url=url, title="Tremblay.pdf")
    with caplog.at_level(logging.WARNING, logger="harbour.ocean"):
        documents.fetch_documents(now=timezone.now(), http=http, rng=random.Random(1))
    row.refresh_from_db()
    assert row.fetch_state == "failed"
    lines = [r.getMessage() for r in caplog.records if r.name == "harbour.ocean" and r.levelno == logging.WARNING]
    assert lines == [f"attachment {row.pk} fetch failed: refused (status 403, attempt 1)"]
    assert all("Tremblay" not in line and "patient=" not in line and "DocumentReference" not in line
               for line in lines)
