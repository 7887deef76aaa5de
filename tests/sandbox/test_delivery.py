"""Webhook delivery: authentication, copies, held deliveries, Ocean's retry schedule, bulk resend."""
import base64
from datetime import timedelta

import pytest
from django.utils import timezone

from harbour.sandbox import delivery, sites
from harbour.sandbox.delivery import RETRY_OFFSETS, deliver_due, next_attempt_after
from harbour.sandbox.models import Delivery, Referral
from harbour.sandbox.referrals import bulk_resend, cancel_referral, edit_referral, send_message
from tests.sandbox.conftest import ready_site, send_referral


def run_until_final(delivery_row, limit=500):
    """Drive one delivery through its schedule with a fake clock: each pass happens at its due time."""
    for _ in range(limit):
        delivery_row.refresh_from_db()
        if delivery_row.state != Delivery.State.PENDING:
            return delivery_row
        deliver_due(now=delivery_row.next_attempt_at)
    raise AssertionError("delivery never finished")


def test_a_new_referral_reaches_the_target_with_the_api_key(pair, receiver):
    referral = send_referral(pair)
    assert deliver_due() == 1
    [request] = receiver.requests
    assert request["path"] == "/fhir_bundles"
    assert request["headers"]["Referral-Integration-API-Key"] == "inbound-key-123"
    assert request["headers"]["Content-Type"] == "application/fhir+json"
    [bundle] = receiver.bundles()
    assert bundle["entry"][0]["resource"]["eventCoding"]["code"] == "add-service-request"
    assert bundle["entry"][0]["resource"]["extension"][0]["valueIdentifier"]["value"] == str(referral.ref)
    row = referral.deliveries.get()
    assert (row.state, row.attempts, row.last_status_code, row.reason) == ("delivered", 1, 200, "target")
    assert row.attempt_log.get().status_code == 200
    pair["integration"].refresh_from_db()
    assert pair["integration"].health == "ok"


def test_the_copy_checkbox_sends_the_senders_integration_a_copy(pair, receiver):
    copy = sites.register_integration(
        pair["referrer"], name="Referrer EMR", request_url=receiver.url + "/copies", send_copy=True,
    )
    silent = sites.register_integration(pair["referrer"], name="No copies", request_url=receiver.url + "/silent")
    referral = send_referral(pair)
    deliver_due()
    assert {d.integration_id: d.reason for d in referral.deliveries.all()} == {pair["integration"].pk: "target", copy.pk: "copy"}
    [copied] = receiver.bundles("/copies")
    assert copied["entry"][0]["resource"]["eventCoding"]["code"] == "add-service-request"
    assert receiver.bundles("/silent") == []
    # Sender actions reach the copy too.
    cancel_referral(referral, pair["referrer"], via="api")
    deliver_due()
    assert [b["entry"][0]["resource"]["eventCoding"]["code"] for b in receiver.bundles("/copies")] == ["add-service-request", "revoke-service-request"]
    assert silent.deliveries.count() == 0


def test_sender_actions_send_their_events(pair, receiver):
    referral = send_referral(pair)
    edit_referral(referral, pair["referrer"], reason="Worse since Monday", via="api")
    send_message(referral, pair["referrer"], "Any news?", via="api")
    cancel_referral(referral, pair["referrer"], via="api")
    deliver_due()
    events = [b["entry"][0]["resource"]["eventCoding"]["code"] for b in receiver.bundles()]
    assert events == ["add-service-request", "notify-update-service-request", "send-communication-from-requester", "revoke-service-request"]
    update, message, revoke = receiver.bundles()[1:]
    sr = [e["resource"] for e in update["entry"] if e["resource"]["resourceType"] == "ServiceRequest"][0]
    assert "Worse since Monday" in sr["note"][0]["text"]
    focus = message["entry"][0]["resource"]["focus"][0]["reference"]
    communication = [e for e in message["entry"] if e["fullUrl"] == focus][0]["resource"]
    assert communication["resourceType"] == "Communication" and communication["payload"] == [{"contentString": "Any news?"}]
    assert [e["resource"]["status"] for e in revoke["entry"] if e["resource"]["resourceType"] == "ServiceRequest"] == ["revoked"]
    referral.refresh_from_db()
    assert referral.folder == Referral.Folder.CANCELLED
    assert [e.kind for e in referral.events.all()] == ["sent", "edited", "message", "cancelled"]


def test_without_the_key_in_cloud_connect_delivery_is_held_with_a_clear_error(db, receiver):
    referrer = ready_site("Referrer", "2001")
    clinic = sites.create_site(None, "Clinic", "1234")
    key = sites.create_encryption_key(clinic)
    integration = sites.register_integration(clinic, name="EMR", request_url=receiver.url + "/fhir_bundles")
    listing = sites.create_listing(clinic, name="Clinic listing", integration=integration)
    referral = send_referral({"referrer": referrer, "listing": listing})
    row = referral.deliveries.get()
    assert row.state == "held" and "Cloud Connect does not hold this site's shared encryption key" in row.last_error
    assert deliver_due() == 0 and receiver.requests == []
    sites.set_cloud_connect(clinic, True)
    sites.store_key_in_cloud_connect(clinic, key)
    assert deliver_due() == 1
    row.refresh_from_db()
    assert row.state == "delivered" and len(receiver.bundles()) == 1


def test_ocean_retry_schedule_then_give_up_after_96_hours(pair, receiver, settings):
    settings.SANDBOX_TIME_SCALE = 3600  # an hour per second
    receiver.default = (503, b"busy", 0)
    referral = send_referral(pair)
    row = referral.deliveries.get()
    start = row.schedule_start
    row = run_until_final(row)
    assert row.state == "gave_up"
    attempts = list(row.attempt_log.all())
    assert len(attempts) == 1 + len(RETRY_OFFSETS) == len(receiver.requests)
    offsets = [round((a.at - start).total_seconds() * 3600) for a in attempts]
    # Immediately, then 1, 5, 10, 20, 30 minutes, then every hour up to 96 hours (scaled).
    assert offsets[:7] == [0, 60, 300, 600, 1200, 1800, 3600]
    assert offsets[7:] == [h * 3600 for h in range(2, 97)]
    assert (attempts[-1].at - start) == timedelta(seconds=96 * 3600 / 3600)
    assert all(a.status_code == 503 and a.excerpt == "busy" for a in attempts)
    pair["integration"].refresh_from_db()
    assert pair["integration"].health == "error" and pair["integration"].last_status_code == 503


def test_a_retry_that_succeeds_stops_the_schedule_and_clears_the_hexagon(pair, receiver, settings):
    settings.SANDBOX_TIME_SCALE = 60
    receiver.answer(500, "oops", times=3)
    referral = send_referral(pair)
    row = referral.deliveries.get()
    deliver_due(now=row.next_attempt_at)
    pair["integration"].refresh_from_db()
    assert pair["integration"].health == "warning" and pair["integration"].last_status_code == 500
    row = run_until_final(row)
    assert row.state == "delivered" and row.attempts == 4
    assert [a.status_code for a in row.attempt_log.all()] == [500, 500, 500, 200]
    pair["integration"].refresh_from_db()
    assert pair["integration"].health == "ok" and pair["integration"].failing_since is None


def test_any_non_2xx_is_retried_and_the_excerpt_is_bounded(pair, receiver):
    receiver.answer(401, "x" * 2000)
    receiver.answer(302, "")
    referral = send_referral(pair)
    row = referral.deliveries.get()
    deliver_due(now=row.next_attempt_at)
    row.refresh_from_db()
    assert row.state == "pending" and row.last_status_code == 401 and len(row.excerpt) == 500
    deliver_due(now=row.next_attempt_at)
    row.refresh_from_db()
    assert row.state == "pending" and row.last_status_code == 302


def test_the_schedule_is_counted_in_attempts_from_the_first_one(db, settings):
    settings.SANDBOX_TIME_SCALE = 1
    start = timezone.now()
    assert next_attempt_after(start, 1) == start + timedelta(minutes=1)
    assert next_attempt_after(start, 6) == start + timedelta(hours=1)
    assert next_attempt_after(start, 101) == start + timedelta(hours=96)
    assert next_attempt_after(start, 102) is None
    settings.SANDBOX_TIME_SCALE = 60
    assert next_attempt_after(start, 6) == start + timedelta(minutes=1)


def test_a_late_worker_still_makes_every_attempt(pair, receiver, settings):
    settings.SANDBOX_TIME_SCALE = 3600
    receiver.default = (502, b"", 0)
    row = send_referral(pair).deliveries.get()
    late = row.schedule_start + timedelta(days=1)  # long after the whole (scaled) schedule
    passes = 0
    while deliver_due(now=late):
        passes += 1
    row.refresh_from_db()
    assert row.state == "gave_up" and row.attempts == 1 + len(RETRY_OFFSETS) == passes


def test_refused_connection_and_timeout_are_logged_and_retried(pair, receiver, settings):
    settings.SANDBOX_DELIVERY_TIMEOUT_SECONDS = 0.3
    closed = sites.register_integration(pair["clinic"], name="Down", request_url="http://127.0.0.1:9/fhir_bundles")
    referral = send_referral(pair)
    down = delivery.enqueue(closed, referral, "notify-update-service-request", reason="resend")
    receiver.answer(200, "late", delay=1.5)
    deliver_due()
    down.refresh_from_db()
    assert down.state == "pending" and down.last_status_code is None
    assert down.last_error == "Connection refused or host unreachable."
    slow = referral.deliveries.get(integration=pair["integration"])
    assert slow.state == "pending" and slow.last_error == "Timed out after 0.3 seconds."
    closed.refresh_from_db()
    assert closed.health == "warning" and closed.last_error.startswith("Connection refused")


def test_http_basic_and_oauth2_authentication(pair, receiver):
    referral = send_referral(pair)
    basic = sites.register_integration(
        pair["clinic"], name="Basic", request_url=receiver.url + "/basic", auth_type="basic",
        basic_username="ocean", basic_password="pa:ss",
    )
    receiver.token_response = {"access_token": "tok-1", "token_type": "Bearer", "expires_in": 3600}
    oauth = sites.register_integration(
        pair["clinic"], name="OAuth", request_url=receiver.url + "/oauth", auth_type="oauth2",
        oauth_token_url=receiver.url + "/token", oauth_client_id="cid", oauth_secret="csecret",
    )
    delivery.enqueue(basic, referral, "notify-update-service-request", reason="resend")
    delivery.enqueue(oauth, referral, "notify-update-service-request", reason="resend")
    delivery.enqueue(oauth, referral, "notify-update-service-request", reason="resend")
    deliver_due()
    by_path = {}
    for request in receiver.requests:
        by_path.setdefault(request["path"], []).append(request)
    assert by_path["/basic"][0]["headers"]["Authorization"] == "Basic " + base64.b64encode(b"ocean:pa:ss").decode()
    assert [r["headers"]["Authorization"] for r in by_path["/oauth"]] == ["Bearer tok-1", "Bearer tok-1"]
    assert len(by_path["/token"]) == 1  # the token is reused until it expires
    assert b"grant_type=client_credentials" in by_path["/token"][0]["body"] and b"client_secret=csecret" in by_path["/token"][0]["body"]


def test_bulk_resend_as_new_and_as_updated(pair, receiver):
    first, second = send_referral(pair), send_referral(pair)
    deliver_due()
    receiver.requests.clear()
    result = bulk_resend(pair["integration"], [str(first.ref), str(second.ref), "not-a-ref", "00000000-0000-0000-0000-000000000000"], "new")
    assert result["queued"] == [str(first.ref), str(second.ref)]
    assert result["not_found"] == ["not-a-ref", "00000000-0000-0000-0000-000000000000"]
    bulk_resend(pair["integration"], [str(first.ref)], "update")
    deliver_due()
    sent = [(b["entry"][0]["resource"]["eventCoding"]["code"], b["entry"][0]["resource"]["extension"][0]["valueIdentifier"]["value"]) for b in receiver.bundles()]
    assert sent == [("add-service-request", str(first.ref)), ("add-service-request", str(second.ref)), ("notify-update-service-request", str(first.ref))]
    assert first.events.filter(kind="resent").count() == 2


def test_bulk_resend_refuses_bad_requests_and_other_sites_referrals(pair):
    from harbour.sandbox.errors import SandboxError

    referral = send_referral(pair)
    stranger = ready_site("Stranger", "3003")
    other = sites.register_integration(stranger, name="Other", request_url="http://127.0.0.1:9/x")
    assert bulk_resend(other, [str(referral.ref)], "new")["not_found"] == [str(referral.ref)]
    with pytest.raises(SandboxError, match="new referral"):
        bulk_resend(pair["integration"], [str(referral.ref)], "sideways")
    with pytest.raises(SandboxError, match="At most 1000"):
        bulk_resend(pair["integration"], [str(referral.ref)] * 1001, "new")
    assert delivery.parse_refs('a,b\n"c"\n\nb;d') == ["a", "b", "c", "d"]
