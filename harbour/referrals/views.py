"""Staff pages: the referrals, one referral as read from Ocean, and the inbound messages log."""
from django.contrib import messages as flash
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _, ngettext
from django.views.decorators.http import require_POST

from harbour.audit.log import record
from harbour.clinics.access import current_clinic, staff_view
from harbour.intake.jobs import reprocess
from harbour.intake.models import InboundMessage

from .models import Appointment, Direction, Referral
from .timeline import describe

PAGE_SIZE = 50


@staff_view
def referral_list(request):
    clinic = current_clinic(request)
    referrals = Referral.objects.filter(clinic=clinic).order_by("-last_activity_at", "-id")
    direction = request.GET.get("direction")
    if direction in Direction.values:
        referrals = referrals.filter(direction=direction)
    page = Paginator(referrals, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "referrals/referral_list.html", {
        "page": page, "direction": direction, "directions": Direction.choices,
    })


@staff_view
def referral_detail(request, pk: int):
    clinic = current_clinic(request)
    referral = get_object_or_404(
        Referral.objects.filter(clinic=clinic).prefetch_related(
            "form_answers", "attachments", "messages",
            Prefetch("appointments", queryset=Appointment.objects.order_by("-id")),
        ),
        pk=pk,
    )
    answers = list(referral.form_answers.all())
    events = list(referral.events.select_related("inbound_message").order_by("created_at", "id"))
    return render(request, "referrals/referral_detail.html", {
        "referral": referral,
        "visible_answers": [a for a in answers if not a.hidden and a.answers],
        "hidden_answers": [a for a in answers if a.hidden or not a.answers],
        "timeline": [(event, describe(event)) for event in events],
    })


@staff_view
def inbound_messages(request):
    clinic = current_clinic(request)
    queryset = (
        InboundMessage.objects.filter(clinic=clinic)
        .defer("raw").order_by("-received_at", "-id")
    )
    state = request.GET.get("state")
    if state in InboundMessage.State.values:
        queryset = queryset.filter(state=state)
    page = Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))
    refs = {m.referral_ref for m in page if m.referral_ref}
    referral_ids = dict(
        Referral.objects.filter(clinic=clinic, ocean_ref__in=refs).values_list("ocean_ref", "id")
    ) if refs else {}
    rows = [(m, referral_ids.get(m.referral_ref)) for m in page]
    failed_count = InboundMessage.objects.filter(clinic=clinic, state=InboundMessage.State.FAILED).count()
    return render(request, "referrals/inbound_messages.html", {
        "page": page, "rows": rows, "state": state, "states": InboundMessage.State.choices,
        "failed_count": failed_count,
        "can_reprocess": request.user.has_perm("clinics.manage_consultation_settings"),
    })


@require_POST
@staff_view(permission="clinics.manage_consultation_settings")
def reprocess_messages(request):
    """Put failed (or chosen) messages of this clinic back in the worker's queue."""
    clinic = current_clinic(request)
    chosen = InboundMessage.objects.filter(clinic=clinic)
    raw_id = request.POST.get("message")
    if raw_id:
        if not raw_id.isdigit():
            flash.error(request, _("That message does not exist."))
            return redirect("referrals:inbound_messages")
        chosen = chosen.filter(pk=int(raw_id))
        if not chosen.exists():
            flash.error(request, _("That message does not exist."))
            return redirect("referrals:inbound_messages")
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
    return redirect("referrals:inbound_messages")
