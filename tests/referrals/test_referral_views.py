"""Staff pages: tenant isolation, what the referral page shows, the inbound log and reprocessing."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from harbour.core.worker import run_until_idle
from harbour.intake.models import InboundMessage
from harbour.referrals.models import Referral
from tests.conftest import client_for, make_user
from tests.referrals import bundles as B


@pytest.fixture
def referral(clinic, site):
    B.store(clinic, B.load())
    B.store(clinic, B.variant(B.FULL, timestamp="2025-06-03T09:15:00-04:00"))
    run_until_idle()
    return Referral.objects.get(clinic=clinic)


def test_referral_page_shows_what_was_read(staff_client, referral):
    response = staff_client.get(reverse("referrals:detail", args=[referral.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    for text in ("DKTest", "Dana K", "1234567890", "CHART-0042", "Doug Kavanagh", "98765", "123456",
                 "Kavanagh Family Practice", "Autorouter Test", "autorouter_test49721437",
                 "Mental health assessment and referral", "410223002", "Urgente", "Back pain with no red flags",
                 "back pain with no red flags", "xray.png", "/$letter", "Any update on this referral?",
                 "Bring your health card."):
        assert text in page, text
    # Hidden form items are folded away, visible answered ones are not.
    details = page.split("<details>", 1)[1].split("</details>", 1)[0]
    assert "Allergies:" in details and "back pain with no red flags" not in details
    assert "<b>" not in page.split('id="h-referral"', 1)[1].split("</section>", 1)[0]


def test_referral_page_in_french_and_english(staff_client, referral):
    url = reverse("referrals:detail", args=[referral.pk])
    assert "Chronologie" in staff_client.get(url, HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    staff_client.cookies["django_language"] = "en"
    assert "Timeline" in staff_client.get(url).content.decode()


def test_other_clinic_referral_is_404(referral, other_admin):
    other = client_for(other_admin, "lune.example.org")
    assert other.get(reverse("referrals:detail", args=[referral.pk])).status_code == 404
    assert other.get(reverse("referrals:list")).content.decode().count("DKTest") == 0
    assert "71db1a5c" not in other.get(reverse("referrals:inbound_messages")).content.decode()


def test_staff_of_another_clinic_on_this_host_is_refused(referral, other_admin):
    assert client_for(other_admin, "soleil.example.org").get(reverse("referrals:list")).status_code == 403


def test_anonymous_is_sent_to_login(client, referral):
    response = client.get(reverse("referrals:detail", args=[referral.pk]), HTTP_HOST="soleil.example.org")
    assert response.status_code == 302 and "login" in response["Location"]


def test_referral_list_newest_first(staff_client, clinic, site, referral):
    other = B.load()
    B.header(other)["extension"][0]["valueIdentifier"]["value"] = "second-ref"
    for ident in B.resources(other, "ServiceRequest")[0]["identifier"]:
        ident["value"] = "second-ref"
    B.store(clinic, other)
    run_until_idle()
    page = staff_client.get(reverse("referrals:list")).content.decode()
    second = Referral.objects.get(ocean_ref="second-ref")
    assert page.index(reverse("referrals:detail", args=[second.pk])) < page.index(
        reverse("referrals:detail", args=[referral.pk]))
    received = staff_client.get(reverse("referrals:list") + "?direction=sent").content.decode()
    assert reverse("referrals:detail", args=[second.pk]) not in received


def test_inbound_messages_list(staff_client, clinic, referral):
    B.store(clinic, b"garbage")
    run_until_idle()
    response = staff_client.get(reverse("referrals:inbound_messages"), HTTP_ACCEPT_LANGUAGE="en")
    page = response.content.decode()
    assert response.status_code == 200
    assert page.count('id="message-') == 3
    assert "notify-update-service-request" in page and "add-service-request" in page
    assert "Harbour could not read this message: what Ocean sent is not valid JSON." in page  # the stored error, in words
    assert reverse("referrals:detail", args=[referral.pk]) in page
    assert 'name="message"' not in page and reverse("referrals:reprocess") not in page  # no permission
    failed = staff_client.get(reverse("referrals:inbound_messages") + "?state=failed").content.decode()
    assert failed.count('id="message-') == 1


def test_inbound_messages_are_paginated(staff_client, clinic):
    for n in range(51):
        InboundMessage.objects.create(clinic=clinic, raw=b"{}", sha256=f"{n:064d}", bundle_id=str(n),
                                      state="processed")
    page = staff_client.get(reverse("referrals:inbound_messages")).content.decode()
    assert page.count('id="message-') == 50
    assert "page=2" in page


def test_reprocess_button_needs_the_permission(staff_client, admin_client, clinic, site):
    failed = InboundMessage.objects.create(clinic=clinic, raw=b"not json", sha256="0" * 64, state="failed",
                                           error="ProcessingError: x")
    url = reverse("referrals:reprocess")
    assert staff_client.post(url).status_code == 403
    assert admin_client.get(url).status_code == 405
    page = admin_client.get(reverse("referrals:inbound_messages"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert f'name="message" value="{failed.pk}"' in page and "Process the failed message again" in page
    french = admin_client.get(reverse("referrals:inbound_messages"), HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Traiter de nouveau le message en échec" in french
    response = admin_client.post(url, follow=True)
    assert response.status_code == 200
    failed.refresh_from_db()
    assert failed.state == "pending" and failed.error == ""
    run_until_idle()
    failed.refresh_from_db()
    assert failed.state == "failed" and failed.attempts == 1


def test_reprocess_one_message_and_bad_ids(admin_client, clinic, other_clinic):
    mine = InboundMessage.objects.create(clinic=clinic, raw=b"x", sha256="1" * 64, state="unknown_event")
    theirs = InboundMessage.objects.create(clinic=other_clinic, raw=b"x", sha256="2" * 64, state="failed")
    url = reverse("referrals:reprocess")
    admin_client.post(url, {"message": str(theirs.pk)})
    theirs.refresh_from_db()
    assert theirs.state == "failed"  # another clinic's message is "not found"
    response = admin_client.post(url, {"message": "abc"}, follow=True)
    assert response.status_code == 200
    admin_client.post(url, {"message": str(mine.pk)})
    mine.refresh_from_db()
    assert mine.state == "pending"


def test_another_user_without_clinic_cannot_see(clinic, referral):
    operator = make_user(clinic, "x")
    operator.clinic = None
    operator.save()
    assert client_for(operator, "soleil.example.org").get(
        reverse("referrals:detail", args=[referral.pk])).status_code == 403


def test_inbound_messages_page_reads_its_index_backwards(staff_client, clinic):
    # inbound_by_clinic is ascending so that each intake INSERT appends to it; the page's
    # newest-first query must still come from it, read backwards, without sorting the rows.
    with connection.cursor() as cursor:
        constraint = connection.introspection.get_constraints(cursor, InboundMessage._meta.db_table)
    assert constraint["inbound_by_clinic"]["columns"] == ["clinic_id", "received_at"]
    assert constraint["inbound_by_clinic"]["orders"] == ["ASC", "ASC"]
    for n in range(3):
        InboundMessage.objects.create(clinic=clinic, raw=b"{}", sha256=f"{n:064d}", bundle_id=str(n))
    with CaptureQueriesContext(connection) as queries:
        assert staff_client.get(reverse("referrals:inbound_messages")).status_code == 200
    listing = next(q["sql"] for q in queries.captured_queries
                   if 'FROM "intake_inboundmessage"' in q["sql"] and "ORDER BY" in q["sql"])
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("EXPLAIN QUERY PLAN " + listing)
            plan = " ".join(row[-1] for row in cursor.fetchall())
            assert "USING INDEX inbound_by_clinic" in plan and "TEMP B-TREE" not in plan, plan
        else:  # a three-row table would be scanned: ask for the index's plan
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute("EXPLAIN " + listing)
            plan = " ".join(row[0] for row in cursor.fetchall())
            assert "Index Scan Backward using inbound_by_clinic" in plan, plan
