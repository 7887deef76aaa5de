"""Referral processing: direction, updates, order, resends, cancellations, messages, appointments."""
import pytest

from harbour.clinics.models import ocean_settings_for
from harbour.intake.models import InboundMessage
from harbour.referrals.models import CommunicationMessage, Event, Referral
from tests.referrals import bundles as B
from tests.referrals.bundles import deliver

T1 = "2025-05-27T11:45:06.783-04:00"
T2 = "2025-06-03T09:15:00-04:00"
T3 = "2025-06-04T09:15:00-04:00"
T4 = "2025-06-05T09:15:00-04:00"
UPDATE = "notify-update-service-request"


def codes(referral):
    return list(referral.events.values_list("code", flat=True))


# --- direction (contract §5.5) ---------------------------------------------------------

@pytest.mark.parametrize("site_number, expected", [("1234", "received"), ("9999", "sent"), ("", "unknown")])
def test_direction_by_site_number(clinic, site_number, expected):
    settings_row = ocean_settings_for(clinic)
    settings_row.site_number = site_number
    settings_row.save()
    deliver(clinic, B.load())
    referral = Referral.objects.get()
    assert referral.direction == expected
    assert referral.ocean_folder == ("sent" if expected == "sent" else "new")


def test_listing_seen_on_a_received_referral_counts_as_received(clinic, site):
    deliver(clinic, B.load())
    # Another referral to the same listing, whose target carries no site number.
    other = B.load()
    B.header(other)["extension"][0]["valueIdentifier"]["value"] = "other-ref"
    sr = B.resources(other, "ServiceRequest")[0]
    for ident in sr["identifier"]:
        ident["value"] = "other-ref"
    for role in B.resources(other, "PractitionerRole"):
        role["identifier"] = [i for i in role.get("identifier", []) if not i.get("system", "").endswith("id-site-number")]
    deliver(clinic, other)
    assert Referral.objects.get(ocean_ref="other-ref").direction == "received"


def test_unknown_direction_is_resolved_once_the_site_is_configured(clinic):
    deliver(clinic, B.load())
    assert Referral.objects.get().direction == "unknown"
    settings_row = ocean_settings_for(clinic)
    settings_row.site_number = "1234"
    settings_row.save()
    deliver(clinic, B.variant(event=UPDATE, timestamp=T2))
    assert Referral.objects.get().direction == "received"


# --- upserts and updates ---------------------------------------------------------------

def test_resend_as_new_and_duplicate_delivery_give_one_referral(clinic, site):
    first, again, resend = deliver(clinic, B.load(), B.load(), B.variant(timestamp=T2))
    assert Referral.objects.count() == 1
    assert {m.state for m in (first, again, resend)} == {"processed"}
    referral = Referral.objects.get()
    assert codes(referral).count("referral_received") == 1
    assert "referral_resent" in codes(referral)


def test_update_records_what_changed(clinic, site):
    deliver(clinic, B.load())
    referral = Referral.objects.get()
    deliver(clinic, B.variant(B.FULL, timestamp=T2))
    referral.refresh_from_db()
    assert referral.patient_hcn == "1234567890" and referral.priority == "urgent"
    events = {(e.code, e.params.get("group")): e for e in referral.events.all()}
    patient = events[("fields_changed", "patient")]
    assert "patient_birth_date" in patient.params["fields"] and "patient_hcn" in patient.params["fields"]
    assert set(patient.params["protected"]) >= {"patient_hcn", "patient_birth_date", "patient_given", "patient_sex"}
    assert "priority" in events[("fields_changed", "request")].params["fields"]
    assert ("fields_changed", "referrer") in events
    assert ("fields_changed", "target") not in events  # same listing
    added = [e for e in referral.events.all() if e.code == "attachment_added"]
    assert [e.params["title"] for e in added] == ["DKTest--2025-05-27.pdf", "xray.png"]
    assert referral.attachments.count() == 2
    assert referral.status == "accepted" and referral.first_seen_in_update is False


def test_older_snapshot_is_not_applied_but_recorded(clinic, site):
    deliver(clinic, B.variant(B.FULL, timestamp=T3))
    referral = Referral.objects.get()
    late, = deliver(clinic, B.variant(B.REAL, event=UPDATE, timestamp=T2))
    referral.refresh_from_db()
    assert late.state == "processed"
    assert any("older" in w for w in late.warnings)
    assert referral.patient_hcn == "1234567890" and referral.patient_sex == "female"  # kept the newer
    assert referral.snapshot_at.isoformat().startswith("2025-06-04")
    older = referral.events.get(inbound_message=late)
    assert older.code == "older_not_applied"


def test_update_for_an_unknown_referral_builds_it(clinic, site):
    message, = deliver(clinic, B.variant(event=UPDATE))
    referral = Referral.objects.get()
    assert message.state == "processed" and referral.first_seen_in_update
    assert codes(referral) == ["first_seen_in_update", "attachment_added"]


def test_data_correction_is_applied(clinic, site):
    deliver(clinic, B.load())
    deliver(clinic, B.variant(B.FULL, event="notify-data-correction", timestamp=T2))
    referral = Referral.objects.get()
    assert referral.patient_birth_date is not None
    assert "data_corrected" in codes(referral)


# --- cancellation ------------------------------------------------------------------------

def test_revoke_cancels(clinic, site):
    deliver(clinic, B.load())
    deliver(clinic, B.variant(event="revoke-service-request", timestamp=T2))
    referral = Referral.objects.get()
    assert referral.status == "cancelled" and referral.ocean_folder == "cancelled"
    assert referral.is_read_only
    assert codes(referral).count("cancelled_by_sender") == 1
    assert referral.status_changes.get().to_status == "cancelled"


def test_revoked_service_request_in_any_message_cancels(clinic, site):
    deliver(clinic, B.load())
    update = B.variant(event=UPDATE, timestamp=T2)
    B.resources(update, "ServiceRequest")[0]["status"] = "revoked"
    deliver(clinic, update)
    assert Referral.objects.get().status == "cancelled"


def test_old_spelling_of_revoke(clinic, site):
    deliver(clinic, B.load(), B.variant(event="terminate-servicerequest", timestamp=T2))
    assert Referral.objects.get().status == "cancelled"


# --- messages ----------------------------------------------------------------------------

def test_communication_from_requester_joins_the_thread_once(clinic, site):
    deliver(clinic, B.load())
    comm, = deliver(clinic, B.variant("send-communication-from-requester.json", timestamp=T2))
    assert comm.state == "processed"
    referral = Referral.objects.get()
    message = CommunicationMessage.objects.get(referral=referral)
    assert message.text == "Any update on this referral?" and message.direction == "from_referrer"
    assert message.sender_name == "Doug Kavanagh" and message.read_at is None
    # The cumulative update that follows repeats it: still one message, one entry.
    deliver(clinic, B.variant(B.FULL, timestamp=T3))
    assert CommunicationMessage.objects.filter(referral=referral).count() == 1
    assert codes(referral).count("message_received") == 1


def test_message_in_an_older_bundle_is_still_added(clinic, site):
    deliver(clinic, B.variant(timestamp=T3))
    deliver(clinic, B.add(B.variant(event="send-communication-from-requester", timestamp=T2),
                          B.communication("Late but real", "2025-06-01T10:00:00-04:00")))
    assert CommunicationMessage.objects.get().text == "Late but real"


# --- tasks and echoes ----------------------------------------------------------------------

def test_task_statuses_on_a_sent_copy(clinic):
    settings_row = ocean_settings_for(clinic)
    settings_row.site_number = "9999"
    settings_row.save()
    deliver(clinic, B.load())
    deliver(clinic, B.add(B.variant(event=UPDATE, timestamp=T2), B.task("accepted", "2025-06-02T08:00:00-04:00")))
    referral = Referral.objects.get()
    assert referral.direction == "sent" and referral.status == "accepted"
    assert referral.ocean_folder == "pending_booking"
    declined = B.add(B.variant(event=UPDATE, timestamp=T3), B.task("accepted", "2025-06-02T08:00:00-04:00"))
    B.add(declined, B.task("rejected", "2025-06-03T08:00:00-04:00", reason="Not our specialty"))
    deliver(clinic, declined)
    referral.refresh_from_db()
    assert referral.status == "declined" and referral.ocean_folder == "declined"
    assert referral.status_changes.last().reason == "Not our specialty"
    assert codes(referral).count("task_status") == 2


def test_same_task_status_twice_gives_one_event(clinic, site):
    """Echo dedupe: the same Task (e.g. Harbour's own, echoed by Ocean) through two messages."""
    deliver(clinic, B.load())
    first, echo = deliver(
        clinic,
        B.add(B.variant(event=UPDATE, timestamp=T2), B.task("accepted", "2025-06-02T08:00:00-04:00")),
        # The echo may carry the same time in another offset.
        B.add(B.variant(event=UPDATE, timestamp=T3), B.task("accepted", "2025-06-02T12:00:00Z")),
    )
    referral = Referral.objects.get()
    assert codes(referral).count("task_status") == 1
    assert referral.status_changes.count() == 1
    assert referral.events.filter(inbound_message=echo).values_list("code", flat=True).get() == "no_change"


def test_echo_of_an_outbound_task_adds_nothing(clinic, site):
    """The outbox records the Event with the builder's echo key; Ocean's echo then adds nothing."""
    from datetime import datetime, timezone

    from harbour.fhir.build import task_echo_key

    deliver(clinic, B.load())
    referral = Referral.objects.get()
    sent = datetime(2025, 6, 2, 12, 0, tzinfo=timezone.utc)
    Event.objects.create(clinic=clinic, referral=referral, kind="harbour:accept", code="task_status",
                         params={"task_status": "accepted"}, dedupe_key=task_echo_key("accepted", sent))
    referral.status = "accepted"
    referral.save()
    deliver(clinic, B.add(B.variant(event=UPDATE, timestamp=T2), B.task("accepted", "2025-06-02T08:00:00-04:00")))
    assert codes(referral).count("task_status") == 1
    assert referral.status_changes.count() == 0


# --- appointments ------------------------------------------------------------------------

def test_booking_then_cancellation_signal(clinic, site):
    deliver(clinic, B.load())
    booked = B.add(B.variant(event=UPDATE, timestamp=T2),
                   B.appointment("2025-06-10T14:00:00-04:00", "2025-06-10T14:30:00-04:00", participant="accepted"))
    deliver(clinic, booked)
    referral = Referral.objects.get()
    assert referral.status == "booked" and referral.ocean_folder == "booking_confirmed"
    appointment = referral.appointments.get()
    assert appointment.confirmed and appointment.minutes == 30
    # Ocean repeats the appointment in the next bundle: nothing new.
    deliver(clinic, B.add(B.variant(event=UPDATE, timestamp=T3),
                          B.appointment("2025-06-10T14:00:00-04:00", "2025-06-10T14:30:00-04:00", participant="accepted")))
    assert referral.appointments.count() == 1 and codes(referral).count("appointment_booked") == 1
    # Cancelled by the patient in Ocean: an undated proposed appointment after the dated one.
    cancel = B.variant(event=UPDATE, timestamp=T4)
    B.add(cancel, B.appointment("2025-06-10T14:00:00-04:00", "2025-06-10T14:30:00-04:00", participant="accepted"))
    B.add(cancel, B.appointment(status="proposed", participant="needs-action"))
    deliver(clinic, cancel)
    referral.refresh_from_db()
    assert referral.status == "accepted" and referral.ocean_folder == "pending_booking"
    assert referral.attention == "appointment_cancelled"
    assert referral.appointments.get(start__isnull=False).cancelled
    assert codes(referral).count("appointment_cancelled") == 1


def test_undated_instructions_alone_are_not_a_cancellation(clinic, site):
    deliver(clinic, B.load())
    deliver(clinic, B.add(B.variant(event=UPDATE, timestamp=T2),
                          B.appointment(status="proposed", instruction="We will call you.")))
    referral = Referral.objects.get()
    assert referral.status == "new" and referral.attention == ""
    assert "appointment_instructions" in codes(referral)


# --- unknown and broken ------------------------------------------------------------------

def test_unknown_event_is_kept_and_shown(clinic, site):
    deliver(clinic, B.load())
    odd, = deliver(clinic, B.variant(event="frobnicate-service-request", timestamp=T2))
    assert odd.state == "unknown_event"
    referral = Referral.objects.get()
    event = referral.events.get(inbound_message=odd)
    assert event.code == "not_understood" and event.params["event_code"] == "frobnicate-service-request"
    # Unknown event for an unknown referral: kept, no referral invented.
    other = B.variant(event="frobnicate")
    B.header(other)["extension"][0]["valueIdentifier"]["value"] = "never-seen"
    lone, = deliver(clinic, other)
    assert lone.state == "unknown_event" and Referral.objects.count() == 1


def test_references_pointing_nowhere_process_with_warnings(clinic, site):
    broken = B.load()
    sr = B.resources(broken, "ServiceRequest")[0]
    for name in ("subject", "requester", "performer"):
        sr[name] = {"reference": "urn:uuid:00000000-0000-0000-0000-000000000000"} if name != "performer" else [
            {"reference": "urn:uuid:00000000-0000-0000-0000-000000000001"}]
    B.header(broken)["destination"][0]["receiver"] = {"reference": "urn:uuid:00000000-0000-0000-0000-000000000002"}
    B.header(broken)["sender"] = B.header(broken)["author"] = {"reference": "nowhere"}
    message, = deliver(clinic, broken)
    assert message.state == "processed", message.error
    assert "ServiceRequest.performer does not match any entry in the bundle" in message.warnings
    referral = Referral.objects.get()
    assert referral.ocean_ref == B.REF and referral.referrer_name == ""
    assert referral.listing_ref == "" and referral.listing_name == "Autorouter Test"
    assert referral.direction == "unknown"  # no readable target: staff decide


def test_service_request_without_identifier_uses_the_header_reference(clinic, site):
    bundle = B.load()
    B.resources(bundle, "ServiceRequest")[0].pop("identifier")
    message, = deliver(clinic, bundle)
    assert message.state == "processed"
    assert Referral.objects.get().ocean_ref == B.REF


def test_the_header_reference_wins_over_a_service_request_local_id(clinic, site):
    # The reader's one choice: what the intake stored with the message and `inspect` prints.
    bundle = B.load()
    request = B.resources(bundle, "ServiceRequest")[0]
    request.pop("identifier")
    request["id"] = "sr-local-id-1"
    first, update = deliver(clinic, bundle, B.variant(event=UPDATE, timestamp=T2))
    assert first.state == update.state == "processed"
    assert first.referral_ref == update.referral_ref == B.REF
    referral = Referral.objects.get()  # the update lands on the same referral
    assert referral.ocean_ref == B.REF and not referral.first_seen_in_update


def test_a_bundle_without_any_reference_fails_safely(clinic, site):
    bundle = B.load()
    B.resources(bundle, "ServiceRequest")[0].pop("identifier")
    B.header(bundle).pop("extension")
    message, = deliver(clinic, bundle)
    assert message.state == "failed"
    assert message.error == "ProcessingError: the message names no referral reference"
    assert Referral.objects.count() == 0


def test_stored_garbage_fails_without_loss(clinic, site):
    message, = deliver(clinic, b"\x00not json")
    assert message.state == "failed" and "not valid JSON" in message.error
    assert InboundMessage.objects.filter(pk=message.pk).exists()


# --- one entry per message ------------------------------------------------------------------

def test_every_message_has_a_timeline_entry(clinic, site):
    messages = deliver(
        clinic, B.load(), B.load(), B.variant(B.FULL, timestamp=T2), B.variant(B.FULL, timestamp=T3),
        B.variant(event=UPDATE, timestamp=T1), B.variant(event="revoke-service-request", timestamp=T4),
        B.variant(event="mystery", timestamp=T4),
    )
    for message in messages:
        assert Event.objects.filter(inbound_message=message).exists(), message.event_code


# --- Tasks without authoredOn (§4.1 does not list it), echoes and re-opening (§2.1, §5.1) ---------

def _soon(minutes: int) -> str:
    """A bundle timestamp after Harbour's own updates in the test (which happen now)."""
    from datetime import timedelta

    from django.utils import timezone

    return (timezone.now() + timedelta(minutes=minutes)).isoformat()


def test_ocean_echo_of_our_accept_without_authored_on_adds_nothing_and_notifies_nobody(clinic, site, staff_user):
    from harbour.ocean import actions

    deliver(clinic, B.load())
    referral = Referral.objects.get()
    actions.accept(referral, staff_user)
    referral.refresh_from_db()
    activity = referral.last_activity_at
    echo, = deliver(clinic, B.add(B.variant(event=UPDATE, timestamp=_soon(1)),
                                  B.task("accepted", None, last_modified=_soon(1))))
    referral.refresh_from_db()
    assert codes(referral).count("task_status") == 1  # Harbour's own entry only
    assert referral.status_changes.count() == 1
    assert referral.events.filter(inbound_message=echo).values_list("code", flat=True).get() == "no_change"
    assert referral.last_activity_at == activity  # not unread again, not moved up the list


def test_a_repeated_undated_task_is_one_fact(clinic, site):
    deliver(clinic, B.load())
    deliver(clinic, B.add(B.variant(event=UPDATE, timestamp=T2), B.task("accepted", None)),
            B.add(B.variant(event=UPDATE, timestamp=T3), B.task("accepted", None)))
    referral = Referral.objects.get()
    assert referral.status == "accepted" and codes(referral).count("task_status") == 1


def test_ocean_declines_again_after_harbour_reopened_it(clinic, site, staff_user):
    from harbour.ocean import actions

    deliver(clinic, B.load())
    deliver(clinic, B.add(B.variant(event=UPDATE, timestamp=T2), B.task("rejected", None, reason="Full")))
    referral = Referral.objects.get()
    assert referral.status == "declined"
    actions.accept(referral, staff_user)
    # Before this fix every undated "rejected" Task had the same key: the second decline was dropped
    # and Harbour showed "accepted" while Ocean showed Declined.
    deliver(clinic, B.add(B.variant(event=UPDATE, timestamp=_soon(5)), B.task("rejected", None, reason="Still full")))
    referral.refresh_from_db()
    assert (referral.status, referral.ocean_folder, referral.ocean_task_status) == ("declined", "declined", "rejected")
    assert referral.status_changes.last().reason == "Still full"


def test_an_undated_task_older_than_our_own_update_is_not_applied(clinic, site, staff_user):
    """A bundle Ocean wrote before Harbour's re-accept reached it still shows the decline."""
    from harbour.ocean import actions

    deliver(clinic, B.load())
    deliver(clinic, B.add(B.variant(event=UPDATE, timestamp=T2), B.task("rejected", None, reason="Full")))
    referral = Referral.objects.get()
    actions.accept(referral, staff_user)
    late, = deliver(clinic, B.add(B.variant(event=UPDATE, timestamp=_soon(-1)), B.task("rejected", None, reason="Full")))
    referral.refresh_from_db()
    assert referral.status == "accepted"
    assert "a Task status older than Harbour's own latest update: not applied" in late.warnings


def test_an_update_ocean_refused_does_not_hide_ocean_changes_written_before_it(clinic, site, staff_user):
    """Harbour's accept never reached Ocean (refused for good): Ocean's status stands, even from a
    bundle written before the refused update."""
    from harbour.ocean import actions
    from harbour.ocean.models import OutboundMessage

    deliver(clinic, B.load())
    referral = Referral.objects.get()
    message = actions.accept(referral, staff_user)
    OutboundMessage.objects.filter(pk=message.pk).update(state=OutboundMessage.State.REJECTED)
    Referral.objects.filter(pk=referral.pk).update(ocean_task_status="")  # as if undone
    late, = deliver(clinic, B.add(B.variant(event=UPDATE, timestamp=_soon(-1)), B.task("rejected", None, reason="Full")))
    referral.refresh_from_db()
    assert (referral.status, referral.ocean_task_status) == ("declined", "rejected")
    assert not any("older than Harbour's own" in w for w in late.warnings)


def test_a_booking_reopens_a_declined_referral(clinic, site):
    deliver(clinic, B.load())
    deliver(clinic, B.add(B.variant(event=UPDATE, timestamp=T2), B.task("rejected", "2025-06-02T08:00:00-04:00", "Full")))
    booked = B.add(B.variant(event=UPDATE, timestamp=T3), B.task("rejected", "2025-06-02T08:00:00-04:00", "Full"))
    B.add(booked, B.appointment("2025-06-10T14:00:00-04:00", "2025-06-10T14:30:00-04:00", participant="accepted"))
    deliver(clinic, booked)
    referral = Referral.objects.get()
    assert (referral.status, referral.ocean_folder) == ("booked", "booking_confirmed")


def test_a_message_from_the_receiver_reopens_a_declined_sent_copy(clinic):
    settings_row = ocean_settings_for(clinic)
    settings_row.site_number = "9999"
    settings_row.save()
    deliver(clinic, B.load())
    deliver(clinic, B.add(B.variant(event=UPDATE, timestamp=T2), B.task("rejected", "2025-06-02T08:00:00-04:00", "Full")))
    asked = B.add(B.variant(event="send-communication-from-provider", timestamp=T3),
                  B.task("rejected", "2025-06-02T08:00:00-04:00", "Full"))
    B.add(asked, B.communication("Could you send the imaging?", "2025-06-04T09:00:00-04:00", sender=B.TARGET_URL))
    deliver(clinic, asked)
    referral = Referral.objects.get()
    assert referral.messages.get().direction == "from_receiver"
    assert (referral.status, referral.ocean_folder) == ("awaiting_reply", "awaiting_response")


def test_our_question_keeps_the_referral_awaiting_a_reply_until_the_referrer_writes(clinic, site, staff_user):
    from harbour.ocean import actions

    deliver(clinic, B.load())
    referral = Referral.objects.get()
    actions.send_message(referral, staff_user, "Please send the MRI report.")
    referral.refresh_from_db()
    assert referral.ocean_folder == "awaiting_response"
    # Ocean's echo of our message, then an unrelated update: still waiting for the referrer.
    deliver(clinic, B.variant(event=UPDATE, timestamp=_soon(1)))
    referral.refresh_from_db()
    assert referral.ocean_folder == "awaiting_response"
    deliver(clinic, B.add(B.variant(event="send-communication-from-requester", timestamp=_soon(2)),
                          B.communication("Report attached.", _soon(2))))
    referral.refresh_from_db()
    assert (referral.status, referral.ocean_folder) == ("new", "new")
