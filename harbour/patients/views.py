"""Staff pages: the clinic's charts, and the actions of the patient panel on a referral page.

Every lookup is filtered by the request's clinic, so another clinic's ids are 404s. Actions are
POSTs that redirect back; repeating one (a double submit, a stale page) has one effect.
Linking a chart whose identity disagrees with the referral, and copying an identifier into a
chart, first answer with a page that shows the values and asks to confirm (matching.NeedsConfirmation).
"""
import logging

from django.contrib import messages as flash
from django.core.paginator import Paginator
from django.db.models import Q
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from harbour.clinics.access import current_clinic, staff_view
from harbour.referrals.models import Referral

from . import matching
from .forms import ChartSearchForm, LinkForm, ReviewDecisionForm
from .models import ChartReviewItem, PatientChart, ReviewField, fold, hcn_digits

PAGE_SIZE = 50
log = logging.getLogger("harbour.patients")


def _referral(request, referral_pk: int) -> Referral:
    return get_object_or_404(Referral, clinic=current_clinic(request), pk=referral_pk)


def _back_to_referral(referral_pk: int):
    return redirect("referrals:detail", pk=referral_pk)


@staff_view
def chart_list(request):
    clinic = current_clinic(request)
    charts = PatientChart.objects.filter(clinic=clinic).order_by("family_key", "given_key", "id")
    form = ChartSearchForm(request.GET or None)
    query = ""
    if form.is_valid():
        query = form.cleaned_data["q"].strip()
    if query:
        digits = hcn_digits(query)
        if digits and not any(c.isalpha() for c in query):
            charts = charts.filter(Q(hcn__contains=digits) | Q(chart_number__icontains=query))
        else:
            words = [fold(word) for word in query.split() if fold(word)]
            for word in words:
                charts = charts.filter(
                    Q(family_key__contains=word) | Q(given_key__contains=word) | Q(chart_number__iexact=query)
                )
    page = Paginator(charts, PAGE_SIZE).get_page(request.GET.get("page"))
    return render(request, "patients/chart_list.html", {"form": form, "page": page, "query": query})


@staff_view
def chart_detail(request, pk: int):
    clinic = current_clinic(request)
    chart = get_object_or_404(PatientChart.objects.filter(clinic=clinic), pk=pk)
    links = list(
        chart.referral_links.filter(referral__clinic=clinic).select_related("referral")
        .order_by("-referral__last_activity_at", "-id")
    )
    reviews = matching.with_confirm_tokens(list(
        ChartReviewItem.objects.filter(clinic=clinic, chart=chart, state=ChartReviewItem.State.OPEN)
        .select_related("referral").order_by("id")
    ), chart)
    return render(request, "patients/chart_detail.html", {"chart": chart, "links": links, "reviews": reviews})


@require_POST
@staff_view
def link_chart(request, referral_pk: int):
    referral = _referral(request, referral_pk)
    form = LinkForm(request.POST)
    if not form.is_valid():
        flash.error(request, " ".join(form.errors.get("__all__", [])) or _("Choose a chart, or type its chart number."))
        return _back_to_referral(referral.pk)
    charts = PatientChart.objects.filter(clinic=referral.clinic)
    if form.cleaned_data.get("chart"):
        chart = get_object_or_404(charts, pk=form.cleaned_data["chart"])
    else:
        chart = charts.filter(chart_number=form.cleaned_data["chart_number"].strip()).first()
        if chart is None:
            flash.error(request, _("No chart has this chart number."))
            return _back_to_referral(referral.pk)
    try:
        _link, changed = matching.link(referral, chart, request.user, confirmed=form.cleaned_data["confirm"])
    except matching.NeedsConfirmation as needed:
        log.info("link of referral %s to chart %s needs confirmation: %s differ", referral.pk, chart.pk,
                 ",".join(needed.fields))
        return render(request, "patients/confirm_link.html", {
            "referral": referral, "chart": chart, "token": needed.token, "conflicts": needed.fields,
            "rows": matching.identity_rows(referral, chart),
        })
    except matching.AlreadyLinked:
        flash.error(request, _("This referral is already linked to another chart. Unlink it first."))
        return _back_to_referral(referral.pk)
    if changed:
        flash.success(request, _("The referral is linked to chart %(number)s.") % {"number": chart.chart_number})
    else:
        flash.info(request, _("The referral was already linked to this chart."))
    return _back_to_referral(referral.pk)


@require_POST
@staff_view
def create_chart(request, referral_pk: int):
    referral = _referral(request, referral_pk)
    current, created = matching.create_chart_from_referral(referral, request.user)
    if created:
        flash.success(request, _("Chart %(number)s was created from the referral and linked to it.")
                      % {"number": current.chart.chart_number})
    else:
        flash.info(request, _("The referral was already linked to a chart: no chart was created."))
    return _back_to_referral(referral.pk)


@require_POST
@staff_view
def unlink_chart(request, referral_pk: int):
    referral = _referral(request, referral_pk)
    _link, changed = matching.unlink(referral, request.user)
    if changed:
        flash.success(request, _("The referral is no longer linked to that chart. Choose the right one."))
    else:
        flash.info(request, _("The referral was not linked to a chart."))
    return _back_to_referral(referral.pk)


def _review_item(request, pk: int) -> ChartReviewItem:
    clinic = current_clinic(request)
    return get_object_or_404(
        ChartReviewItem.objects.filter(clinic=clinic, chart__clinic=clinic).select_related("chart", "referral"), pk=pk,
    )


def _after_decision(request, item, changed: bool, done_message: str, form: ReviewDecisionForm):
    if changed:
        flash.success(request, done_message % {"field": ReviewField(item.field).label})
    else:
        flash.info(request, _("This difference was already decided."))
    if form.is_valid() and form.cleaned_data.get("back") == "chart":
        return redirect("patients:chart", pk=item.chart_id)
    return _back_to_referral(item.referral_id)


@require_POST
@staff_view
def accept_review(request, pk: int):
    """« Update the chart »: an identifier goes in only once the person confirmed the values shown."""
    item = _review_item(request, pk)
    form = ReviewDecisionForm(request.POST)
    confirmed = form.cleaned_data.get("confirm", "") if form.is_valid() else ""
    try:
        item, changed = matching.accept_review(item, request.user, confirmed=confirmed)
    except matching.NeedsConfirmation as needed:
        log.info("review %s needs confirmation: %s", item.pk, ",".join(needed.fields))
        item.refresh_from_db()
        chart = item.chart
        chart.refresh_from_db()
        matching.with_confirm_tokens([item], chart)
        return render(request, "patients/confirm_review.html", {
            "item": item, "chart": chart, "token": needed.token,
            "back": form.cleaned_data.get("back", "") if form.is_valid() else "",
        })
    return _after_decision(request, item, changed, _("The chart takes the referral's value for: %(field)s."), form)


@require_POST
@staff_view
def ignore_review(request, pk: int):
    item, changed = matching.ignore_review(_review_item(request, pk), request.user)
    return _after_decision(request, item, changed, _("The chart keeps its value for: %(field)s."), ReviewDecisionForm(request.POST))
