"""The JSON admin API under /sandbox-api/: the portal's steps for tests and demos.

Every call needs the header `X-Sandbox-Admin-Token: <SANDBOX_ADMIN_TOKEN>` (the setting, or
the token generated once in var/sandbox-admin-token; `harbour sandbox admin_token` prints it).
The token is an operator's key to every site: it is for development and demos, like the
sandbox itself. Bodies and answers are JSON; refusals are {"error": ..., "field": ...} with
400 (bad input), 403 (not allowed), 404 (unknown), 409 (state conflict).
"""
import functools
import hmac
import uuid

import orjson
from django.contrib.auth import get_user_model
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt

from harbour.sandbox import conf, delivery, referrals, sites, staff
from harbour.sandbox.errors import SandboxError
from harbour.sandbox.models import Delivery, Integration, Listing, Referral, Site


def json_response(body, status: int = 200) -> HttpResponse:
    return HttpResponse(orjson.dumps(body), status=status, content_type="application/json")


def admin_api(methods: tuple[str, ...]):
    def decorate(view):
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            expected = conf.admin_token()
            given = request.META.get("HTTP_X_SANDBOX_ADMIN_TOKEN", "")
            if not expected or not hmac.compare_digest(expected.encode(), given.encode()):
                return json_response({"error": "A valid X-Sandbox-Admin-Token header is required."}, 401)
            if request.method not in methods:
                return json_response({"error": f"Use {' or '.join(methods)}."}, 405)
            body = {}
            if request.method == "POST":
                try:
                    body = orjson.loads(request.body or b"{}")
                except orjson.JSONDecodeError:
                    return json_response({"error": "The body is not JSON."}, 400)
                if not isinstance(body, dict):
                    return json_response({"error": "The body must be a JSON object."}, 400)
            try:
                return view(request, body, *args, **kwargs)
            except SandboxError as exc:
                return json_response({"error": exc.message, "field": exc.field}, exc.status)
        return wrapper
    return decorate


def _site(number) -> Site:
    site = Site.objects.filter(number=str(number or "")).first()
    if site is None:
        raise SandboxError(f"No site {number}.", status=404, field="site")
    return site


def _referral(ref) -> Referral:
    try:
        ref = uuid.UUID(str(ref))
    except ValueError:
        raise SandboxError(f"No referral {ref}.", status=404) from None
    referral = Referral.objects.filter(ref=ref).select_related("sender_site", "receiver_site", "target_listing").first()
    if referral is None:
        raise SandboxError(f"No referral {ref}.", status=404)
    return referral


def _integration(pk, site: Site | None = None) -> Integration:
    integration = Integration.objects.filter(pk=pk).select_related("site").first()
    if integration is None or (site is not None and integration.site_id != site.pk):
        raise SandboxError(f"No integration {pk}.", status=404, field="integration")
    return integration


# --- Serialisation (also used by the portal's JSON-ish pages) -----------------------------------

def site_state(site: Site) -> dict:
    return {
        "number": site.number, "name": site.name, "has_encryption_key": site.has_sek,
        "cloud_connect_enabled": site.cloud_connect_enabled, "key_in_cloud_connect": site.key_in_cloud_connect,
        "integrations": [integration_state(i, log=False) for i in site.integrations.all()],
        "listings": [listing_state(listing) for listing in site.listings.all()],
        "oauth_credentials": [{"name": c.name, "client_id": c.client_id, "revoked": c.revoked} for c in site.oauth_credentials.all()],
    }


def listing_state(listing: Listing) -> dict:
    return {"ref": listing.ref, "name": listing.name, "site": listing.site.number, "integration": listing.integration_id,
            "external_service_id": listing.external_service_id, "accepts_ereferrals": listing.accepts_ereferrals}


def delivery_state(d: Delivery, log: bool = True) -> dict:
    state = {
        "id": d.pk, "integration": d.integration_id, "referral": str(d.referral.ref) if d.referral_id else None,
        "event": d.event, "reason": d.reason, "bundle_id": d.bundle_id, "state": d.state, "attempts": d.attempts,
        "last_status_code": d.last_status_code, "last_error": d.last_error, "excerpt": d.excerpt,
        "next_attempt_at": d.next_attempt_at.isoformat() if d.next_attempt_at else None,
        "schedule_start": d.schedule_start.isoformat() if d.schedule_start else None,
    }
    if log:
        state["attempt_log"] = [
            {"number": a.number, "at": a.at.isoformat(), "status_code": a.status_code, "error": a.error, "excerpt": a.excerpt}
            for a in d.attempt_log.all()
        ]
    return state


def integration_state(integration: Integration, log: bool = True) -> dict:
    state = {
        "id": integration.pk, "site": integration.site.number, "kind": integration.kind, "name": integration.name,
        "request_url": integration.request_url, "payload_version": integration.payload_version,
        "auth_type": integration.auth_type, "header_name": integration.header_name, "send_copy": integration.send_copy,
        "health": integration.health, "last_status_code": integration.last_status_code, "last_error": integration.last_error,
    }
    if log:
        state["deliveries"] = [delivery_state(d) for d in integration.deliveries.select_related("referral").prefetch_related("attempt_log")]
    return state


def referral_state(referral: Referral) -> dict:
    return {
        "ref": str(referral.ref), "folder": referral.folder, "folder_label": referral.get_folder_display(),
        "status": referral.status, "task_status": referral.task_status, "status_reason": referral.status_reason,
        "awaiting_reply": referral.awaiting_reply, "sender_site": referral.sender_site.number,
        "receiver_site": referral.receiver_site.number, "listing": referral.target_listing.ref,
        "patient": referral.patient, "reason": referral.reason, "priority": referral.priority,
        "answers": referral.form_answers,
        "attachments": [{"ref": str(a.ref), "title": a.title, "content_type": a.content_type, "size": len(a.data)} for a in referral.attachments.all()],
        "appointments": [
            {"start": a.start.isoformat() if a.start else None, "end": a.end.isoformat() if a.end else None, "status": a.status,
             "confirmed": a.confirmed, "cancelled": a.cancelled, "patient_instruction": a.patient_instruction}
            for a in referral.appointments.all()
        ],
        "messages": [
            {"side": m.side, "site": m.site.number, "text": m.text, "attachments": m.attachment_rows(), "via": m.via,
             "sent_at": m.sent_at.isoformat()}
            for m in referral.messages.select_related("site")
        ],
        "events": [{"kind": e.kind, "text": e.text, "via": e.via, "at": e.at.isoformat()} for e in referral.events.all()],
        "deliveries": [delivery_state(d, log=False) for d in referral.deliveries.select_related("referral")],
    }


# --- Endpoints ---------------------------------------------------------------------------------

@admin_api(("POST",))
def create_user(request, body):
    user = sites.create_user(body.get("username", ""), body.get("password", ""), body.get("email", ""))
    return json_response({"username": user.get_username()}, 201)


@admin_api(("POST",))
def create_site(request, body):
    user = None
    if body.get("username"):
        user = get_user_model().objects.filter(username=body["username"], clinic__isnull=True).first()
        if user is None:
            raise SandboxError(f"No user {body['username']}.", status=404, field="username")
    site = sites.create_site(user, body.get("name", ""), body.get("number"))
    return json_response(site_state(site), 201)


@admin_api(("GET",))
def site_detail(request, body, number):
    return json_response(site_state(_site(number)))


@admin_api(("POST",))
def encryption_key(request, body, number):
    key = sites.create_encryption_key(_site(number), body.get("key", ""))
    return json_response({"key": key}, 201)


@admin_api(("POST",))
def site_features(request, body, number):
    site = _site(number)
    sites.set_cloud_connect(site, bool(body.get("cloud_connect")))
    return json_response(site_state(site))


@admin_api(("POST",))
def cloud_connect_key(request, body, number):
    site = _site(number)
    sites.store_key_in_cloud_connect(site, body.get("key", ""))
    return json_response(site_state(site))


@admin_api(("POST",))
def register_integration(request, body, number):
    fields = [
        "name", "request_url", "payload_version", "auth_type", "header_name", "key", "basic_username",
        "basic_password", "oauth_token_url", "oauth_client_id", "oauth_secret", "send_copy", "kind",
    ]
    integration = sites.register_integration(_site(number), **{f: body[f] for f in fields if f in body})
    return json_response(integration_state(integration, log=False), 201)


@admin_api(("GET",))
def integration_detail(request, body, pk):
    return json_response(integration_state(_integration(pk)))


@admin_api(("POST",))
def bulk_resend(request, body, pk):
    refs = body.get("refs")
    if refs is None:
        refs = delivery.parse_refs(body.get("csv", ""))
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        raise SandboxError("refs must be a list of referral references.", field="refs")
    return json_response(referrals.bulk_resend(_integration(pk), refs, body.get("mode", "")))


@admin_api(("POST",))
def create_listing(request, body, number):
    site = _site(number)
    integration = _integration(body["integration"], site) if body.get("integration") else None
    listing = sites.create_listing(
        site, name=body.get("name", ""), integration=integration, external_service_id=body.get("external_service_id", ""),
        ref=body.get("ref", ""), accepts_ereferrals=body.get("accepts_ereferrals", True),
        address_line=body.get("address_line", ""), city=body.get("city", ""), postal_code=body.get("postal_code", ""),
    )
    return json_response(listing_state(listing), 201)


@admin_api(("POST",))
def oauth_credential(request, body, number):
    credential, secret = sites.create_oauth_credential(_site(number), body.get("name", ""))
    return json_response({"name": credential.name, "client_id": credential.client_id, "secret": secret}, 201)


@admin_api(("POST",))
def create_referral(request, body):
    sender = _site(body.get("from_site"))
    listing = Listing.objects.filter(ref=str(body.get("listing") or "")).select_related("site").first()
    if listing is None:
        raise SandboxError(f"No listing {body.get('listing')}.", status=404, field="listing")
    referral = referrals.create_referral(
        sender, listing, patient=body.get("patient") or {}, reason=body.get("reason", ""), answers=body.get("answers"),
        attachments=body.get("attachments"), referrer=body.get("referrer"), priority=body.get("priority", "routine"), via="api",
    )
    return json_response(referral_state(referral), 201)


@admin_api(("GET",))
def referral_detail(request, body, ref):
    return json_response(referral_state(_referral(ref)))


@admin_api(("POST",))
def cancel_referral(request, body, ref):
    referral = referrals.cancel_referral(_referral(ref), _site(body.get("site")), via="api", reason=body.get("reason", ""))
    return json_response(referral_state(referral))


@admin_api(("POST",))
def message_referral(request, body, ref):
    referral = _referral(ref)
    referrals.send_message(referral, _site(body.get("site")), body.get("text", ""), via="api")
    return json_response(referral_state(referral), 201)


@admin_api(("POST",))
def edit_referral(request, body, ref):
    referral = referrals.edit_referral(
        _referral(ref), _site(body.get("site")), patient=body.get("patient"), reason=body.get("reason"),
        answers=body.get("answers"), priority=body.get("priority"), via="api",
    )
    return json_response(referral_state(referral))


# The receiving site's staff in Ocean's portal (harbour.sandbox.staff): `site` is the acting site,
# refused with 403 unless it is the referral's current receiver.

@admin_api(("POST",))
def accept_referral(request, body, ref):
    return json_response(referral_state(staff.accept(_referral(ref), _site(body.get("site")), via="api")))


@admin_api(("POST",))
def decline_referral(request, body, ref):
    referral = staff.decline(_referral(ref), _site(body.get("site")), body.get("reason", ""), via="api")
    return json_response(referral_state(referral))


@admin_api(("POST",))
def book_appointment(request, body, ref):
    """{site, date: YYYY-MM-DD, time: HH:MM (the sandbox's time zone), duration: minutes (30),
    confirmed: bool (false = Booking Unconfirmed), instruction: optional text for the patient}."""
    referral, site = _referral(ref), _site(body.get("site"))
    staff.check_receiver(referral, site)
    start = staff.appointment_start(body.get("date"), body.get("time"))
    confirmed = body.get("confirmed", False)
    if not isinstance(confirmed, bool):
        raise SandboxError("confirmed is true or false.", field="confirmed")
    instruction = body.get("instruction", "")
    if not isinstance(instruction, str):
        raise SandboxError("instruction is text.", field="instruction")
    referral = staff.book(referral, site, start=start, minutes=body.get("duration", 30), confirmed=confirmed,
                          instruction=instruction, via="api")
    return json_response(referral_state(referral))


@admin_api(("POST",))
def cancel_appointment(request, body, ref):
    return json_response(referral_state(staff.cancel_appointment(_referral(ref), _site(body.get("site")), via="api")))


@admin_api(("POST",))
def run_deliveries(request, body):
    """Attempt what is due now (for demos without a worker)."""
    return json_response({"attempted": delivery.deliver_due()})
