"""The receiving site's staff in Ocean's portal: Accept, Decline, Book, Cancel appointment.

Each makes the change the equivalent EMR message makes, and Ocean reports it to every
integration of the referral (the target's and the referrer's copies) as the EMR-made change is;
the sender's side is refused (§5.4). Through harbour.sandbox.staff, the admin API and the portal.
"""
import html

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from harbour.sandbox import sites, staff
from harbour.sandbox.delivery import deliver_due
from harbour.sandbox.errors import SandboxError
from harbour.sandbox.models import Delivery, SiteUser
from tests.sandbox.conftest import send_referral
from tests.sandbox.test_fhir_api import Emr, message, task

PASSWORD = "ocean-sandbox-pw-1"


@pytest.fixture
def world(pair, receiver):
    """A referral from 2001 to the clinic 1234, delivered; the referrer has a copy integration too."""
    sites.register_integration(pair["referrer"], name="Referrer EMR", request_url=receiver.url + "/copies", send_copy=True)
    referral = send_referral(pair)
    deliver_due()
    receiver.requests.clear()
    return {**pair, "referral": referral}


def queued(referral) -> list[tuple[str, str, str]]:
    """(event, reason, integration name) of every delivery queued for the referral after its creation."""
    return [(d.event, d.reason, d.integration.name)
            for d in referral.deliveries.exclude(event="add-service-request").select_related("integration").order_by("id")]


EVERYONE = [("notify-update-service-request", "target", "EMR integration"), ("notify-update-service-request", "copy", "Referrer EMR")]


def shape(bundle) -> tuple:
    """What must not differ between a staff-made and an EMR-made change: event, author, resources."""
    header = bundle["entry"][0]["resource"]
    return (header["eventCoding"]["code"], header["author"] == header["destination"][0]["receiver"],
            sorted(e["resource"]["resourceType"] for e in bundle["entry"][1:]))


def resources(bundle, rtype: str) -> list[dict]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == rtype]


# --- The actions ---------------------------------------------------------------------------------

def test_accept_decline_and_reaccept_change_the_folder_and_notify_every_integration(world, receiver):
    referral, clinic = world["referral"], world["clinic"]
    staff.accept(referral, clinic)
    referral.refresh_from_db()
    assert (referral.folder, referral.task_status, referral.status_reason) == ("pending_booking", "accepted", "")
    assert queued(referral) == EVERYONE
    staff.decline(referral, clinic, "  Not our catchment area ")
    referral.refresh_from_db()
    assert (referral.folder, referral.task_status, referral.status_reason) == ("declined", "rejected", "Not our catchment area")
    staff.accept(referral, clinic, via="api")
    referral.refresh_from_db()
    assert referral.folder == "pending_booking" and referral.status_reason == ""
    assert queued(referral) == EVERYONE * 3
    assert [(e.kind, e.via, e.site_id) for e in referral.events.exclude(kind="sent")] == [
        ("status", "portal", clinic.pk), ("status", "portal", clinic.pk), ("status", "api", clinic.pk)]
    assert referral.events.exclude(kind="sent")[1].text == "Status set to rejected (Declined). Reason: Not our catchment area"

    deliver_due()
    target = receiver.bundles("/fhir_bundles")
    assert len(target) == 3 and len(receiver.bundles("/copies")) == 3
    declined = target[1]
    [declined_task] = resources(declined, "Task")
    assert declined_task["status"] == "rejected" and declined_task["statusReason"] == {"text": "Not our catchment area"}
    assert "authoredOn" not in declined_task  # like every sandbox Task (Harbour reads it as the current status)


def test_the_bundles_have_the_shape_of_an_emr_made_change(world, pair, receiver):
    """The same Task change made by the clinic's EMR ($process-messages) and by its staff in the portal."""
    by_emr = send_referral(pair)
    Emr(pair["clinic"]).send(message("notify-update-process-request", by_emr.ref, task("rejected", "Full")))
    staff.decline(world["referral"], world["clinic"], "Full")
    deliver_due()
    emr_made = [b for b in receiver.bundles() if b["entry"][0]["resource"]["eventCoding"]["code"] != "add-service-request"
                and resources(b, "ServiceRequest")[0]["identifier"][0]["value"] == str(by_emr.ref)]
    staff_made = [b for b in receiver.bundles() if resources(b, "ServiceRequest")[0]["identifier"][0]["value"] == str(world["referral"].ref)]
    assert len(emr_made) == len(staff_made) == 1
    assert shape(emr_made[0]) == shape(staff_made[0])
    assert shape(staff_made[0])[:2] == ("notify-update-service-request", True)  # the receiver's change
    assert [queued(r)[-1] for r in (by_emr, world["referral"])] == [EVERYONE[-1]] * 2


def test_book_rebook_and_cancel_the_appointment(world, receiver):
    referral, clinic = world["referral"], world["clinic"]
    start = staff.appointment_start("2030-06-10", "14:00")
    staff.book(referral, clinic, start=start, minutes=45, confirmed=False, instruction="Bring your card.")
    referral.refresh_from_db()
    appointment = referral.appointments.get()
    assert referral.folder == "booked" and not appointment.confirmed
    assert appointment.start.isoformat() == "2030-06-10T18:00:00+00:00" and (appointment.end - appointment.start).seconds == 45 * 60
    assert appointment.patient_instruction == "Bring your card."
    # Rebooked, confirmed: the same appointment, a new time (as an EMR's update does).
    staff.book(referral, clinic, start=staff.appointment_start("2030-06-11", "09:30"), minutes=30, confirmed=True)
    appointment = referral.appointments.get()
    assert appointment.confirmed and appointment.start.isoformat() == "2030-06-11T13:30:00+00:00"
    staff.cancel_appointment(referral, clinic)
    referral.refresh_from_db()
    assert referral.folder == "pending_booking" and referral.appointments.get().cancelled
    assert queued(referral) == EVERYONE * 3
    deliver_due()
    booked, rebooked, cancelled = receiver.bundles()
    [first] = resources(booked, "Appointment")
    assert (first["start"], first["minutesDuration"], first["participant"][1]["status"]) == ("2030-06-10T14:00:00-04:00", 45, "tentative")
    assert resources(rebooked, "Appointment")[0]["participant"][1]["status"] == "accepted"
    # §5.2: Ocean signals the cancellation as an undated proposed Appointment.
    [gone] = resources(cancelled, "Appointment")
    assert gone["status"] == "proposed" and "start" not in gone
    with pytest.raises(SandboxError, match="There is no booked appointment to cancel.") as refused:
        staff.cancel_appointment(referral, clinic)
    assert refused.value.status == 409


def test_a_booking_reopens_a_declined_referral(world):
    referral, clinic = world["referral"], world["clinic"]
    staff.decline(referral, clinic, "Wrong clinic")
    staff.book(referral, clinic, start=staff.appointment_start("2030-01-02", "08:00"), minutes=30, confirmed=True)
    referral.refresh_from_db()
    assert referral.folder == "booked"


@pytest.mark.parametrize("act", [
    lambda r, s: staff.accept(r, s),
    lambda r, s: staff.decline(r, s, "No"),
    lambda r, s: staff.decline(r, s, ""),  # the role is checked before the reason
    lambda r, s: staff.book(r, s, start=staff.appointment_start("2030-01-02", "08:00"), minutes=30, confirmed=True),
    lambda r, s: staff.cancel_appointment(r, s),
])
def test_the_sender_is_refused_and_nothing_changes(world, act):
    referral = world["referral"]
    with pytest.raises(SandboxError) as refused:
        act(referral, world["referrer"])
    assert refused.value.status == 403 and refused.value.message == staff.NOT_RECEIVER
    referral.refresh_from_db()
    assert referral.folder == "new" and not referral.task_status and not queued(referral)


def test_input_and_state_refusals(world):
    referral, clinic = world["referral"], world["clinic"]
    for reason in ("", "   ", None, "x" * 1001):
        with pytest.raises(SandboxError) as refused:
            staff.decline(referral, clinic, reason)
        assert refused.value.field == "reason" and refused.value.status == 400
    for minutes in (0, 4, 481, "abc", None, True):
        with pytest.raises(SandboxError, match="The duration is a number of minutes from 5 to 480.") as refused:
            staff.book(referral, clinic, start=staff.appointment_start("2030-01-02", "08:00"), minutes=minutes, confirmed=False)
        assert refused.value.field == "duration"
    with pytest.raises(SandboxError, match="YYYY-MM-DD") as refused:
        staff.appointment_start("02/01/2030", "08:00")
    with pytest.raises(SandboxError, match="HH:MM"):
        staff.appointment_start("2030-01-02", "8h")
    assert not queued(referral)
    from harbour.sandbox.referrals import cancel_referral

    cancel_referral(referral, world["referrer"])
    with pytest.raises(SandboxError, match="cancelled by its sender") as refused:
        staff.accept(referral, clinic)
    assert refused.value.status == 409


# --- The admin API -------------------------------------------------------------------------------

def test_the_admin_api_offers_the_actions_to_the_receiver_only(world, api):
    ref = world["referral"].ref
    refused = api.post(f"referrals/{ref}/accept", {"site": "2001"}, expect=403)
    assert refused == {"error": staff.NOT_RECEIVER, "field": None}
    for path, body in (("decline", {"reason": "No"}), ("book", {"date": "2030-01-02", "time": "08:00"}), ("cancel-appointment", {})):
        assert api.post(f"referrals/{ref}/{path}", {"site": "2001", **body}, expect=403)["error"] == staff.NOT_RECEIVER
    assert api.post(f"referrals/{ref}/accept", {"site": "9999"}, expect=404)["field"] == "site"
    assert api.post("referrals/not-a-ref/accept", {"site": "1234"}, expect=404)["error"] == "No referral not-a-ref."

    state = api.post(f"referrals/{ref}/decline", {"site": "1234", "reason": "Not our area"}, expect=200)
    assert (state["folder"], state["task_status"], state["status_reason"]) == ("declined", "rejected", "Not our area")
    assert [e["via"] for e in state["events"] if e["kind"] == "status"] == ["api"]
    assert [(d["event"], d["reason"], d["state"]) for d in state["deliveries"]][-2:] == [
        ("notify-update-service-request", "target", "pending"), ("notify-update-service-request", "copy", "pending")]
    assert api.post(f"referrals/{ref}/accept", {"site": "1234"}, expect=200)["folder"] == "pending_booking"
    state = api.post(f"referrals/{ref}/book", {"site": "1234", "date": "2030-03-04", "time": "10:15", "duration": 20,
                                               "confirmed": True, "instruction": "Fasting."}, expect=200)
    [appointment] = state["appointments"]
    assert state["folder"] == "booked" and appointment["confirmed"] and appointment["patient_instruction"] == "Fasting."
    assert appointment["start"] == "2030-03-04T15:15:00+00:00" and appointment["end"] == "2030-03-04T15:35:00+00:00"
    assert api.post(f"referrals/{ref}/cancel-appointment", {"site": "1234"}, expect=200)["folder"] == "pending_booking"
    assert api.post(f"referrals/{ref}/cancel-appointment", {"site": "1234"}, expect=409)["error"] == "There is no booked appointment to cancel."
    assert len(api.get(f"referrals/{ref}")["deliveries"]) == 2 + 4 * 2  # the referral to both, then 4 changes


@pytest.mark.parametrize("path, body, field, error", [
    ("decline", {}, "reason", "Enter the reason for declining."),
    ("decline", {"reason": "  "}, "reason", "Enter the reason for declining."),
    ("book", {"time": "08:00"}, "date", "Enter the appointment's date as YYYY-MM-DD."),
    ("book", {"date": "2030-01-02"}, "time", "Enter the appointment's time as HH:MM."),
    ("book", {"date": "2030-01-02", "time": "08:00", "duration": 0}, "duration", "The duration is a number of minutes from 5 to 480."),
    ("book", {"date": "2030-01-02", "time": "08:00", "duration": "long"}, "duration", "The duration is a number of minutes from 5 to 480."),
    ("book", {"date": "2030-01-02", "time": "08:00", "confirmed": "yes"}, "confirmed", "confirmed is true or false."),
])
def test_the_admin_api_validation_errors(world, api, path, body, field, error):
    ref = world["referral"].ref
    assert api.post(f"referrals/{ref}/{path}", {"site": "1234", **body}, expect=400) == {"error": error, "field": field}
    assert api.get(f"referrals/{ref}")["folder"] == "new" and not queued(world["referral"])


# --- The portal ----------------------------------------------------------------------------------

def page_text(response) -> str:
    return html.unescape(response.content.decode())


@pytest.fixture
def portal(world):
    """dr.soleil, a member of both sites: the clinic's page and the referrer's page of one referral."""
    client = Client()
    client.post("/signup/", {"username": "dr.soleil", "password": PASSWORD})
    user = get_user_model().objects.get(username="dr.soleil")
    for site in (world["clinic"], world["referrer"]):
        SiteUser.objects.create(site=site, user=user)
    ref = world["referral"].ref
    return {"client": client, "clinic": f"/site/1234/referrals/{ref}/", "referrer": f"/site/2001/referrals/{ref}/"}


FORMS = ("form-accept", "form-decline", "form-book", "form-cancel-appointment")


def forms_on(page: str) -> list[str]:
    return [f for f in FORMS if f'id="{f}"' in page]


def test_the_receivers_page_has_the_actions_and_the_senders_has_none(world, portal):
    client = portal["client"]
    assert forms_on(page_text(client.get(portal["clinic"]))) == ["form-accept", "form-decline", "form-book"]
    sender_page = page_text(client.get(portal["referrer"]))
    assert forms_on(sender_page) == [] and "Receiver actions" not in sender_page

    response = client.post(portal["clinic"] + "decline/", {"reason": "Not our catchment area"})
    assert response.status_code == 302 and response["Location"] == portal["clinic"]
    page = page_text(client.get(portal["clinic"]))
    assert 'id="folder">Declined' in page and "rejected: Not our catchment area" in page and "Referral declined." in page
    assert forms_on(page) == ["form-accept", "form-book"]
    client.post(portal["clinic"] + "accept/")
    assert forms_on(page_text(client.get(portal["clinic"]))) == ["form-decline", "form-book"]
    response = client.post(portal["clinic"] + "book/", {"date": "2030-06-10", "time": "14:00", "duration": "30", "confirmed": "on"})
    assert response.status_code == 302
    page = page_text(client.get(portal["clinic"]))
    assert 'id="folder">Booked' in page and "2030-06-10 14:00 to 14:30, Booking Confirmed" in page and "Rebook" in page
    assert forms_on(page) == ["form-decline", "form-book", "form-cancel-appointment"]
    client.post(portal["clinic"] + "cancel-appointment/")
    page = page_text(client.get(portal["clinic"]))
    assert 'id="folder">Pending Booking' in page and "cancelled" in page
    assert [e.via for e in world["referral"].events.filter(kind__in=["status", "appointment"])] == ["portal"] * 4
    assert queued(world["referral"]) == EVERYONE * 4
    assert forms_on(page_text(client.get(portal["referrer"]))) == []


def test_the_portal_shows_validation_errors_on_the_referral_page(world, portal):
    client = portal["client"]
    response = client.post(portal["clinic"] + "decline/", {"reason": "  "})
    assert response.status_code == 200
    page = page_text(response)
    assert 'id="form-decline"' in page and "Enter the reason for declining." in page
    response = client.post(portal["clinic"] + "book/", {"date": "next Monday", "time": "", "duration": "600"})
    page = page_text(response)
    assert response.status_code == 200
    for error in ("Enter the appointment's date as YYYY-MM-DD.", "Enter the appointment's time."):
        assert error in page
    response = client.post(portal["clinic"] + "book/", {"date": "2030-06-10", "time": "14:00", "duration": "600"})
    assert response.status_code == 200 and "The duration is a number of minutes from 5 to 480." in page_text(response)
    # The values typed stay in the form.
    assert 'value="2030-06-10"' in page_text(response)
    response = client.post(portal["clinic"] + "cancel-appointment/")
    assert response.status_code == 302
    assert "There is no booked appointment to cancel." in page_text(client.get(portal["clinic"]))
    world["referral"].refresh_from_db()
    assert world["referral"].folder == "new" and not queued(world["referral"])


@pytest.mark.parametrize("action, data", [
    ("accept", {}), ("decline", {"reason": "No"}), ("decline", {}),
    ("book", {"date": "2030-06-10", "time": "14:00", "duration": "30"}), ("cancel-appointment", {}),
])
def test_the_senders_posts_are_refused_with_403(world, portal, action, data):
    response = portal["client"].post(portal["referrer"] + f"{action}/", data)
    assert response.status_code == 403
    page = page_text(response)
    assert staff.NOT_RECEIVER in page and forms_on(page) == []
    world["referral"].refresh_from_db()
    assert world["referral"].folder == "new" and not Delivery.objects.exclude(event="add-service-request").exists()


def test_a_site_that_is_no_party_gets_a_404(world, portal):
    other = sites.create_site(None, "Elsewhere", "5555")
    SiteUser.objects.create(site=other, user=get_user_model().objects.get(username="dr.soleil"))
    assert portal["client"].post(f"/site/5555/referrals/{world['referral'].ref}/accept/").status_code == 404
