"""The UX review of the referral page: appointment location, booking horizon, stale pages,
a timeline entry for every update sent, and wording (see the commit that added this file)."""
import html
import re
from datetime import date, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from harbour.ocean import actions
from harbour.ocean.actions import BOOKING_HORIZON_YEARS, ActionNotAllowed, StaleReferral, booking_horizon
from harbour.referrals.models import Appointment, Event, Referral, StatusChange
from harbour.referrals.staleness import state_token
from harbour.referrals.timeline import describe
from tests.conftest import client_for, make_user
from tests.ocean.conftest import configure, make_referral
from tests.referrals.action_forms import act, action_url, detail, flashes, outbound


@pytest.fixture
def ocean(clinic):
    return configure(clinic, "https://ocean.example.org")


@pytest.fixture
def referral(clinic, ocean):
    return make_referral(clinic)


@pytest.fixture
def colleague(clinic):
    user = make_user(clinic, "marie")
    user.first_name, user.last_name = "Marie", "Roy"
    user.save()
    return user


def form_of(page, name) -> str:
    return re.search(rf'<form[^>]*id="form-{name}".*?</form>', page, re.S).group(0)


def hidden(form, field) -> str:
    return re.search(rf'name="{field}" value="([^"]*)"', form).group(1)


def input_value(form, field) -> str | None:
    tag = re.search(rf'<input[^>]*name="{field}"[^>]*>', form).group(0)
    found = re.search(r'value="([^"]*)"', tag)
    return found.group(1) if found else None


def booking(days=3, hour=10, minute=30, **extra):
    day = (timezone.localtime() + timedelta(days=days)).date()
    return {"date": day.isoformat(), "time": f"{hour:02d}:{minute:02d}", "duration": "45", "location": "Room 2",
            "confirmed": "on", "instructions": "Bring your health card.", **extra}


# --- A. Appointment location ------------------------------------------------------------------


def test_location_is_stored_and_shown(staff_client, referral):
    assert act(staff_client, referral, "book", booking()).status_code == 302
    current = Appointment.objects.get(referral=referral, superseded=False)
    assert current.location == "Room 2"
    assert "Location: Room 2" in detail(staff_client, referral, "en")
    assert "Lieu\u00a0: Room 2" in detail(staff_client, referral, "fr")
    # Still what goes to Ocean: a display-only Location participant of the Appointment.
    [message] = outbound(referral)
    appointment = next(e["resource"] for e in message.bundle["entry"] if e["resource"]["resourceType"] == "Appointment")
    assert {"type": "Location", "display": "Room 2"} in [p["actor"] for p in appointment["participant"]]


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_change_form_opens_on_the_current_appointment(staff_client, referral, lang):
    act(staff_client, referral, "book", booking(hour=10, minute=0))
    form = form_of(detail(staff_client, referral, lang), "rebook")
    day = (timezone.localtime() + timedelta(days=3)).date()
    assert input_value(form, "date") == day.isoformat()  # what <input type=date> shows, in any language
    assert input_value(form, "time") == "10:00"  # no seconds
    assert input_value(form, "location") == "Room 2"
    assert input_value(form, "duration") == "45"
    assert "Bring your health card.</textarea>" in form


def test_rebooking_with_the_prefilled_form_keeps_the_location(staff_client, referral):
    act(staff_client, referral, "book", booking())
    form = form_of(detail(staff_client, referral, "fr"), "rebook")
    data = {name: input_value(form, name) for name in ("date", "time", "duration", "location", "seen_state",
                                                        "idempotency_key")}
    data["instructions"] = "Come 15 minutes early."
    assert staff_client.post(action_url(referral, "rebook"), data).status_code == 302
    current = Appointment.objects.get(referral=referral, superseded=False)
    assert (current.location, current.patient_instruction) == ("Room 2", "Come 15 minutes early.")


def test_an_appointment_from_ocean_has_no_location(staff_client, referral):
    """Ocean's Appointments carry no location (contract §4.1): shown without one, and the change form's Lieu empty."""
    start = timezone.now() + timedelta(days=2)
    Appointment.objects.create(referral=referral, status="booked", start=start, end=start + timedelta(minutes=30),
                               minutes=30, participant_status="accepted", confirmed=True)
    Referral.objects.filter(pk=referral.pk).update(status="booked")
    page = detail(staff_client, referral)
    assert "Location:" not in page.split('id="h-appointments"')[1].split("</section>")[0]
    assert input_value(form_of(page, "rebook"), "location") in (None, "")


# --- B. Booking horizon -----------------------------------------------------------------------


def test_horizon_is_two_years():
    assert BOOKING_HORIZON_YEARS == 2
    assert booking_horizon(date(2026, 11, 27)) == date(2028, 11, 27)
    assert booking_horizon(date(2028, 2, 29)) == date(2030, 2, 28)


@pytest.mark.parametrize("action", ["book", "rebook"])
@pytest.mark.parametrize("lang, text", [
    ("en", "An appointment can be booked at most 2 years ahead"),
    ("fr", "Un rendez-vous peut être fixé au plus 2 ans à l'avance"),
])
def test_a_date_years_ahead_is_refused(staff_client, referral, action, lang, text):
    if action == "rebook":
        act(staff_client, referral, "book", booking())
    before = len(outbound(referral))
    for day in ("3026-01-01", (booking_horizon() + timedelta(days=1)).isoformat()):
        response = act(staff_client, referral, action, booking(date=day), HTTP_ACCEPT_LANGUAGE=lang)
        page = html.unescape(response.content.decode())
        assert response.status_code == 400 and text in page, day
    assert len(outbound(referral)) == before


def test_the_last_day_of_the_horizon_is_accepted(staff_client, referral):
    response = act(staff_client, referral, "book", booking(date=booking_horizon().isoformat()))
    assert response.status_code == 302 and len(outbound(referral)) == 1


def test_date_input_says_its_limit(staff_client, referral):
    form = form_of(detail(staff_client, referral), "book")
    assert f'max="{booking_horizon().isoformat()}"' in form


def test_actions_refuse_a_date_years_ahead_too(referral, staff_user):
    start = timezone.make_aware(datetime(3026, 1, 1, 10, 0))
    with pytest.raises(ActionNotAllowed):
        actions.book(referral, staff_user, start, duration=30)
    assert outbound(referral) == []


# --- C. Stale pages ---------------------------------------------------------------------------


@pytest.mark.parametrize("lang, text", [
    ("en", "Since this page was opened, this referral has become “Declined” (by Marie Roy, at"),
    ("fr", "Depuis l'ouverture de la page, cette consultation est passée à «\u00a0Refusée\u00a0» (par Marie Roy, à"),
])
def test_accept_from_a_page_older_than_a_colleagues_decline_is_refused(staff_client, colleague, referral, lang, text):
    old_page = detail(staff_client, referral, lang)
    old_accept = form_of(old_page, "accept")
    # Meanwhile, in another tab, a colleague declines.
    other = client_for(colleague, "soleil.example.org")
    assert act(other, referral, "decline", {"reason": "Outside our catchment"}).status_code == 302
    changes_before = StatusChange.objects.filter(referral=referral).count()

    response = staff_client.post(action_url(referral, "accept"), {
        "seen_state": hidden(old_accept, "seen_state"), "idempotency_key": hidden(old_accept, "idempotency_key")},
        HTTP_ACCEPT_LANGUAGE=lang)
    assert response.status_code == 409
    page = html.unescape(response.content.decode())
    assert text in page and any(text in m for m in flashes(response))
    # Nothing sent, nothing changed; the page is shown as it is now, ready for a decision made on it.
    assert [m.kind for m in outbound(referral)] == ["decline"]
    assert Referral.objects.get(pk=referral.pk).status == "declined"
    assert StatusChange.objects.filter(referral=referral).count() == changes_before
    assert hidden(form_of(response.content.decode(), "accept"), "seen_state") == state_token(referral)
    # Accepting from the fresh page is a decision made knowingly: it goes through.
    fresh = form_of(detail(staff_client, referral), "accept")
    response = staff_client.post(action_url(referral, "accept"), {
        "seen_state": hidden(fresh, "seen_state"), "idempotency_key": hidden(fresh, "idempotency_key")})
    assert response.status_code == 302 and Referral.objects.get(pk=referral.pk).status == "accepted"


def test_rebook_from_a_page_older_than_a_colleagues_rebook_is_refused(staff_client, colleague, referral):
    act(staff_client, referral, "book", booking())
    old_form = form_of(detail(staff_client, referral), "rebook")
    other = client_for(colleague, "soleil.example.org")
    assert act(other, referral, "rebook", booking(days=6, hour=14)).status_code == 302
    response = staff_client.post(action_url(referral, "rebook"), {**booking(days=5, hour=9),
                                                          "seen_state": hidden(old_form, "seen_state")},
                                 HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 409
    assert "Since this page was opened, the appointment was changed to" in html.unescape(response.content.decode())
    assert "(by Marie Roy, at" in html.unescape(response.content.decode())
    assert timezone.localtime(Appointment.objects.get(referral=referral, superseded=False).start).hour == 14
    assert [m.kind for m in outbound(referral)] == ["book", "rebook"]


def test_a_change_by_ocean_makes_the_page_stale_too(staff_client, referral):
    old = form_of(detail(staff_client, referral), "decline")
    # Ocean (the referrer's side) moved the referral meanwhile: a status change from an inbound message.
    StatusChange.objects.create(referral=referral, from_status="new", to_status="accepted")
    Referral.objects.filter(pk=referral.pk).update(status="accepted")
    response = staff_client.post(action_url(referral, "decline"), {"reason": "No", "seen_state": hidden(old, "seen_state")},
                                 HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 409 and "“Accepted” (by Ocean, at" in html.unescape(response.content.decode())
    assert outbound(referral) == []
    # What the person typed is kept in the re-shown form.
    assert "No</textarea>" in form_of(response.content.decode(), "decline")


def test_a_post_without_the_page_state_is_refused(staff_client, referral):
    response = staff_client.post(action_url(referral, "accept"), {}, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 409
    assert "This page was opened before the referral's latest changes." in html.unescape(response.content.decode())
    assert outbound(referral) == [] and Referral.objects.get(pk=referral.pk).status == "new"


def test_double_clicked_submit_from_one_page_stays_one_silent_effect(staff_client, referral):
    """The first click changes the state; the second (same page, same key) replays the first, not a refusal."""
    form = form_of(detail(staff_client, referral), "accept")
    data = {"seen_state": hidden(form, "seen_state"), "idempotency_key": hidden(form, "idempotency_key")}
    first = staff_client.post(action_url(referral, "accept"), data)
    second = staff_client.post(action_url(referral, "accept"), data, HTTP_ACCEPT_LANGUAGE="en", follow=True)
    assert first.status_code == 302 and second.redirect_chain and second.status_code == 200
    assert "Referral accepted. Ocean will be told." in flashes(second)
    assert len(outbound(referral)) == 1


def test_actions_check_the_state_under_the_lock(referral, staff_user, colleague):
    seen = state_token(referral)
    actions.decline(referral, colleague, "No room", expected_state=seen)
    with pytest.raises(StaleReferral) as refused:
        actions.accept(referral, staff_user, expected_state=seen)
    assert "Declined" in str(refused.value.message) and "Marie Roy" in str(refused.value.message)
    assert [m.kind for m in outbound(referral)] == ["decline"]


def test_a_message_from_an_older_page_is_still_sent(staff_client, referral, colleague):
    """A message changes neither status nor appointment: an older page may still send one."""
    form = form_of(detail(staff_client, referral), "message")
    act(client_for(colleague, "soleil.example.org"), referral, "accept")
    response = staff_client.post(action_url(referral, "message"), {"text": "Any update?",
                                                           "seen_state": hidden(form, "seen_state")})
    assert response.status_code == 302 and [m.kind for m in outbound(referral)] == ["accept", "message"]


@pytest.mark.parametrize("lang, question", [
    ("en", "Decline this referral? Ocean tells the referrer, with your reason."),
    ("fr", "Refuser cette consultation? Ocean en informera le médecin référent, avec votre raison."),
])
def test_decline_asks_for_confirmation(staff_client, referral, lang, question):
    form = html.unescape(form_of(detail(staff_client, referral, lang), "decline"))
    assert f'data-confirm="{question}"' in form
    # Without JavaScript the form still works (the browser just posts it).
    assert act(staff_client, referral, "decline", {"reason": "No"}).status_code == 302


# --- D. A timeline entry for every update sent --------------------------------------------------


def test_each_rebooking_leaves_a_timeline_entry(staff_client, referral):
    act(staff_client, referral, "book", booking())
    act(staff_client, referral, "rebook", booking(days=5, hour=14))
    act(staff_client, referral, "rebook", booking(days=5, hour=14, instructions="Fast from midnight."))
    act(staff_client, referral, "rebook", booking(days=5, hour=14, instructions="Fast from midnight.",
                                                  location="Room 9"))
    messages = outbound(referral)
    assert [m.kind for m in messages] == ["book", "rebook", "rebook", "rebook"]
    events = list(Event.objects.filter(referral=referral, outbound_id__isnull=False).order_by("id"))
    assert [e.outbound_id for e in events] == [m.pk for m in messages]
    from django.utils import translation

    with translation.override("en"):
        texts = [describe(e) for e in events]
    assert texts[2].startswith("Appointment of ") and texts[2].endswith("updated (instructions to the patient).")
    assert texts[3].endswith("updated (location).")
    assert "Appointment moved to" in texts[1]


def test_each_status_update_leaves_a_timeline_entry(staff_client, referral):
    act(staff_client, referral, "accept")
    act(staff_client, referral, "decline", {"reason": "Full"})
    act(staff_client, referral, "accept")
    assert Event.objects.filter(referral=referral, code="task_status").count() == 3


# --- F. Wording -------------------------------------------------------------------------------


def test_no_double_period_after_a_time_in_english(staff_client, referral):
    start = timezone.localtime().replace(hour=10, minute=0, second=0, microsecond=0) + timedelta(days=2)
    for code in ("appointment_booked", "appointment_changed"):
        Event.objects.create(clinic=referral.clinic, referral=referral, kind="x", code=code,
                             params={"start": start.isoformat(), "confirmed": True})
    page = html.unescape(detail(staff_client, referral, "en"))
    assert "10 a.m. (confirmed)." in page and "a.m.." not in page


@pytest.mark.parametrize("lang, text", [
    ("en", "Status changed from New to Accepted."),
    ("fr", "La consultation est passée de «\u00a0Nouvelle\u00a0» à «\u00a0Acceptée\u00a0»."),
])
def test_status_change_reads_naturally(staff_client, referral, lang, text):
    act(staff_client, referral, "accept")
    assert text in html.unescape(detail(staff_client, referral, lang))


def test_french_labels_of_the_pages(staff_client, referral):
    page = html.unescape(detail(staff_client, referral, "fr"))
    assert "Fiche de l'annuaire destinataire" in page and "Inscription" not in page
    referral.attachments.create(kind="letter", key="l1", title="Roy", content_type="application/pdf")
    page = html.unescape(detail(staff_client, referral, "fr"))
    assert "Lettre de consultation\u00a0:" in page
    listing = staff_client.get(reverse("referrals:list"), HTTP_ACCEPT_LANGUAGE="fr").content.decode()
    assert ">Filtrer</button>" in listing
    inbound = html.unescape(staff_client.get(reverse("referrals:inbound_messages"),
                                             HTTP_ACCEPT_LANGUAGE="fr").content.decode())
    assert "<h1>Messages entrants</h1>" in inbound and "Ocean" in inbound.split("<h1>")[1].split("</p>")[0]
    assert '<th scope="col">Reçu</th>' in inbound


def test_french_catalogues_put_a_non_breaking_space_before_colons():
    import polib
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    for app in ("referrals", "ocean"):
        for entry in polib.pofile(str(root / f"harbour/{app}/locale/fr/LC_MESSAGES/django.po")):
            assert "fuzzy" not in entry.flags and entry.translated(), (app, entry.msgid)
            for translated in [entry.msgstr, *entry.msgstr_plural.values()]:
                text = re.sub(r"https?://\S+|<[^>]+>|\d:\d", "", translated)
                assert not re.search(r"[^\u00a0]:", text), (app, entry.msgid)
