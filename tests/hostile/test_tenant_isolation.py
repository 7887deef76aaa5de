"""Clinic B's administrator, on B's own host, asks for clinic A's ids: always 404 (or 403).

Every URL that takes an id is tried with each mix of A's and B's objects (B's referral with A's
attachment, and so on), by GET and POST. A's patient never appears in a response, and nothing of
either clinic changes. The same URLs with only B's ids work, so the refusals are about the ids.
Ids posted in forms (a chart to link, a message to reprocess) are checked the same way.
"""
import itertools

import pytest
from django.urls import reverse

from harbour.intake.models import InboundMessage
from harbour.patients.models import ReferralPatientLink
from tests.hostile.conftest import changed_tables, database_state
from tests.hostile.test_staff_matrix import KNOWN, body, client, url_for
from tests.hostile.urlmap import LITERAL_KINDS, VIEWS

WITH_IDS = [url for url in KNOWN if any(kind not in LITERAL_KINDS for kind in VIEWS[url.view].id_kinds.values())]


def id_arguments(url) -> list[str]:
    return [arg for arg, kind in VIEWS[url.view].id_kinds.items() if kind not in LITERAL_KINDS]


def mixes(url):
    """Every assignment of owners ("a"/"b") to the URL's id arguments with at least one of A's."""
    arguments = id_arguments(url)
    for owners in itertools.product("ab", repeat=len(arguments)):
        if "a" in owners:
            yield dict(zip(arguments, owners))


def test_urls_with_ids_are_found():
    assert {"referrals:detail", "referrals:document", "patients:chart", "clinics:user_permissions"} <= {
        url.name for url in WITH_IDS}


@pytest.mark.parametrize("url", WITH_IDS, ids=lambda url: url.test_id)
def test_another_clinics_ids_are_not_found(world, url):
    rule = VIEWS[url.view]
    b_admin = client(world.b.users["admin"], world.b.host)
    before = database_state()
    for owners in mixes(url):
        path = url_for(url, world, owners)
        for method in ("GET", "POST"):
            response = b_admin.get(path) if method == "GET" else b_admin.post(path, {})
            if method not in rule.methods and response.status_code == 405:
                continue
            assert response.status_code in (404, 403), f"{method} {path} {owners}: {response.status_code}"
            assert world.a.patient_family not in body(response), f"{method} {path} shows A's patient"
    changed = changed_tables(before, database_state())
    assert not changed, f"{url.route} with A's ids changed {changed}"

    # Control: the same URL with B's own ids is answered (the ids above were the only difference).
    own = url_for(url, world, {arg: "b" for arg in id_arguments(url)})
    method = "GET" if "GET" in rule.methods else "POST"
    response = b_admin.get(own) if method == "GET" else b_admin.post(own, {})
    # 409: a referral action without the state its page showed is refused as from an out-of-date page.
    assert response.status_code in (200, 302, 400, 409), f"{method} {own} (B's own ids): {response.status_code}"
    assert world.a.patient_family not in body(response)


def test_linking_another_clinics_chart_by_its_id_is_refused(world):
    b_admin = client(world.b.users["admin"], world.b.host)
    referral = world.b.objects["referral"]
    b_admin.post(reverse("patients:unlink", kwargs={"referral_pk": referral.pk}), {})
    before = database_state()
    response = b_admin.post(
        reverse("patients:link", kwargs={"referral_pk": referral.pk}), {"chart": world.a.objects["chart"].pk})
    assert response.status_code in (404, 403, 302)
    assert changed_tables(before, database_state()) == []
    assert ReferralPatientLink.objects.get(referral=referral).chart_id is None
    # By chart number: A's chart number names nothing in B.
    a_number = world.a.objects["chart"].chart_number
    b_number = world.b.objects["chart"].chart_number
    if a_number != b_number:
        b_admin.post(reverse("patients:link", kwargs={"referral_pk": referral.pk}), {"chart_number": a_number})
        assert ReferralPatientLink.objects.get(referral=referral).chart_id is None


def test_reprocessing_another_clinics_message_by_its_id_is_refused(world):
    b_admin = client(world.b.users["admin"], world.b.host)
    a_message = world.a.objects["inbound"]
    response = b_admin.post(reverse("referrals:reprocess"), {"message": a_message.pk}, follow=True)
    assert response.status_code == 200
    a_message.refresh_from_db()
    assert a_message.state == InboundMessage.State.FAILED
    assert world.a.patient_family not in body(response)


def test_lists_show_only_the_hosts_clinic(world):
    """B's lists and searches, even searched by A's patient name or HCN, show none of A's rows."""
    b_admin = client(world.b.users["admin"], world.b.host)
    family, given = world.a.patient_family, "Zébulonne"  # A's patient (a search echoes its own terms)
    a_referral = f"/referrals/{world.a.objects['referral'].pk}/"
    for path, absent in (
        ("/referrals/", family), (f"/referrals/?patient={family}", given), ("/referrals/?patient=9876543217", family),
        ("/referrals/inbound/", "bundle-a"), ("/patients/", family), (f"/patients/?q={family}", given),
        ("/patients/?q=9876543217", family), ("/ocean/outbox/failures/", family), ("/settings/users/", "spare-a"),
        ("/audit/", "admin-a"),
    ):
        response = b_admin.get(path)
        assert response.status_code == 200, path
        assert absent not in body(response), path
        assert a_referral not in body(response), path
    # Control: B sees its own rows on the same pages.
    assert world.b.patient_family in body(b_admin.get("/referrals/"))
    assert world.b.patient_family in body(b_admin.get("/patients/?q=9876543217"))
    assert "spare-b" in body(b_admin.get("/settings/users/"))
