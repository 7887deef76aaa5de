"""An appointment cancelled in Ocean, on a received referral and on a copy of one the clinic sent."""
import html

import pytest
from django.urls import reverse

from tests.ocean.conftest import configure, make_referral


@pytest.fixture
def ocean(clinic):
    return configure(clinic, "https://ocean.example.org")


def status_line(client, referral, lang):
    response = client.get(reverse("referrals:detail", args=[referral.pk]), HTTP_ACCEPT_LANGUAGE=lang)
    assert response.status_code == 200
    return html.unescape(response.content.decode()).split('id="referral-status"')[1].split("</p>")[0]


@pytest.mark.parametrize("lang, received, sent", [
    ("en", "The appointment was cancelled in Ocean: book a new one.", "The receiver cancelled the appointment in Ocean."),
    ("fr", "Le rendez-vous a été annulé dans Ocean\u00a0: fixez-en un nouveau.",
     "Le destinataire a annulé le rendez-vous dans Ocean."),
])
def test_the_sender_is_not_told_to_book(staff_client, clinic, ocean, lang, received, sent):
    mine = make_referral(clinic, "received-ref", status="accepted", attention="appointment_cancelled")
    copy = make_referral(clinic, "sent-ref", direction="sent", status="accepted", attention="appointment_cancelled",
                         snapshot=False)
    assert received in status_line(staff_client, mine, lang)
    line = status_line(staff_client, copy, lang)
    assert sent in line and received not in line
