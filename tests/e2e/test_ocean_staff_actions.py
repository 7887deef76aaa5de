"""The receiving clinic's staff change a referral in Ocean's own portal, not through Harbour.

Contract §2.1: Ocean reports every change, the receiving EMR's own included; §5.1/§5.4: the
current receiver changes the status in Ocean, its staff included. The sandbox's staff actions
(admin API: referrals/{ref}/decline, /book) stand for them. Harbour reads the sandbox's Tasks,
which carry no `authoredOn` (docs/decisions.md, "Ocean's Task statuses without authoredOn"):

received -> declined in Ocean (reason shown in Harbour) -> accepted in Harbour (its worker
delivers it; Ocean's echo adds no second "accepted") -> declined again in Ocean (new reason) ->
booked in Ocean (Harbour re-opens it as booked).

Same servers and clinic set-up as test_referral_workflow.py (its module fixtures, imported).
"""
import json
import re

import pytest

from tests.e2e.test_referral_workflow import (  # noqa: F401  (servers, world: fixtures)
    CLINIC_SITE,
    REFERRER_SITE,
    future,
    ocean,
    referral_page_path,
    send_referral,
    servers,
    synced,
    world,
)
from tests.servers import wait_for

pytestmark = [pytest.mark.servers, pytest.mark.timeout(180)]


def harbour_status(world, path: str) -> str:
    page = world["emr"].get(path)
    return re.search(r'id="referral-status">\s*<strong>([^<]+)</strong>', page).group(1).strip()


def harbour_row(world, ref: str) -> dict:
    [(pk, status, task_status)] = world["harbour"].sql(
        "SELECT id, status, ocean_task_status FROM referrals_referral WHERE ocean_ref = %s", (ref,))
    changes = world["harbour"].sql(
        "SELECT from_status, to_status, task_status, reason, outbound_id IS NOT NULL FROM referrals_statuschange"
        " WHERE referral_id = %s ORDER BY id", (pk,))
    events = world["harbour"].sql(
        "SELECT code, params, outbound_id IS NOT NULL, inbound_message_id IS NOT NULL FROM referrals_event"
        " WHERE referral_id = %s ORDER BY created_at, id", (pk,))
    return {"status": status, "task_status": task_status, "changes": changes,
            "events": [(code, json.loads(params) if isinstance(params, str) else params, ours, theirs)
                       for code, params, ours, theirs in events]}


def task_events(row: dict) -> list[tuple]:
    """The timeline's Task facts: (task status, reason, written by Harbour's action, read from Ocean)."""
    return [(p.get("task_status"), p.get("reason", ""), ours, theirs)
            for code, p, ours, theirs in row["events"] if code == "task_status"]


def processed_updates(world, ref: str) -> int:
    """Ocean's notify-update-service-request bundles Harbour has processed for this referral."""
    [(count,)] = world["harbour"].sql(
        "SELECT COUNT(*) FROM intake_inboundmessage WHERE referral_ref = %s AND event_code = %s AND state = %s",
        (ref, "notify-update-service-request", "processed"))
    return count


def all_delivered(world, ref: str, count: int):
    """The sandbox's `count` deliveries to Harbour for the referral, all delivered."""
    deliveries = ocean(world, ref)["deliveries"]
    return len(deliveries) == count and all(d["state"] == "delivered" for d in deliveries)


def staff(world, ref: str, action: str, **body) -> dict:
    response = world["api"].post(f"referrals/{ref}/{action}", json={"site": CLINIC_SITE, **body})
    assert response.status_code == 200, response.text
    return response.json()


def test_decline_in_ocean_accept_in_harbour_decline_again_then_book_in_ocean(world):
    emr, api = world["emr"], world["api"]
    ref = send_referral(world, "Shoulder pain after a fall")
    path = referral_page_path(world, ref)
    assert harbour_status(world, path) == "New"

    # The referrer's side may not decide for the clinic (§5.4).
    refused = api.post(f"referrals/{ref}/decline", json={"site": REFERRER_SITE, "reason": "No"})
    assert refused.status_code == 403 and "current receiver" in refused.json()["error"]

    # 1. Declined by the clinic's staff in Ocean: Harbour shows it declined, with the reason.
    assert staff(world, ref, "decline", reason="Not our catchment area")["folder"] == "declined"
    wait_for(lambda: harbour_status(world, path) == "Declined", what="Harbour to show the decline made in Ocean")
    row = harbour_row(world, ref)
    assert (row["status"], row["task_status"]) == ("declined", "rejected")
    assert row["changes"][-1] == ("new", "declined", "rejected", "Not our catchment area", False)
    assert task_events(row) == [("rejected", "Not our catchment area", False, True)]

    # 2. Accepted in Harbour: its worker delivers the Task; the sandbox files it, then echoes it.
    emr.submit(emr.get(path), "form-accept")
    wait_for(lambda: ocean(world, ref)["folder"] == "pending_booking", what="the sandbox to file Harbour's acceptance")
    state = ocean(world, ref)
    assert state["task_status"] == "accepted" and state["status_reason"] == ""
    wait_for(lambda: synced(world, path), what="Harbour's acceptance marked delivered")
    # add-service-request, the decline's update, the acceptance's echo: all delivered and processed.
    wait_for(lambda: all_delivered(world, ref, 3), what="the sandbox to deliver the echo of the acceptance")
    wait_for(lambda: processed_updates(world, ref) == 2, what="Harbour to process the echo of its acceptance")
    row = harbour_row(world, ref)
    assert (row["status"], row["task_status"]) == ("accepted", "accepted")
    assert harbour_status(world, path) == "Accepted"
    # The echo added no second "accepted": one Task fact from Harbour's own action, none from Ocean.
    assert task_events(row) == [("rejected", "Not our catchment area", False, True), ("accepted", "", True, False)]
    assert [c[:3] for c in row["changes"]] == [("new", "declined", "rejected"), ("declined", "accepted", "accepted")]

    # 3. Declined again in Ocean, with another reason: applied although "rejected" was seen before.
    staff(world, ref, "decline", reason="Referred to the hospital's clinic instead")
    wait_for(lambda: harbour_status(world, path) == "Declined", what="Harbour to show the second decline")
    row = harbour_row(world, ref)
    assert (row["status"], row["task_status"]) == ("declined", "rejected")
    assert row["changes"][-1] == ("accepted", "declined", "rejected", "Referred to the hospital's clinic instead", False)
    assert task_events(row)[-1] == ("rejected", "Referred to the hospital's clinic instead", False, True)
    assert len(task_events(row)) == 3

    # 4. Booked in Ocean: the booking re-opens it in Harbour as booked (§5.1).
    day, at = future(8, 11)
    booked = staff(world, ref, "book", date=day, time=at, duration=45, confirmed=True)
    assert booked["folder"] == "booked"
    wait_for(lambda: harbour_status(world, path) == "Booked", what="Harbour to show the booking made in Ocean")
    row = harbour_row(world, ref)
    assert row["status"] == "booked" and row["changes"][-1][:2] == ("declined", "booked")
    [booking] = [p for code, p, _, theirs in row["events"] if code == "appointment_booked" and theirs]
    assert booking["start"].startswith(day) and booking["confirmed"] is True
    # Ocean's event log: Harbour's acceptance reached it once, between the staff's two declines.
    log = [e["text"] for e in ocean(world, ref)["events"] if e["kind"] != "sent"]
    assert log[:3] == [
        "Status set to rejected (Declined). Reason: Not our catchment area",
        "Status set to accepted (Pending Booking).",
        "Status set to rejected (Declined). Reason: Referred to the hospital's clinic instead",
    ]
    assert len(log) == 4 and log[3].startswith(f"Appointment booked for {day}T") and log[3].endswith("(confirmed).")
    wait_for(lambda: all_delivered(world, ref, 5), what="every update delivered to Harbour")
