"""The reviewer's findings on the inbound messages page, the referral page and the settings page:
« Marquer comme vérifié », translated processing errors, the return target after reprocessing,
no « Doublon » tab, the last inbound result translated, triage wording, the single-message view,
accessible names, and form answers as people read them."""
import re
from datetime import datetime, timedelta, timezone
from html import unescape

import pytest
from django.urls import reverse
from django.utils import formats, translation
from django.utils.timezone import localtime

from harbour.audit.models import AuditEntry
from harbour.clinics.models import ocean_settings_for
from harbour.intake.models import InboundMessage
from harbour.referrals import attention
from harbour.referrals.models import FormAnswer, Referral
from tests.referrals import bundles as B

PAGE = "/referrals/inbound/"


def fr(client, url=PAGE) -> str:
    return unescape(client.get(url, HTTP_ACCEPT_LANGUAGE="fr").content.decode())


def row_of(page: str, message) -> str:
    return page.split(f'id="message-{message.pk}"', 1)[1].split("</tr>", 1)[0]


@pytest.fixture
def incomplete(clinic, site):
    """Processed without its ServiceRequest: needs attention, and its referral shows the notice."""
    message = B.deliver_one(clinic, B.variant(drop=("ServiceRequest",)))
    assert message.needs_attention
    return message


def failed(clinic, n, error):
    return InboundMessage.objects.create(clinic=clinic, raw=b"x", sha256=f"{n:064d}", bundle_id=f"f-{n}",
                                         state="failed", error=error, event_code="add-service-request")


# --- 1. Marquer comme vérifié --------------------------------------------------------------------


def test_mark_as_checked_clears_attention_keeps_warnings_and_is_audited(admin_client, incomplete):
    url = reverse("referrals:mark_checked")
    page = fr(admin_client, PAGE + "?state=attention")
    assert "Marquer comme vérifié" in row_of(page, incomplete)
    referral = Referral.objects.get(ocean_ref=B.REF)
    assert attention.processing_warnings(referral) == incomplete
    warnings = list(incomplete.warnings)
    response = admin_client.post(url, {"message": incomplete.pk, "next": PAGE + "?state=attention"})
    assert response.status_code == 302 and response["Location"] == PAGE + "?state=attention"
    incomplete.refresh_from_db()
    assert not incomplete.needs_attention and incomplete.warnings == warnings and incomplete.state == "processed"
    assert attention.attention_count(incomplete.clinic) == 0
    assert attention.processing_warnings(referral) is None
    detail = fr(admin_client, reverse("referrals:detail", args=[referral.pk]))
    assert 'id="processing-warnings"' not in detail
    entry = AuditEntry.objects.get(action="inbound.checked")
    assert entry.target == f"inbound:{incomplete.pk}" and entry.actor.username == "admin-soleil"
    assert B.REF not in str(entry.details) and "Patient" not in str(entry.details)
    # The warnings stay on the page, without the button; posting again changes nothing.
    row = row_of(fr(admin_client), incomplete)
    assert "le bundle n'a pas de ServiceRequest" in row and "Marquer comme vérifié" not in row
    assert admin_client.post(url, {"message": incomplete.pk}).status_code == 302
    assert AuditEntry.objects.filter(action="inbound.checked").count() == 1


def test_mark_as_checked_needs_the_permission_post_and_this_clinic(staff_client, admin_client, other_admin,
                                                                    incomplete):
    url = reverse("referrals:mark_checked")
    assert "Marquer comme vérifié" not in fr(staff_client, PAGE + "?state=attention")
    assert staff_client.post(url, {"message": incomplete.pk}).status_code == 403
    assert admin_client.get(url + f"?message={incomplete.pk}").status_code == 405
    assert admin_client.post(url, {"message": "abc"}).status_code == 302
    incomplete.refresh_from_db()
    assert incomplete.needs_attention
    theirs = InboundMessage.objects.create(clinic=other_admin.clinic, raw=b"{}", sha256="9" * 64,
                                           state="processed", warnings=["w"], needs_attention=True)
    admin_client.post(url, {"message": theirs.pk})
    theirs.refresh_from_db()
    assert theirs.needs_attention


def test_mark_as_checked_needs_csrf(admin_user, incomplete):
    from django.test import Client
    client = Client(HTTP_HOST="soleil.example.org", enforce_csrf_checks=True)
    client.force_login(admin_user)
    assert client.post(reverse("referrals:mark_checked"), {"message": incomplete.pk}).status_code == 403


# --- 2. Processing errors in the reader's language -----------------------------------------------


def test_known_processing_errors_are_translated_and_others_shown_as_code(staff_client, clinic):
    no_ref = failed(clinic, 1, "ProcessingError: the message names no referral reference")
    not_json = failed(clinic, 2, "ProcessingError: the stored body is not valid JSON")
    bug = failed(clinic, 3, "KeyError at process.py:12 in run (details withheld: they may contain patient data)")
    page = fr(staff_client)
    row = row_of(page, no_ref)
    assert "ProcessingError" not in row and "référence" in row
    assert "ProcessingError" not in row_of(page, not_json) and "JSON" in row_of(page, not_json)
    row = row_of(page, bug)
    assert "<code>KeyError at process.py:12 in run (details withheld: they may contain patient data)</code>" in row
    assert "erreur" in row.lower()
    english = unescape(staff_client.get(PAGE, HTTP_ACCEPT_LANGUAGE="en").content.decode())
    assert "ProcessingError" not in row_of(english, no_ref) and "referral reference" in row_of(english, no_ref)
    assert InboundMessage.objects.get(pk=no_ref.pk).error == "ProcessingError: the message names no referral reference"


# --- 3. Back to the same view after reprocessing -------------------------------------------------


@pytest.mark.parametrize("target", [PAGE + "?state=failed", PAGE + "?state=failed&page=2", PAGE + "?message=7"])
def test_reprocess_returns_to_the_same_view(admin_client, clinic, target):
    message = failed(clinic, 4, "ProcessingError: x")
    response = admin_client.post(reverse("referrals:reprocess"), {"message": message.pk, "next": target})
    assert response.status_code == 302 and response["Location"] == target


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/referrals/inbound/",
                                    "/referrals/", "/\\evil.example", "javascript:alert(1)", ""])
def test_reprocess_never_returns_elsewhere(admin_client, clinic, target):
    message = failed(clinic, 5, "ProcessingError: x")
    response = admin_client.post(reverse("referrals:reprocess"), {"message": message.pk, "next": target})
    assert response.status_code == 302 and response["Location"] == PAGE


def test_the_page_sends_its_own_address_as_return_target(admin_client, clinic):
    message = failed(clinic, 6, "ProcessingError: x")
    page = fr(admin_client, PAGE + "?state=failed")
    assert 'name="next" value="/referrals/inbound/?state=failed"' in row_of(page, message)


# --- 4. No « Doublon » tab --------------------------------------------------------------------------


def test_no_duplicate_tab(staff_client, clinic):
    page = fr(staff_client)
    tabs = page.split('class="tabs"', 1)[1].split("</nav>", 1)[0]
    assert "state=duplicate" not in tabs and "Doublon" not in tabs and "state=failed" in tabs


# --- 5. The settings page's last inbound result --------------------------------------------------


@pytest.mark.parametrize("stored, french", [
    ("200 add-service-request (duplicate)", "200 add-service-request (doublon)"),
    ("200 (no event code)", "200 (aucun code d'événement)"),
    ("200 (no event code) (duplicate)", "200 (aucun code d'événement) (doublon)"),
    ("200 notify-update-service-request", "200 notify-update-service-request"),
])
def test_settings_page_translates_the_last_inbound_result(admin_client, clinic, stored, french):
    ocean = ocean_settings_for(clinic)
    ocean.last_inbound_at = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    ocean.last_inbound_result = stored
    ocean.save()
    page = fr(admin_client, reverse("clinics:ocean_settings"))
    shown = page.split("Dernier message reçu", 1)[1].split("</dd>", 1)[0]
    assert f"— {french}" in shown


# --- 6, 7, 8. Wording, the single-message view, accessible names ----------------------------------


def test_triage_staff_are_told_an_administrator_reprocesses(staff_client, admin_client, clinic):
    failed(clinic, 7, "ProcessingError: x")
    triage = fr(staff_client)
    assert "traitez-le de nouveau" not in triage and "un administrateur" in triage.lower()
    assert "traitez-le de nouveau" in fr(admin_client)
    help_text = fr(staff_client, PAGE + "?state=attention").split('id="attention-help"', 1)[1].split("</p>", 1)[0]
    assert "traitez le message de nouveau" not in help_text and "un administrateur" in help_text


def test_single_message_view_marks_no_tab_and_has_no_bulk_button(admin_client, clinic):
    one = failed(clinic, 8, "ProcessingError: x")
    failed(clinic, 9, "ProcessingError: x")
    page = fr(admin_client, PAGE + f"?message={one.pk}")
    tabs = page.split('class="tabs"', 1)[1].split("</nav>", 1)[0]
    assert 'aria-current="page"' not in tabs
    assert "Traiter de nouveau les 2 messages en échec" not in page and 'class="actions"' not in page
    assert f'name="message" value="{one.pk}"' in page  # its own button stays
    assert "Traiter de nouveau les 2 messages en échec" in fr(admin_client)


def test_each_button_is_named_after_its_message_and_the_summary_says_warnings(admin_client, clinic, incomplete):
    one = failed(clinic, 10, "ProcessingError: x")
    # Same event as `incomplete`, a second later: the names differ by their time to the second.
    InboundMessage.objects.filter(pk=one.pk).update(received_at=incomplete.received_at + timedelta(seconds=1))
    one.refresh_from_db()
    page = fr(admin_client)
    labels = re.findall(r'aria-label="([^"]*)"', page.split("<tbody>", 1)[1])
    assert len(labels) == len(set(labels)) >= 3
    with translation.override("fr"):
        day = formats.date_format(localtime(one.received_at), "DATE_FORMAT")
    when = f"{day} à {localtime(one.received_at):%H:%M:%S}"
    assert f'aria-label="Traiter de nouveau le message reçu le {when} (Nouvelle consultation)"' in row_of(page, one)
    count = len(incomplete.warnings)
    assert f"<summary>{count} avertissements</summary>" in row_of(page, incomplete)
    english = unescape(admin_client.get(PAGE, HTTP_ACCEPT_LANGUAGE="en").content.decode())
    assert f"<summary>{count} warnings</summary>" in row_of(english, incomplete)


# --- 9, 10. The referral page ---------------------------------------------------------------------


def test_external_service_id_is_translated_and_form_answers_are_readable(staff_client, clinic, site):
    B.deliver_one(clinic, B.load())
    referral = Referral.objects.get(clinic=clinic)
    FormAnswer.objects.filter(referral=referral).delete()
    for position, answers in enumerate(["true", "false", "2025-01-02", "2025-01-02T03:04:05Z", "true\nplain text"]):
        FormAnswer.objects.create(referral=referral, position=position, label=f"Q{position}", answers=answers)
    page = fr(staff_client, reverse("referrals:detail", args=[referral.pk]))
    assert "<dt>External Service ID</dt>" not in page and "Identifiant de service externe" in page
    form = page.split('id="h-form"', 1)[1].split("</section>", 1)[0]
    answers = re.findall(r"<dd>(.*?)</dd>", form, re.S)
    with translation.override("fr"):
        day = formats.date_format(datetime(2025, 1, 2).date(), "DATE_FORMAT")
        moment = formats.date_format(localtime(datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)), "DATETIME_FORMAT")
    assert answers[:5] == ["Oui", "Non", day, moment, "Oui<br>plain text"]
    assert "1 janvier 2025" in moment  # 22:04 the day before in Toronto
    english = unescape(staff_client.get(reverse("referrals:detail", args=[referral.pk]),
                                        HTTP_ACCEPT_LANGUAGE="en").content.decode())
    form = english.split('id="h-form"', 1)[1].split("</section>", 1)[0]
    assert re.findall(r"<dd>(.*?)</dd>", form, re.S)[:2] == ["Yes", "No"]


def test_every_processing_error_has_its_sentence():
    """Each `raise ProcessingError(...)` of process.py has a plain-language sentence on the page."""
    import ast
    from pathlib import Path

    from harbour.referrals import inbound_errors, process

    tree = ast.parse(Path(process.__file__).read_text())
    raised = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and \
                getattr(node.exc.func, "id", None) == "ProcessingError":
            arg = node.exc.args[0]
            raised.append(arg.value if isinstance(arg, ast.Constant) else getattr(process, arg.id))
    assert len(raised) >= 2
    assert sorted(set(raised) - set(inbound_errors.KNOWN)) == []


def test_a_checked_message_read_again_stays_checked_unless_its_warnings_change(admin_client, incomplete):
    from harbour.intake.jobs import reprocess

    admin_client.post(reverse("referrals:mark_checked"), {"message": incomplete.pk})
    assert reprocess(InboundMessage.objects.filter(pk=incomplete.pk), now=True) == {"processed": 1}
    incomplete.refresh_from_db()
    assert not incomplete.needs_attention and incomplete.warnings  # the same warnings: still checked
    # Warnings it did not have when it was checked flag it again.
    InboundMessage.objects.filter(pk=incomplete.pk).update(warnings=["an older reading's warning"])
    reprocess(InboundMessage.objects.filter(pk=incomplete.pk), now=True)
    incomplete.refresh_from_db()
    assert incomplete.needs_attention
