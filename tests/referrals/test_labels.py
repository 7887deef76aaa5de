"""Codes Ocean sends, shown as words in both languages (harbour.referrals.labels)."""
import html

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from harbour.referrals.labels import TABLES, category_label, label
from harbour.referrals.models import Appointment, Event
from tests.ocean.conftest import configure, make_referral


@pytest.mark.parametrize("kind, code, en, fr", [
    ("sex", "male", "Male", "Masculin"),
    ("sex", "female", "Female", "Féminin"),
    ("sex", "other", "Other", "Autre"),
    ("sex", "unknown", "Unknown", "Inconnu"),
    ("priority", "routine", "Routine", "Routine"),
    ("priority", "urgent", "Urgent", "Urgente"),
    ("priority", "asap", "As soon as possible", "Dès que possible"),
    ("priority", "STAT", "Immediately (STAT)", "Immédiate (STAT)"),
    ("task_status", "accepted", "accepted", "acceptée"),
    ("task_status", "rejected", "declined", "refusée"),
    ("task_status", "completed", "completed", "terminée"),
    ("task_status", "in-progress", "in progress", "en cours"),
    ("appointment", "proposed", "proposed, no date yet", "proposé, sans date pour l'instant"),
    ("participant", "tentative", "not confirmed by the patient", "non confirmé par le patient"),
    ("event", "add-service-request", "New referral", "Nouvelle consultation"),
    ("event", "add-servicerequest", "New referral", "Nouvelle consultation"),  # an older spelling
    ("event", "send-communication-from-requester", "Message from the referrer", "Message du médecin référent"),
    ("content_type", "application/pdf; charset=binary", "PDF", "PDF"),
])
def test_labels_in_both_languages(kind, code, en, fr):
    with translation.override("en"):
        assert label(kind, code) == en
    with translation.override("fr"):
        assert label(kind, code) == fr


def test_every_label_is_translated():
    """Each label has a French text (the same words only where French uses them too)."""
    same_in_both = {("priority", "routine"), ("content_type", "application/pdf"), ("event", "send-communication")}
    for kind, table in TABLES.items():
        for code in table:
            with translation.override("en"):
                english = label(kind, code)
            with translation.override("fr"):
                french = label(kind, code)
            assert english and french
            assert (english != french) or (kind, code) in same_in_both, (kind, code)


def test_unknown_codes_are_shown_as_they_came():
    assert label("priority", "whenever") == "whenever"
    assert label("event", "some-new-event") == "some-new-event"
    assert label("sex", "") == "" and label("sex", None) == ""


def test_category_label():
    assert category_label("MENTAL_HEALTH_ASSESSMENT_AND_REFERRAL") == "Mental health assessment and referral"
    assert category_label("Physiotherapy") == "Physiotherapy"
    assert category_label("") == ""


@pytest.fixture
def ocean(clinic):
    return configure(clinic, "https://ocean.example.org")


@pytest.fixture
def referral(clinic, ocean):
    return make_referral(clinic, patient_family="Tremblay", patient_given="Marie", patient_sex="male",
                         priority="urgent", category_code="410223002",
                         category_display="MENTAL_HEALTH_ASSESSMENT_AND_REFERRAL")


def page(client, url, lang):
    response = client.get(url, HTTP_ACCEPT_LANGUAGE=lang)
    assert response.status_code == 200
    return html.unescape(response.content.decode())


@pytest.mark.parametrize("lang, words", [
    ("en", ["Mental health assessment and referral", "Male", "Urgent", "Status changed from New to Accepted.",
            "proposed, no date yet", "PDF"]),
    ("fr", ["Mental health assessment and referral", "Masculin", "Urgente", "La consultation est passée de «\u00a0Nouvelle\u00a0» à «\u00a0Acceptée\u00a0».",
            "proposé, sans date pour l'instant", "PDF"]),
])
def test_referral_page_shows_words_not_codes(staff_client, clinic, referral, lang, words):
    Event.objects.create(clinic=clinic, referral=referral, kind="notify-update-service-request", code="task_status",
                         params={"task_status": "accepted", "from": "new", "to": "accepted"})
    Appointment.objects.create(referral=referral, status="proposed", participant_status="needs-action",
                               patient_instruction="Call us.")
    referral.attachments.create(kind="attachment", title="xray", content_type="application/pdf")
    text = page(staff_client, reverse("referrals:detail", args=[referral.pk]), lang)
    for word in words:
        assert word in text, word
    assert "MENTAL_HEALTH_ASSESSMENT_AND_REFERRAL" not in text
    assert "<title>Marie Tremblay — Mental health assessment and referral" in text
    assert "<code>410223002</code>" in text  # the code stays, in small print
    assert ">urgent<" not in text and ">male<" not in text and "(application/pdf" not in text


def test_dated_appointment_says_who_confirmed(staff_client, referral):
    Appointment.objects.create(referral=referral, status="booked", start=timezone.now(), participant_status="tentative")
    assert "non confirmé par le patient" in page(staff_client, reverse("referrals:detail", args=[referral.pk]), "fr")


def test_list_shows_the_category_as_words(staff_client, referral):
    text = page(staff_client, reverse("referrals:list"), "en")
    assert "Mental health assessment and referral" in text and "MENTAL_HEALTH" not in text


def test_inbound_messages_page_names_the_event(staff_client, referral):
    text = page(staff_client, reverse("referrals:inbound_messages"), "fr")
    assert "Nouvelle consultation" in text and "<code>add-service-request</code>" in text


@pytest.mark.parametrize("lang, words", [
    ("en", "Status changed from Accepted to Declined. Reason: Not our catchment area"),
    ("fr", "La consultation est passée de «\u00a0Acceptée\u00a0» à «\u00a0Refusée\u00a0». Motif\u00a0: Not our catchment area"),
])
def test_a_decline_shows_its_reason_on_the_timeline(staff_client, clinic, referral, lang, words):
    """Whoever declined (Harbour's staff, or the receiver in Ocean), staff see why, not only that."""
    Event.objects.create(clinic=clinic, referral=referral, kind="notify-update-service-request", code="task_status",
                         params={"task_status": "rejected", "from": "accepted", "to": "declined",
                                 "reason": "Not our catchment area"})
    assert words in page(staff_client, reverse("referrals:detail", args=[referral.pk]), lang)
