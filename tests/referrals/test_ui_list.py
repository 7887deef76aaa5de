"""The referral lists (« Consultations »): tabs, filters, unread flags and count, order, pages, isolation."""
from datetime import datetime, timedelta, timezone as dt_timezone

import pytest
from django.urls import reverse
from django.utils import timezone

from harbour.ocean.models import OutboundMessage
from harbour.referrals import reading
from harbour.referrals.models import Referral, ReferralRead
from tests.conftest import client_for, make_user

URL = reverse("referrals:list")
T0 = datetime(2025, 6, 2, 12, 0, tzinfo=dt_timezone.utc)


def make(clinic, ref, *, minutes=0, direction="received", **fields):
    fields.setdefault("last_activity_at", T0 + timedelta(minutes=minutes))
    return Referral.objects.create(clinic=clinic, ocean_ref=ref, direction=direction, **fields)


def ids(response) -> list[int]:
    """Referral ids in page order."""
    import re

    return [int(n) for n in re.findall(r'<tr id="referral-(\d+)"', response.content.decode())]


@pytest.fixture
def old_user(staff_user):
    """A user who joined before every referral of these tests (so nothing is read by default)."""
    staff_user.date_joined = T0 - timedelta(days=365)
    staff_user.save()
    return staff_user


@pytest.fixture
def client(old_user):
    return client_for(old_user, "soleil.example.org")


def test_received_is_the_default_tab_and_sent_is_separate(client, clinic):
    received = make(clinic, "r-1", patient_family="Tremblay")
    sent = make(clinic, "s-1", direction="sent", patient_family="Gagnon", status="new", ocean_folder="sent")
    page = client.get(URL, HTTP_ACCEPT_LANGUAGE="en")
    assert page.status_code == 200 and ids(page) == [received.pk]
    assert ids(client.get(URL + "?direction=sent")) == [sent.pk]
    text = page.content.decode()
    assert "Received" in text and "Sent" in text and "Direction unknown" not in text


def test_direction_unknown_tab_only_when_some_exist(client, clinic):
    unknown = make(clinic, "u-1")
    unknown.direction = "unknown"
    unknown.save()
    assert "Direction unknown" in client.get(URL, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert ids(client.get(URL + "?direction=unknown")) == [unknown.pk]
    assert ids(client.get(URL + "?direction=bogus")) == []  # falls back to Received, which is empty


def test_newest_activity_first_and_pages_of_fifty(client, clinic):
    referrals = [make(clinic, f"r-{n}", minutes=n) for n in range(53)]
    first = client.get(URL)
    assert ids(first) == [r.pk for r in reversed(referrals)][:50]
    assert "page=2" in first.content.decode() and "page=0" not in first.content.decode()
    second = client.get(URL + "?direction=received&page=2")
    assert ids(second) == [referrals[2].pk, referrals[1].pk, referrals[0].pk]
    assert "page=3" not in second.content.decode()
    assert client.get(URL + "?page=abc").status_code == 200  # a bad page number is page 1


def test_same_activity_time_is_ordered_by_id(client, clinic):
    a, b = make(clinic, "a"), make(clinic, "b")
    assert ids(client.get(URL)) == [b.pk, a.pk]


@pytest.mark.parametrize("folder, expected", [
    ("new", ["new"]), ("pending_booking", ["pending"]), ("booked", ["unconfirmed", "confirmed"]),
    ("awaiting_reply", ["awaiting"]), ("declined", ["declined"]), ("cancelled", ["cancelled"]),
    ("completed", ["completed"]),
])
def test_folder_filter(client, clinic, folder, expected):
    for n, (ref, ocean_folder) in enumerate([
        ("new", "new"), ("pending", "pending_booking"), ("unconfirmed", "booking_unconfirmed"),
        ("confirmed", "booking_confirmed"), ("awaiting", "awaiting_response"), ("declined", "declined"),
        ("cancelled", "cancelled"), ("completed", "completed"),
    ]):
        make(clinic, ref, minutes=n, ocean_folder=ocean_folder)
    found = {Referral.objects.get(pk=pk).ocean_ref for pk in ids(client.get(f"{URL}?folder={folder}"))}
    assert found == set(expected)


def test_not_synced_filter_and_row_flag(client, clinic):
    synced, waiting, dead, delivered = (make(clinic, ref, minutes=n) for n, ref in enumerate(["a", "b", "c", "d"]))
    for referral, state in ((waiting, "pending"), (dead, "dead"), (delivered, "delivered")):
        OutboundMessage.objects.create(clinic=clinic, referral=referral, kind="accept", event_code="x", bundle={},
                                       state=state)
    response = client.get(URL + "?folder=not_synced", HTTP_ACCEPT_LANGUAGE="en")
    assert ids(response) == [dead.pk, waiting.pk]
    assert response.content.decode().count("not synced to Ocean") == 2


def test_date_filters_on_activity_and_authored(client, clinic):
    early = make(clinic, "early", authored_at=datetime(2025, 1, 10, 15, tzinfo=dt_timezone.utc))
    late = make(clinic, "late", minutes=60 * 24 * 10, authored_at=datetime(2025, 3, 1, 15, tzinfo=dt_timezone.utc))
    assert ids(client.get(URL + "?date_from=2025-06-05")) == [late.pk]
    assert ids(client.get(URL + "?date_to=2025-06-02")) == [early.pk]
    assert ids(client.get(URL + "?date_field=authored&date_from=2025-01-01&date_to=2025-01-31")) == [early.pk]
    assert ids(client.get(URL + "?date_field=authored&date_from=2025-02-01")) == [late.pk]


@pytest.mark.parametrize("lang, message", [("en", "Enter a valid date."), ("fr", "Saisissez une date valide.")])
def test_invalid_dates_are_answered_and_ignored(client, clinic, lang, message):
    referral = make(clinic, "r")
    response = client.get(URL + "?date_from=2025-13-45", HTTP_ACCEPT_LANGUAGE=lang)
    assert response.status_code == 200 and message in response.content.decode()
    assert ids(response) == [referral.pk]


@pytest.mark.parametrize("lang, message", [
    ("en", "The end date is before the start date."), ("fr", "La date de fin précède la date de début."),
])
def test_reversed_date_range_is_answered(client, clinic, lang, message):
    make(clinic, "r")
    response = client.get(URL + "?date_from=2025-06-10&date_to=2025-06-01", HTTP_ACCEPT_LANGUAGE=lang)
    assert response.status_code == 200 and message in response.content.decode()


def test_patient_name_filter_is_case_insensitive_on_either_name(client, clinic):
    marie = make(clinic, "m", patient_family="Tremblay", patient_given="Marie")
    make(clinic, "j", minutes=1, patient_family="Gagnon", patient_given="Jean")
    assert ids(client.get(URL + "?patient=tremb")) == [marie.pk]
    assert ids(client.get(URL + "?patient=MARIE+tremblay")) == [marie.pk]
    assert ids(client.get(URL + "?patient=marie+gagnon")) == []


def test_health_card_filter_takes_digits_as_typed(client, clinic):
    marie = make(clinic, "m", patient_hcn="1234567890")
    make(clinic, "j", minutes=1, patient_hcn="9876543210")
    for typed in ("1234567890", "1234-567-890", "1234 567 890 AB"):
        assert ids(client.get(URL, {"patient": typed})) == [marie.pk], typed


def test_reference_filter_exact_or_prefix(client, clinic):
    one = make(clinic, "71db1a5c-89ce-41d5-bc71-8466f6c2f182")
    make(clinic, "0a1b2c3d-0000-0000-0000-000000000000", minutes=1)
    assert ids(client.get(URL, {"ref": "71db1a5c-89ce-41d5-bc71-8466f6c2f182"})) == [one.pk]
    assert ids(client.get(URL, {"ref": " 71db1a5c "})) == [one.pk]
    assert ids(client.get(URL, {"ref": "ffff"})) == []


def test_filters_survive_paging_links(client, clinic):
    for n in range(51):
        make(clinic, f"r-{n}", minutes=n, ocean_folder="completed")
    page = client.get(URL + "?folder=completed").content.decode()
    assert "folder=completed" in page.split('rel="next"')[0].rsplit("href=", 1)[1]


def test_unread_flag_and_nav_count(client, clinic, old_user):
    opened = make(clinic, "opened", patient_family="Lu")
    fresh = make(clinic, "fresh", minutes=1, patient_family="Pas lu")
    page = client.get(URL, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert page.count('class="unread"') == 2 and 'id="unread-count"' in page
    assert '<span class="badge" id="unread-count" title="Referrals updated since you last opened them">2<' in page

    assert client.get(reverse("referrals:detail", args=[opened.pk])).status_code == 200
    page = client.get(URL, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert f'<tr id="referral-{fresh.pk}" class="unread">' in page
    assert f'<tr id="referral-{opened.pk}">' in page
    assert ">1<" in page.split('id="unread-count"')[1][:120]

    # An update arrives after the user opened it: unread again.
    Referral.objects.filter(pk=opened.pk).update(last_activity_at=timezone.now() + timedelta(seconds=5))
    page = client.get(URL).content.decode()
    assert f'<tr id="referral-{opened.pk}" class="unread">' in page


def test_unread_is_per_user(client, clinic, old_user):
    referral = make(clinic, "r")
    colleague = make_user(clinic, "colleague")
    colleague.date_joined = T0 - timedelta(days=1)
    colleague.save()
    client.get(reverse("referrals:detail", args=[referral.pk]))
    assert reading.unread_count(old_user, clinic) == 0
    assert reading.unread_count(colleague, clinic) == 1
    assert ReferralRead.objects.filter(user=old_user, referral=referral).count() == 1
    client.get(reverse("referrals:detail", args=[referral.pk]))  # opening again keeps one row
    assert ReferralRead.objects.filter(user=old_user, referral=referral).count() == 1


def test_new_user_starts_with_nothing_unread_and_count_is_capped(clinic, old_user):
    Referral.objects.bulk_create([
        Referral(clinic=clinic, ocean_ref=f"r-{n}", direction="received", last_activity_at=timezone.now())
        for n in range(reading.UNREAD_CAP + 5)])
    assert reading.unread_count(old_user, clinic) == reading.UNREAD_CAP + 1  # shown as "99+"
    page = client_for(old_user, "soleil.example.org").get(URL).content.decode()
    assert f">{reading.UNREAD_CAP}+<" in page
    newcomer = make_user(clinic, "newcomer")
    assert reading.unread_count(newcomer, clinic) == 0


def test_mark_all_as_read(client, clinic, old_user):
    make(clinic, "a")
    make(clinic, "b")
    assert client.get(reverse("referrals:mark_all_read")).status_code == 405
    response = client.post(reverse("referrals:mark_all_read"))
    assert response.status_code == 302
    assert reading.unread_count(old_user, clinic) == 0
    assert 'class="unread"' not in client.get(URL).content.decode()


def test_other_clinics_referrals_never_listed_nor_counted(clinic, other_clinic, other_admin, old_user):
    make(clinic, "mine", patient_family="Tremblay")
    other_admin.date_joined = T0 - timedelta(days=1)
    other_admin.save()
    other = client_for(other_admin, "lune.example.org")
    page = other.get(URL).content.decode()
    assert "Tremblay" not in page and 'id="unread-count"' not in page
    assert reading.unread_count(other_admin, other_clinic) == 0


def test_list_in_french_and_english(client, clinic):
    make(clinic, "r", ocean_folder="pending_booking")
    french = client.get(URL, HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert "Reçues" in french and "Envoyées" in french and "Dossier Ocean" in french
    english = client.get(URL, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Received" in english and "Pending Booking" in english


def test_nav_links_follow_permissions(client, admin_client):
    staff_nav = client.get(URL, HTTP_ACCEPT_LANGUAGE="en").content.decode().split("<nav", 2)[1]
    for link in (reverse("referrals:list"), reverse("patients:charts"), reverse("referrals:inbound_messages")):
        assert f'href="{link}"' in staff_nav
    assert reverse("clinics:ocean_settings") not in staff_nav and reverse("clinics:users") not in staff_nav
    admin_nav = admin_client.get(URL, HTTP_ACCEPT_LANGUAGE="en").content.decode().split("<nav", 2)[1]
    for link in (reverse("clinics:ocean_settings"), reverse("clinics:users"), reverse("audit:log")):
        assert f'href="{link}"' in admin_nav


def test_home_leads_to_the_received_list(client, clinic):
    make(clinic, "r")
    page = client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert f'href="{URL}?direction=received" id="go-to-received"' in page and "1 unread" in page


def test_patient_name_filter_ignores_accents_and_matches_name_starts(client, clinic):
    cote = make(clinic, "c", patient_family="Côté", patient_given="Émilie")
    make(clinic, "x", minutes=1, patient_family="Lacoste", patient_given="Noé")
    for typed in ("cote", "CÔTÉ", "emilie", "Émi", "côté émilie"):
        assert ids(client.get(URL, {"patient": typed})) == [cote.pk], typed
    assert ids(client.get(URL, {"patient": "coste"})) == []  # the start of a name, not any part of it
    Referral.objects.filter(pk=cote.pk).update(patient_family="Bélanger")  # the database keeps the key right
    assert ids(client.get(URL, {"patient": "belanger"})) == [cote.pk]


def test_filter_bar_is_two_labelled_rows_with_the_button_inline(client, clinic):
    """Compact filter bar: folder, patient, reference; then date kind, from, to and Filter, every input labelled."""
    import re
    from pathlib import Path

    page = client.get(URL, HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    form = re.search(r'<form[^>]*id="referral-filters".*?</form>', page, re.S).group(0)
    assert 'class="form filters"' in form
    rows = re.findall(r'<div class="filter-row[^"]*">(.*?)\n  </div>', form, re.S)
    assert len(rows) == 2
    assert [re.findall(r'<(?:input|select)[^>]*id="(id_[a-z_]+)"', row) for row in rows] == [
        ["id_folder", "id_patient", "id_ref"], ["id_date_field", "id_date_from", "id_date_to"]]
    assert re.search(r"<button type=\"submit\" class=\"primary\">Filtrer</button>", rows[1])  # the verb, inline on the dates row
    for field in ("folder", "patient", "ref", "date_field", "date_from", "date_to"):
        assert f'<label for="id_{field}">' in form, field
    css = (Path(__file__).resolve().parents[2] / "harbour/core/static/harbour/harbour.css").read_text()
    assert re.search(r"\.filters \.filter-row \{ display: grid;", css)
    assert re.search(r"@media \(max-width: 720px\) \{\s*\.filters \.filter-row", css)  # narrow screens
