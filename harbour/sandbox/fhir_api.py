"""Ocean's FHIR API (`/svc/fhir/v1/...`), behind a Bearer token from /svc/oauth2/token.

Errors are OperationOutcome JSON: 401 bad/expired token, 403 a site acting outside its role,
404 unknown referral or document, 400 malformed bundles or unsupported events, 422 content
the rules refuse (contract §5, §6).
"""
import logging
import uuid

import orjson
from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from harbour.sandbox import conf, emr_events, letters
from harbour.sandbox.models import Attachment, Referral
from harbour.sandbox.oauth import bearer_site

log = logging.getLogger("harbour.sandbox.api")
FHIR_JSON = "application/fhir+json"
MAX_BODY_BYTES = 25 * 1024 * 1024


def fhir_response(body: dict, status: int = 200) -> HttpResponse:
    return HttpResponse(orjson.dumps(body), status=status, content_type=FHIR_JSON)


def refusal(status: int, code: str, text: str) -> HttpResponse:
    response = fhir_response(emr_events.outcome("error", code, text), status)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    return response


def authenticated(view):
    """Runs `view(request, site, ...)` for the Bearer token's site, else answers 401."""
    def wrapper(request, *args, **kwargs):
        site, problem = bearer_site(request)
        if site is None:
            return refusal(401, "login", problem)
        return view(request, site, *args, **kwargs)

    wrapper.__name__ = view.__name__
    return wrapper


@csrf_exempt
@require_POST
@authenticated
def process_messages(request, site):
    if len(request.body) > MAX_BODY_BYTES:
        return refusal(413, "too-costly", "The message is larger than 25 MB.")
    try:
        bundle = orjson.loads(request.body)
    except orjson.JSONDecodeError:
        return refusal(400, "structure", "The body is not JSON.")
    try:
        result = emr_events.process(site, bundle)
    except emr_events.Refusal as exc:
        log.info("process-messages refused for site %s: %s %s", site.number, exc.status, exc.code)
        return refusal(exc.status, exc.code, exc.message)
    return fhir_response(result)


def _party_referral(site, ref: str) -> Referral | None:
    try:
        key = uuid.UUID(ref)
    except ValueError:
        return None
    referral = Referral.objects.filter(ref=key).select_related("sender_site", "receiver_site", "target_listing").first()
    if referral is None or site.pk not in (referral.sender_site_id, referral.receiver_site_id):
        return None  # another site's referral is as good as unknown to this token
    return referral


@require_GET
@authenticated
def letter(request, site, ref):
    referral = _party_referral(site, ref)
    if referral is None:
        return refusal(404, "not-found", f"No referral {ref} for site {site.number}.")
    with_attachments = request.GET.get("attachments", "").lower() in {"true", "1", "yes"}
    pdf = letters.letter_pdf(referral, with_attachments=with_attachments)
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="referral-{referral.ref}.pdf"'
    return response


@require_GET
@authenticated
def binary(request, site, doc_id):
    try:
        key = uuid.UUID(doc_id)
    except ValueError:
        key = None
    attachment = Attachment.objects.filter(ref=key).select_related("referral").first() if key else None
    if attachment is None or site.pk not in (attachment.referral.sender_site_id, attachment.referral.receiver_site_id):
        return refusal(404, "not-found", f"No document {doc_id} for site {site.number}.")
    response = HttpResponse(bytes(attachment.data), content_type=attachment.content_type)
    response["Content-Disposition"] = f'attachment; filename="{attachment.title.replace(chr(34), "")}"'
    return response


@require_GET
@authenticated
def naming_system_site_number(request, site):
    """OceanMD's own connectivity check (contract §2.2)."""
    return fhir_response({
        "resourceType": "NamingSystem",
        "id": "id-site-number",
        "name": "OceanSiteNumber",
        "status": "active",
        "kind": "identifier",
        "date": "2020-01-01",
        "description": "Ocean site number",
        "uniqueId": [{"type": "uri", "value": conf.naming_system("id-site-number"), "preferred": True}],
    })
