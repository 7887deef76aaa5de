"""Messages processed with warnings: shown in the reader's language, flagged on the inbound page
("Needs attention", with a count), and noticed on their referral's page (contract §6)."""
from html import unescape

import pytest
from django.db import connection
from django.http import QueryDict
from django.template.loader import render_to_string
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import translation

from harbour.intake.models import InboundMessage
from harbour.referrals import attention
from harbour.referrals.models import Referral
from tests.referrals import bundles as B

NO_SR_EN = "the bundle has no ServiceRequest"
NO_SR_FR = "le bundle n'a pas de ServiceRequest (la demande elle-même)"


@pytest.fixture
def incomplete(clinic, site):
    """The reviewer's case: a message without its ServiceRequest, processed into a new referral."""
    return B.deliver_one(clinic, B.variant(drop=("ServiceRequest",)))


def old_row(clinic, n, warnings, state="processed"):
    """A message processed before warnings had templates: plain English sentences only."""
    return InboundMessage.objects.create(
        clinic=clinic, raw=b"{}", sha256=f"{n:064d}", bundle_id=f"old-{n}", state=state,
        warnings=warnings, needs_attention=bool(warnings) and state == "processed")


# --- Warnings in the reader's language -----------------------------------------------------------


def test_warnings_are_shown_in_french_and_english(incomplete):
    with translation.override("fr"):
        french = attention.shown_warnings(incomplete)
    with translation.override("en"):
        english = attention.shown_warnings(incomplete)
    assert NO_SR_FR in french and NO_SR_EN not in french
    assert english == incomplete.warnings and NO_SR_EN in english
    assert "le patient n'a pas de date de naissance" in french


def test_paths_and_codes_stay_as_sent():
    message = InboundMessage(warnings=["Patient.name should be a list", "unknown event code 'frob'"],
                             warning_templates=[
                                 {"text": "%(where)s should be a list", "params": {"where": "Patient.name"}},
                                 {"text": "unknown event code %(code)s", "params": {"code": "'frob'"}}])
    with translation.override("fr"):
        assert attention.shown_warnings(message) == [
            "Patient.name devrait être une liste", "code d'événement inconnu\u00a0: 'frob'"]


def test_every_template_has_a_french_that_keeps_its_values():
    values = {"where": "Patient.name", "found": "Practitioner", "expected": "Patient", "code": "'x'"}
    with translation.override("fr"):
        for template in attention.WARNING_TEMPLATES + attention.RETIRED_WARNING_TEMPLATES:
            english = template % values
            item = {"text": template, "params": {k: v for k, v in values.items() if f"%({k})s" in template}}
            french = attention.render_warning(item, english)
            assert french != english, template
            assert all(v in french for k, v in item["params"].items()), (template, french)


def test_old_plain_string_warnings_are_still_shown(clinic):
    odd = "something an older Harbour said"
    message = old_row(clinic, 1, [odd, NO_SR_EN])
    with translation.override("fr"):
        # As stored; a sentence that is a whole template is translated.
        assert attention.shown_warnings(message) == [odd, NO_SR_FR]
    broken = InboundMessage(warnings=["x should be text"], warning_templates=[{"text": "%(where)s should be text"}])
    with translation.override("fr"):  # a template without its values: the English sentence
        assert attention.shown_warnings(broken) == ["x should be text"]


# --- The inbound messages page -------------------------------------------------------------------


def test_the_page_shows_a_processed_message_with_warnings_as_needing_attention(staff_client, incomplete):
    url = reverse("referrals:inbound_messages")
    french = unescape(staff_client.get(url, HTTP_ACCEPT_LANGUAGE="fr").content.decode())
    row = french.split(f'id="message-{incomplete.pk}"', 1)[1].split("</tr>", 1)[0]
    assert "status-warn" in row and "status-ok" not in row
    assert "Traité, à vérifier" in row and NO_SR_FR in row and NO_SR_EN not in row
    english = staff_client.get(reverse("referrals:inbound_messages"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    row = english.split(f'id="message-{incomplete.pk}"', 1)[1].split("</tr>", 1)[0]
    assert "Processed, needs attention" in row and NO_SR_EN in row


def test_the_usual_gaps_of_a_real_message_do_not_call_for_attention(staff_client, clinic, site):
    """The real fixture always warns (a health card identifier without a value, no birth date, no
    given name): shown with the message, but a list that held every message would be read by nobody."""
    message = B.deliver_one(clinic, B.load())
    assert message.state == "processed" and message.warnings and not message.needs_attention
    assert attention.attention_count(clinic) == 0
    assert attention.processing_warnings(Referral.objects.get()) is None
    page = unescape(staff_client.get(reverse("referrals:inbound_messages"), HTTP_ACCEPT_LANGUAGE="fr").content.decode())
    row = page.split(f'id="message-{message.pk}"', 1)[1].split("</tr>", 1)[0]
    assert "status-ok" in row and "à vérifier" not in row


def test_old_rows_show_their_sentences_on_the_page(staff_client, clinic):
    message = old_row(clinic, 2, ["something an older Harbour said"])
    page = staff_client.get(reverse("referrals:inbound_messages"), HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    row = page.split(f'id="message-{message.pk}"', 1)[1].split("</tr>", 1)[0]
    assert "something an older Harbour said" in row and "status-warn" in row


def test_the_filter_and_its_count(clinic, other_clinic):
    flagged = [old_row(clinic, n, ["w"]) for n in range(3)]
    old_row(clinic, 10, [])  # processed, clean
    old_row(clinic, 11, ["w"], state="failed")  # failed has its own tab
    old_row(clinic, 12, ["w"], state="unknown_event")  # so has "not understood"
    old_row(other_clinic, 13, ["w"])  # another clinic's
    assert attention.attention_count(clinic) == 3
    mine = InboundMessage.objects.filter(clinic=clinic)
    chosen, state = attention.filter_messages(mine, QueryDict("state=attention"))
    assert state == "attention" and sorted(m.pk for m in chosen) == sorted(m.pk for m in flagged)
    chosen, state = attention.filter_messages(mine, QueryDict("state=failed"))
    assert state == "failed" and [m.bundle_id for m in chosen] == ["old-11"]
    chosen, state = attention.filter_messages(mine, QueryDict("state=bogus"))
    assert state is None and chosen.count() == 6
    chosen, state = attention.filter_messages(mine, QueryDict(f"message={flagged[1].pk}&state=failed"))
    assert state is None and list(chosen) == [flagged[1]]
    chosen, _ = attention.filter_messages(mine, QueryDict("message=99999999999999999999999"))
    assert chosen.count() == 6


def test_the_filter_and_count_read_the_partial_index(clinic):
    for n in range(3):
        old_row(clinic, n, ["w"])
    mine = InboundMessage.objects.filter(clinic=clinic).defer("raw").order_by("-received_at", "-id")
    chosen, _ = attention.filter_messages(mine, QueryDict("state=attention"))
    with CaptureQueriesContext(connection) as queries:
        list(chosen[:50])
        attention.attention_count(clinic)
    listing, count = (q["sql"] for q in queries.captured_queries)
    with connection.cursor() as cursor:
        for sql in (listing, count):
            if connection.vendor == "sqlite":
                cursor.execute("EXPLAIN QUERY PLAN " + sql)
                plan = " ".join(row[-1] for row in cursor.fetchall())
                assert "INDEX inbound_attention" in plan and "TEMP B-TREE" not in plan, plan
            else:
                cursor.execute("SET LOCAL enable_seqscan = off")
                cursor.execute("EXPLAIN " + sql)
                plan = " ".join(row[0] for row in cursor.fetchall())
                assert "inbound_attention" in plan, plan


def test_the_page_has_a_needs_attention_tab_with_its_count(staff_client, clinic, incomplete):
    clean = old_row(clinic, 3, [])
    url = reverse("referrals:inbound_messages")
    page = staff_client.get(url, HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    tab = page.split('id="tab-attention"', 1)[1].split("</a>", 1)[0]
    assert "À vérifier" in tab and ">1<" in tab
    listed = staff_client.get(url + "?state=attention", HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert f'id="message-{incomplete.pk}"' in listed and f'id="message-{clean.pk}"' not in listed
    assert 'id="attention-help"' in listed
    one = staff_client.get(url + f"?message={clean.pk}").content.decode()
    assert f'id="message-{clean.pk}"' in one and f'id="message-{incomplete.pk}"' not in one


def test_the_tab_is_rendered_from_the_views_context(rf, staff_user, incomplete):
    """The template's part of the tab, as the view will render it once wired."""
    request = rf.get("/referrals/inbound/?state=attention")
    request.user = staff_user
    queryset, state = attention.filter_messages(InboundMessage.objects.all(), request.GET)
    with translation.override("fr"):
        page = render_to_string("referrals/inbound_messages.html", {
            "page": None, "rows": [(m, None) for m in queryset], "state": state,
            "states": InboundMessage.State.choices, "failed_count": 0, "can_reprocess": False,
            "attention_count": attention.attention_count(incomplete.clinic),
        }, request=request)
    page = unescape(page)
    tab = page.split('id="tab-attention"', 1)[1].split("</a>", 1)[0]
    assert 'aria-current="page"' in tab and "À vérifier" in tab and ">1<" in tab
    assert 'id="attention-help"' in page and NO_SR_FR in page


# --- The referral page's notice ------------------------------------------------------------------


def notice(referral, language):
    with translation.override(language):
        return unescape(render_to_string("referrals/_processing_warnings.html", {
            "referral": referral, "processing_warnings": attention.processing_warnings(referral)}))


def test_the_referral_notice_links_to_the_latest_message_with_warnings(incomplete):
    referral = Referral.objects.get(ocean_ref=B.REF)
    french = notice(referral, "fr")
    assert 'id="processing-warnings"' in french and "Le dernier message d'Ocean demande votre attention" in french
    assert NO_SR_FR in french
    url = reverse("referrals:inbound_messages") + f"?message={incomplete.pk}#message-{incomplete.pk}"
    assert f'href="{url}"' in french
    english = notice(referral, "en")
    assert "Ocean's latest message needs attention" in english and NO_SR_EN in english


def test_no_notice_when_the_latest_message_was_clean(clinic, incomplete):
    referral = Referral.objects.get(ocean_ref=B.REF)
    later = B.variant(B.FULL, timestamp="2025-06-03T09:15:00-04:00")
    message = B.deliver_one(clinic, later)
    assert message.state == "processed"
    if message.warnings:  # the fixture's own gaps: make this one clean
        InboundMessage.objects.filter(pk=message.pk).update(warnings=[], warning_templates=[], needs_attention=False)
    assert attention.processing_warnings(referral) is None
    assert notice(referral, "fr").strip() == ""
    # Another clinic's message with the same reference does not count.
    assert attention.processing_warnings(Referral(clinic_id=0, ocean_ref=B.REF)) is None
