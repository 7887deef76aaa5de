"""Staff pages: the referrals, one referral as read from Ocean, and the inbound messages log."""
from datetime import timedelta
from urllib.parse import quote, urlencode, urlsplit

from django.contrib import messages as flash
from django.core.paginator import Paginator
from django.db.models import Prefetch, Q
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.timezone import localtime
from django.utils.translation import gettext as _, gettext_lazy, ngettext, pgettext
from django.views.decorators.http import require_POST

from harbour.audit.log import record
from harbour.clinics.access import current_clinic, staff_view
from harbour.clinics.models import ocean_settings_for
from harbour.intake.jobs import reprocess
from harbour.intake.models import InboundMessage
from harbour.ocean import actions
from harbour.ocean.actions import ActionNotAllowed, StaleReferral
from harbour.ocean.documents import request_fetch_again
from harbour.ocean.models import OutboundMessage
from harbour.ocean.outbox import annotate_unsynced, mark_refusal_handled, referral_sync_state, retry_now

from . import attention, forms as F
from .lifecycle import TERMINAL_FOR_OCEAN
from .models import Appointment, Attachment, Direction, OceanFolder, Referral, Status, name_key
from .reading import annotate_unread, mark_all_read, mark_read, watermark_for
from .staleness import state_token
from .timeline import describe

PAGE_SIZE = 50
LIST_COLUMNS = ("id", "clinic_id", "ocean_ref", "direction", "status", "ocean_folder", "attention", "last_activity_at",
                "authored_at", "patient_family", "patient_given", "referrer_name", "referrer_username",
                "category_display")


# --- The lists ----------------------------------------------------------------------------------


def filter_referrals(queryset, clinic, data: dict, direction: str = Direction.RECEIVED):
    """Apply the list's cleaned filters (ReferralFilterForm) to a Referral queryset of one clinic."""
    folder = data.get("folder")
    if folder == "not_synced":
        queryset = queryset.filter(pk__in=OutboundMessage.objects.filter(
            OutboundMessage.unsynced_q(), clinic=clinic).values("referral_id"))
    elif folder == "new":
        # A sent copy nobody acted on sits in Ocean's "Sent" folder; a received one in "New".
        queryset = queryset.filter(ocean_folder=OceanFolder.SENT if direction == Direction.SENT else OceanFolder.NEW)
    elif folder in F.FOLDER_FILTERS:
        values = F.FOLDER_FILTERS[folder][1]
        queryset = queryset.filter(ocean_folder=values[0]) if len(values) == 1 else queryset.filter(ocean_folder__in=values)
    field = "authored_at" if data.get("date_field") == "authored" else "last_activity_at"
    if data.get("date_from"):
        queryset = queryset.filter(**{f"{field}__gte": F.start_of_day(data["date_from"])})
    if data.get("date_to"):
        queryset = queryset.filter(**{f"{field}__lt": F.start_of_day(data["date_to"] + timedelta(days=1))})
    patient = data.get("patient") or ""
    if patient:
        digits = F.ReferralFilterForm.hcn_digits(patient)
        if digits:
            queryset = queryset.filter(patient_hcn=digits)
        else:
            # Each word starts the family or a given name, accents and case aside (indexed ranges).
            for word in name_key(patient).split():
                queryset = queryset.filter(
                    Q(patient_family_key__gte=word, patient_family_key__lt=word + "\U0010ffff")
                    | Q(patient_given_key__gte=word, patient_given_key__lt=word + "\U0010ffff"))
    ref = data.get("ref") or ""
    if ref:
        # Exact, or the start of a reference (a range, so the unique (clinic, ocean_ref) index serves it).
        queryset = queryset.filter(ocean_ref__gte=ref, ocean_ref__lt=ref + "\U0010ffff")
    return queryset


@staff_view
def referral_list(request):
    clinic = current_clinic(request)
    direction = request.GET.get("direction") or Direction.RECEIVED
    if direction not in Direction.values:
        direction = Direction.RECEIVED
    form = F.ReferralFilterForm(request.GET)
    data = form.cleaned_data if form.is_valid() else {
        name: value for name, value in getattr(form, "cleaned_data", {}).items() if name not in form.errors}
    referrals = filter_referrals(Referral.objects.filter(clinic=clinic, direction=direction), clinic, data, direction)
    try:
        number = min(10_000, max(1, int(request.GET.get("page") or 1)))
    except ValueError:
        number = 1
    # No COUNT(*) over the clinic's referrals: one row more than a page says whether another follows.
    # The page's ids come from the index alone; only those rows are then read with their flags.
    offset = (number - 1) * PAGE_SIZE
    ids = list(referrals.order_by("-last_activity_at", "-id").values_list("pk", flat=True)[offset: offset + PAGE_SIZE + 1])
    has_next = len(ids) > PAGE_SIZE
    rows = list(annotate_unsynced(annotate_unread(
        Referral.objects.filter(pk__in=ids[:PAGE_SIZE]).only(*LIST_COLUMNS), request.user, watermark_for(request.user)
    )).order_by("-last_activity_at", "-id")) if ids else []
    statuses, folders = dict(Status.choices), dict(OceanFolder.choices)
    for row in rows:  # labels translated once per page, not once per row
        row.status_label, row.folder_label = statuses.get(row.status, row.status), folders.get(row.ocean_folder, "")
    query = {k: v for k, v in request.GET.items() if k != "page" and v}
    query["direction"] = direction
    return render(request, "referrals/referral_list.html", {
        "rows": rows, "form": form, "direction": direction,
        "tabs": _tabs(clinic, direction),
        "page_number": number, "has_previous": number > 1, "has_next": has_next,
        "query": urlencode(query), "filtered": any(data.get(k) for k in ("folder", "date_from", "date_to", "patient", "ref")),
    })


def _tabs(clinic, current):
    tabs = [(Direction.RECEIVED, pgettext("referral list tab", "Received")),
            (Direction.SENT, pgettext("referral list tab", "Sent"))]
    if current == Direction.UNKNOWN or Referral.objects.filter(clinic=clinic, direction=Direction.UNKNOWN).exists():
        tabs.append((Direction.UNKNOWN, pgettext("referral list tab", "Direction unknown")))
    return tabs


@require_POST
@staff_view
def mark_everything_read(request):
    mark_all_read(request.user)
    flash.success(request, _("Every referral is marked as read."))
    return redirect("referrals:list")


# --- One referral ----------------------------------------------------------------------------


def view_in_ocean_url(referral, ocean) -> str:
    site = ocean.site_number or referral.site_number
    if not ocean.ocean_base_url or not site:
        return ""
    return (f"{ocean.ocean_base_url.rstrip('/')}/ocean/portal.html?siteNum={quote(site.strip(), safe='')}"
            f"#/referrals/{quote(referral.ocean_ref, safe='')}/edit")


def available_actions(referral, ocean) -> set[str]:
    """The actions offered on the page: those ocean.actions would take now (it checks again on submit)."""
    if referral.direction == Direction.SENT:
        # A copy of a referral the clinic sent: read-only (contract §5.4), unless the setting
        # HARBOUR_OCEAN_MESSAGES_ON_SENT_COPIES lets staff message the receiver (both sides
        # message [F 34]); its status is the receiver's to change, so a message is the only action.
        if referral.status in TERMINAL_FOR_OCEAN or not actions.messages_on_sent_copies():
            return set()
        return {"message"}
    if referral.is_read_only:
        return set()
    if ocean.site_number and referral.site_number and ocean.site_number.strip() != referral.site_number.strip():
        return set()
    S = Status
    status = referral.status
    offered = {"message"}
    current = next((a for a in referral.appointments.all() if not a.superseded), None)
    dated = current is not None and current.start is not None and not current.cancelled
    if status in (S.NEW, S.DECLINED, S.AWAITING_REPLY):
        offered.add("accept")
    if status in (S.NEW, S.ACCEPTED, S.AWAITING_REPLY):
        offered.add("decline")
        if not dated:
            offered.add("book")
    if status == S.BOOKED and dated:
        offered |= {"rebook", "cancel_appointment"}
    if status in (S.ACCEPTED, S.BOOKED, S.AWAITING_REPLY):
        offered.add("complete")
    return offered


def _run_accept(referral, user, data, key):
    return actions.accept(referral, user, idempotency_key=key, expected_state=data.get("seen_state") or "")


def _run_decline(referral, user, data, key):
    return actions.decline(referral, user, data["reason"], idempotency_key=key,
                           expected_state=data.get("seen_state") or "")


def _run_book(referral, user, data, key):
    return actions.book(referral, user, data["start"], **F.booking_args(data), idempotency_key=key,
                        expected_state=data.get("seen_state") or "")


def _run_rebook(referral, user, data, key):
    return actions.rebook(referral, user, data["start"], **F.booking_args(data), idempotency_key=key,
                          expected_state=data.get("seen_state") or "")


def _run_cancel_appointment(referral, user, data, key):
    return actions.cancel_appointment(referral, user, data["reason"], idempotency_key=key,
                                      expected_state=data.get("seen_state") or "")


def _run_complete(referral, user, data, key):
    return actions.complete(referral, user, idempotency_key=key, expected_state=data.get("seen_state") or "")


def _run_message(referral, user, data, key):
    return actions.send_message(referral, user, data.get("text") or "", data.get("attachment"), idempotency_key=key)


ACTIONS = {
    "accept": (F.AcceptForm, _run_accept, gettext_lazy("Referral accepted. Ocean will be told.")),
    "decline": (F.DeclineForm, _run_decline, gettext_lazy("Referral declined. Ocean will tell the referrer why.")),
    "book": (F.BookForm, _run_book, gettext_lazy("Appointment booked. Ocean will tell the referrer and the patient.")),
    "rebook": (F.RebookForm, _run_rebook, gettext_lazy("Appointment changed. Ocean will tell the referrer and the patient.")),
    "cancel_appointment": (F.CancelAppointmentForm, _run_cancel_appointment,
                           gettext_lazy("Appointment cancelled. Ocean will tell the referrer and the patient.")),
    "complete": (F.CompleteForm, _run_complete, gettext_lazy("Referral marked completed. Ocean will be told.")),
    "message": (F.MessageForm, _run_message, gettext_lazy("Message sent to Ocean for the referrer.")),
}


def _outbound_for(request, pk: int, message_id: int) -> OutboundMessage:
    """One of the referral's messages to Ocean, the referral of this clinic (404 otherwise)."""
    referral = _referral_for(request, pk)
    return get_object_or_404(OutboundMessage, pk=message_id, referral=referral, clinic_id=referral.clinic_id)


def _form_groups(answers: list) -> list[dict]:
    """The answers form by form, in order: [{"number": 1, "form": reference, "answers": [...]}, ...]."""
    groups: list[dict] = []
    for answer in answers:
        if not groups or groups[-1]["number"] != answer.form_ordinal:
            groups.append({"number": answer.form_ordinal, "form": answer.form, "answers": []})
        groups[-1]["answers"].append(answer)
    return groups


def _referral_for(request, pk: int):
    return get_object_or_404(Referral.objects.filter(clinic=current_clinic(request)), pk=pk)


def _detail_context(request, referral, bound: dict | None = None) -> dict:
    clinic = current_clinic(request)
    ocean = ocean_settings_for(clinic)
    answers = list(referral.form_answers.all())
    events = list(referral.events.select_related("inbound_message", "actor").order_by("created_at", "id"))
    outbound = {m.pk: m for m in OutboundMessage.objects.filter(referral=referral).order_by("id")}
    offered = available_actions(referral, ocean)
    token = state_token(referral)  # the state these forms act on (staleness.py)
    action_forms = {name: (bound or {}).get(name) or ACTIONS[name][0](auto_id=f"id_{name}_%s",
                                                                      initial={"seen_state": token})
                    for name in ACTIONS if name in offered}
    current = next((a for a in referral.appointments.all() if not a.superseded and a.start and not a.cancelled), None)
    if "rebook" in action_forms and not (bound or {}).get("rebook") and current:
        action_forms["rebook"] = F.RebookForm(auto_id="id_rebook_%s", initial=rebook_initial(current, token))
    timeline = []
    for event in events:
        message = outbound.get(event.outbound_id) if event.outbound_id else None
        timeline.append({"event": event, "text": describe(event), "outbound": message,
                         "inbound": event.inbound_message_id is not None})
    unsynced = [m for m in outbound.values() if m.is_unsynced]
    return {
        "referral": referral,
        "form_groups": _form_groups([a for a in answers if not a.hidden and a.answers]),  # the visible ones
        "several_forms": len({a.form_number for a in answers}) > 1,
        "hidden_answers": [a for a in answers if a.hidden or not a.answers],
        "timeline": timeline,
        "sync": referral_sync_state(referral),
        "unsynced": unsynced,
        # Appointments Harbour stated and Ocean refused: shown as such, not as "replaced".
        "refused_outbound": {m.pk for m in outbound.values() if m.state == OutboundMessage.State.REJECTED},
        "view_in_ocean": view_in_ocean_url(referral, ocean),
        "action_forms": action_forms,
        "current_appointment": current,
        "read_only_reason": _read_only_reason(referral),
        "processing_warnings": attention.processing_warnings(referral),
        "messages_in_ocean": _messages_in_ocean(referral),
    }


def rebook_initial(current, token: str) -> dict:
    """The change form opens on the current appointment: same date, time (to the minute), place, etc."""
    start = localtime(current.start)
    return {"date": start.date(), "time": start.time().replace(second=0, microsecond=0),
            "duration": current.minutes or 30, "location": current.location, "confirmed": current.confirmed,
            "instructions": current.patient_instruction, "seen_state": token}


def _read_only_reason(referral) -> str:
    if referral.direction == Direction.SENT:
        text = _("This is a copy of a referral your clinic sent: the receiver acts on it in Ocean, and its "
                 "changes appear here.")
        if referral.status not in TERMINAL_FOR_OCEAN and actions.messages_on_sent_copies():
            text += " " + _("You can send the receiver a message.")
        return text
    if referral.direction == Direction.UNKNOWN:
        return _("Harbour cannot tell whether your clinic received or sent this referral (check the site "
                 "number in the Ocean settings), so it offers no actions.")
    if referral.status == Status.CANCELLED:
        return _("The sender cancelled this referral; it can no longer be changed.")
    if referral.status == Status.FORWARDED:
        return _("This referral was forwarded; only its new recipient can act on it.")
    if referral.status == Status.EXTERNALLY_MANAGED:
        return _("This referral is managed outside Ocean; it can no longer be changed here.")
    return ""


def _messages_in_ocean(referral) -> str:
    """On a sent copy whose messages Harbour does not send (the setting is off): where to write them."""
    if (referral.direction == Direction.SENT and referral.status not in TERMINAL_FOR_OCEAN
            and not actions.messages_on_sent_copies()):
        return str(actions.SENT_COPY_MESSAGES_IN_OCEAN)
    return ""


def _detail_queryset(clinic):
    return Referral.objects.filter(clinic=clinic).prefetch_related(
        "form_answers", "messages",
        Prefetch("attachments", queryset=Attachment.objects.order_by("kind", "id")),
        Prefetch("appointments", queryset=Appointment.objects.order_by("-id")),
    )


@staff_view
def referral_detail(request, pk: int):
    referral = get_object_or_404(_detail_queryset(current_clinic(request)), pk=pk)
    context = _detail_context(request, referral)
    mark_read(request.user, referral)
    return render(request, "referrals/referral_detail.html", context)


@require_POST
@staff_view
def referral_action(request, pk: int, action: str):
    """One action form: validate, call ocean.actions (which enqueues for Ocean), then back to the page."""
    if action not in ACTIONS:
        raise Http404
    clinic = current_clinic(request)
    referral = _referral_for(request, pk)
    form_class, run, done = ACTIONS[action]
    form = form_class(request.POST, request.FILES, auto_id=f"id_{action}_%s")
    if not form.is_valid():
        referral = get_object_or_404(_detail_queryset(clinic), pk=pk)
        context = _detail_context(request, referral, bound={action: form})
        context["invalid_action"] = action
        return render(request, "referrals/referral_detail.html", context, status=400)
    try:
        run(referral, request.user, form.cleaned_data, form.cleaned_data.get("idempotency_key") or "")
    except StaleReferral as exc:
        # Nothing was sent. The page again, as the referral is now, with what the person typed
        # kept in the form (under the current state: acting again is a decision made on it).
        flash.error(request, exc.message)
        referral = get_object_or_404(_detail_queryset(clinic), pk=pk)
        data = request.POST.copy()
        data["seen_state"] = state_token(referral)
        retry_form = form_class(data, auto_id=f"id_{action}_%s")
        context = _detail_context(request, referral, bound={action: retry_form})
        context["invalid_action"] = action
        context["stale"] = True
        return render(request, "referrals/referral_detail.html", context, status=409)
    except ActionNotAllowed as exc:
        flash.error(request, exc.message)
        return redirect("referrals:detail", pk=pk)
    if action == "message" and referral.direction == Direction.SENT:
        done = _("Message sent to Ocean for the receiver.")
    flash.success(request, done)
    return redirect("referrals:detail", pk=pk)


@require_POST
@staff_view
def retry_outbound(request, pk: int, message_id: int):
    """"Retry now" on the referral page, for any staff member of the clinic."""
    message = _outbound_for(request, pk, message_id)
    if retry_now(message, request.user):
        flash.success(request, _("The message will be sent to Ocean again in a moment."))
    else:
        flash.info(request, _("This message is not waiting for a retry any more."))
    return redirect("referrals:detail", pk=pk)


@require_POST
@staff_view
def refusal_handled(request, pk: int, message_id: int):
    """« Handled » on a refusal Harbour kept: any staff member of the clinic, once the referral is right."""
    message = _outbound_for(request, pk, message_id)
    if mark_refusal_handled(message, request.user):
        flash.success(request, _("Ocean's refusal is marked as handled: it no longer makes the referral not synced."))
    else:
        flash.info(request, _("This refusal needs nothing more."))
    return redirect("referrals:detail", pk=pk)


@require_POST
@staff_view
def fetch_document_again(request, pk: int, attachment_id: int):
    referral = _referral_for(request, pk)
    attachment = get_object_or_404(Attachment, pk=attachment_id, referral=referral)
    request_fetch_again(attachment, request.user)
    flash.success(request, _("Harbour will fetch this document from Ocean again in a moment."))
    return redirect("referrals:detail", pk=pk)


INLINE_TYPES = {"application/pdf", "image/png", "image/jpeg"}


@staff_view
def document(request, pk: int, attachment_id: int):
    """The stored letter or attachment, for staff of the referral's clinic only (404 otherwise).

    The copy kept is served while a newer one is fetched or after that failed: Harbour's copy is
    the lasting record (contract §2.1: Ocean drops referrals after a year)."""
    referral = _referral_for(request, pk)
    attachment = get_object_or_404(Attachment, pk=attachment_id, referral=referral)
    if not attachment.file:
        raise Http404
    try:
        handle = attachment.file.open("rb")
    except (FileNotFoundError, OSError):
        raise Http404 from None
    record("referral.document.downloaded", clinic=referral.clinic, actor=request.user,
           target=f"attachment:{attachment.pk}", referral=referral.pk)
    content_type = (attachment.content_type or "application/octet-stream").split(";")[0].strip().lower()
    extension = attachment.file.name.rsplit(".", 1)[-1] if "." in attachment.file.name else "bin"
    filename = (attachment.title or f"{attachment.kind}-{attachment.pk}").replace("/", "_").replace("\\", "_")
    if "." not in filename:
        filename = f"{filename}.{extension}"
    return FileResponse(handle, content_type=content_type, filename=filename,
                        as_attachment=content_type not in INLINE_TYPES)


def _shown_states():
    """The outcome tabs. No "Duplicate": the intake keeps the first copy of a bundle delivered again
    and answers 200 without storing another row, so nothing is ever in that state."""
    return [(value, label) for value, label in InboundMessage.State.choices if value != InboundMessage.State.DUPLICATE]


@staff_view
def inbound_messages(request):
    clinic = current_clinic(request)
    queryset = (
        InboundMessage.objects.filter(clinic=clinic)
        .defer("raw").order_by("-received_at", "-id")
    )
    queryset, state = attention.filter_messages(queryset, request.GET)
    single = attention.one_message(request.GET)
    page = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
    refs = {m.referral_ref for m in page if m.referral_ref}
    referral_ids = dict(
        Referral.objects.filter(clinic=clinic, ocean_ref__in=refs).values_list("ocean_ref", "id")
    ) if refs else {}
    rows = [(m, referral_ids.get(m.referral_ref)) for m in page]
    can_reprocess = request.user.has_perm("clinics.manage_consultation_settings")
    failed_count = InboundMessage.objects.filter(
        clinic=clinic, state=InboundMessage.State.FAILED).count() if can_reprocess and not single else 0
    return render(request, "referrals/inbound_messages.html", {
        "page": page, "rows": rows, "state": state, "states": _shown_states(),
        "single": single, "failed_count": failed_count,
        "attention_count": attention.attention_count(clinic),
        "can_reprocess": can_reprocess,
        "return_to": _return_target(request.get_full_path()),
    })


def _return_target(raw: str | None) -> str:
    """Where an action of the inbound page goes back to: that page with the query string it was shown
    with (filter, page, or one message), never another path or site."""
    base = reverse("referrals:inbound_messages")
    if not raw or "\\" in raw or any(ord(c) < 32 for c in raw):
        return base
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc or parts.path != base:
        return base
    return f"{base}?{parts.query}" if parts.query else base


def _chosen_message(request, clinic):
    """The message a row's button names (POST ``message``), of this clinic; None after a flash error."""
    message_id = attention.one_message(request.POST)  # the same id rule as the page's ?message=
    message = None
    if message_id is not None:
        message = InboundMessage.objects.filter(clinic=clinic, pk=message_id).defer("raw").first()
    if message is None:
        flash.error(request, _("That message does not exist."))
    return message


@require_POST
@staff_view(permission="clinics.manage_consultation_settings")
def reprocess_messages(request):
    """Put failed (or chosen) messages of this clinic back in the worker's queue."""
    clinic = current_clinic(request)
    back = _return_target(request.POST.get("next"))
    chosen = InboundMessage.objects.filter(clinic=clinic)
    raw_id = request.POST.get("message")
    if raw_id:
        message = _chosen_message(request, clinic)
        if message is None:
            return redirect(back)
        chosen = chosen.filter(pk=message.pk)
    else:
        chosen = chosen.filter(state=InboundMessage.State.FAILED)
    count = reprocess(chosen)["queued"]
    record("inbound.reprocess", clinic=clinic, actor=request.user, target=f"inbound:{raw_id or 'failed'}", count=count)
    if count:
        flash.success(request, ngettext(
            "%(count)d message will be processed again.", "%(count)d messages will be processed again.", count,
        ) % {"count": count})
    else:
        flash.info(request, _("Nothing to process again."))
    return redirect(back)


@require_POST
@staff_view(permission="clinics.manage_consultation_settings")
def mark_checked(request):
    """« Mark as checked »: a person looked at a message that needs attention. Clears its flag (the
    warnings stay); the referral page's notice goes with it. Doing it twice changes nothing."""
    clinic = current_clinic(request)
    back = _return_target(request.POST.get("next"))
    message = _chosen_message(request, clinic)
    if message is None:
        return redirect(back)
    cleared = InboundMessage.objects.filter(pk=message.pk, clinic=clinic, needs_attention=True).update(
        needs_attention=False)
    if cleared:
        record("inbound.checked", clinic=clinic, actor=request.user, target=f"inbound:{message.pk}")
        flash.success(request, _("The message is marked as checked. Its warnings are still shown."))
    else:
        flash.info(request, _("This message does not need attention any more."))
    return redirect(back)
