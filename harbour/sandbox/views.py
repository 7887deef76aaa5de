"""The portal pages: the Ocean side of the clinic setup article, and referrals.

Menu names copy Ocean's (Admin > Site Account, Encryption, Site Features, Integrations,
Manage Credentials...), so a clinic can rehearse the article's steps as written.
"""
import uuid

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from harbour.sandbox import delivery, forms, referrals, sites, staff
from harbour.sandbox.errors import SandboxError
from harbour.sandbox.models import Integration, Listing, Referral, Site


def healthz(request):
    return JsonResponse({"status": "ok", "service": "ocean-sandbox"})


def _site(request, number) -> Site:
    site = sites.site_for(request.user, number)
    if site is None:
        raise Http404("No such site for this user.")
    return site


def _fail(form, exc: SandboxError) -> None:
    form.add_error(exc.field if exc.field in form.fields else None, exc.message)


def _page(request, template, site=None, **context):
    return render(request, f"sandbox/{template}", {"site": site, **context})


# --- Accounts and sites ------------------------------------------------------------------------

def signup(request):
    """"Sign up here!": an Ocean user account."""
    form = forms.SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = sites.create_user(form.cleaned_data["username"], form.cleaned_data["password"], form.cleaned_data["email"])
        except SandboxError as exc:
            _fail(form, exc)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect("sandbox:home")
    return _page(request, "form.html", form=form, title="Sign up", submit="Sign up")


@login_required
def home(request):
    return _page(request, "home.html", sites=sites.sites_for(request.user))


@login_required
def site_new(request):
    form = forms.SiteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        site = sites.create_site(request.user, form.cleaned_data["name"])
        messages.success(request, f"Site {site.number} created. Next: Admin > Encryption, to create its shared encryption key.")
        return redirect("sandbox:site_account", number=site.number)
    return _page(request, "form.html", form=form, title="Create a site", submit="Create site")


@login_required
def site_home(request, number):
    site = _site(request, number)
    folder = request.GET.get("folder", "")
    received = Referral.objects.filter(receiver_site=site).select_related("sender_site", "target_listing")
    sent = Referral.objects.filter(sender_site=site).select_related("receiver_site", "target_listing")
    if folder:
        received, sent = received.filter(folder=folder), sent.filter(folder=folder)
    return _page(request, "site_home.html", site, received=received, sent=sent, folders=Referral.Folder.choices, folder=folder)


@login_required
def admin_menu(request, number):
    return _page(request, "admin_menu.html", _site(request, number))


@login_required
def site_account(request, number):
    return _page(request, "site_account.html", _site(request, number))


@login_required
def encryption(request, number):
    site = _site(request, number)
    form = forms.EncryptionForm(request.POST or None)
    new_key = None
    if request.method == "POST" and form.is_valid():
        try:
            new_key = sites.create_encryption_key(site, form.cleaned_data["key"])
        except SandboxError as exc:
            _fail(form, exc)
    return _page(request, "encryption.html", site, form=form, new_key=new_key)


@login_required
def site_features(request, number):
    site = _site(request, number)
    form = forms.SiteFeaturesForm(request.POST or None, initial={"cloud_connect": site.cloud_connect_enabled})
    if request.method == "POST" and form.is_valid():
        sites.set_cloud_connect(site, form.cleaned_data["cloud_connect"])
        if site.cloud_connect_enabled and not site.key_in_cloud_connect:
            messages.info(request, "Ocean Cloud Connect is enabled. Go to Cloud Connect to store your encryption key.")
        else:
            messages.success(request, "Site features saved.")
        return redirect("sandbox:site_features", number=site.number)
    return _page(request, "site_features.html", site, form=form)


@login_required
def cloud_connect(request, number):
    site = _site(request, number)
    form = forms.CloudKeyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            sites.store_key_in_cloud_connect(site, form.cleaned_data["key"])
        except SandboxError as exc:
            _fail(form, exc)
        else:
            messages.success(request, "Your shared encryption key is stored in Ocean Cloud Connect.")
            return redirect("sandbox:cloud_connect", number=site.number)
    return _page(request, "cloud_connect.html", site, form=form)


# --- Integrations ------------------------------------------------------------------------------

@login_required
def integrations(request, number):
    site = _site(request, number)
    return _page(request, "integrations.html", site, integrations=site.integrations.all())


@login_required
def integration_new(request, number):
    site = _site(request, number)
    form = forms.IntegrationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            integration = sites.register_integration(site, **form.cleaned_data)
        except SandboxError as exc:
            _fail(form, exc)
        else:
            messages.success(request, f"Integration {integration.name} saved.")
            return redirect("sandbox:integrations", number=site.number)
    return _page(request, "integration_form.html", site, form=form)


@login_required
def integration_detail(request, number, pk):
    site = _site(request, number)
    integration = get_object_or_404(Integration, pk=pk, site=site)
    form = forms.BulkResendForm(request.POST or None, request.FILES or None)
    result = None
    if request.method == "POST" and form.is_valid():
        text = form.cleaned_data["refs"] or ""
        if form.cleaned_data.get("csv_file"):
            text += "\n" + form.cleaned_data["csv_file"].read(200_000).decode("utf-8", "replace")
        try:
            result = referrals.bulk_resend(integration, delivery.parse_refs(text), form.cleaned_data["mode"])
        except SandboxError as exc:
            _fail(form, exc)
    deliveries = integration.deliveries.select_related("referral").prefetch_related("attempt_log").order_by("-id")[:50]
    return _page(request, "integration_detail.html", site, integration=integration, deliveries=deliveries, form=form, result=result)


# --- Directory listings and credentials --------------------------------------------------------

@login_required
def listings(request, number):
    site = _site(request, number)
    form = forms.ListingForm(request.POST or None, site=site)
    if request.method == "POST" and form.is_valid():
        try:
            sites.create_listing(site, **form.cleaned_data)
        except SandboxError as exc:
            _fail(form, exc)
        else:
            messages.success(request, "Listing saved.")
            return redirect("sandbox:listings", number=site.number)
    return _page(request, "listings.html", site, listings=site.listings.select_related("integration"), form=form)


@login_required
def credentials(request, number):
    return _page(request, "credentials.html", _site(request, number))


@login_required
def oauth_credentials(request, number):
    site = _site(request, number)
    form = forms.CredentialForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        try:
            created = sites.create_oauth_credential(site, form.cleaned_data["name"])
        except SandboxError as exc:
            _fail(form, exc)
    return _page(request, "oauth_credentials.html", site, form=form, created=created,
                 credentials=site.oauth_credentials.all(), refused=None if site.key_in_cloud_connect else sites.OAUTH_NEEDS_SEK)


# --- Referrals ---------------------------------------------------------------------------------

@login_required
def referral_new(request, number):
    site = _site(request, number)
    form = forms.ReferralForm(request.POST or None, request.FILES or None, initial={"listing": request.GET.get("listing", "")})
    if request.method == "POST" and form.is_valid():
        listing = Listing.objects.filter(ref=form.cleaned_data["listing"].strip()).first()
        if listing is None:
            form.add_error("listing", "No listing has this reference.")
        else:
            upload = form.cleaned_data.get("attachment")
            attachments = [{"title": upload.name, "content_type": upload.content_type or "application/octet-stream", "data": upload.read()}] if upload else []
            history = form.cleaned_data.get("history") or ""
            answers = [{"link_id": "history", "text": "History:", "answer": history}] if history else []
            try:
                referral = referrals.create_referral(
                    site, listing, patient=form.patient(), reason=form.cleaned_data["reason"], answers=answers,
                    attachments=attachments, priority=form.cleaned_data["priority"], user=request.user,
                )
            except SandboxError as exc:
                _fail(form, exc)
            else:
                messages.success(request, "Referral sent.")
                return redirect("sandbox:referral", number=site.number, ref=referral.ref)
    return _page(request, "form.html", site, form=form, title="New referral", submit="Send referral", multipart=True)


def _referral(site: Site, ref) -> Referral:
    try:
        key = uuid.UUID(str(ref))
    except ValueError:
        raise Http404("No such referral.") from None
    referral = Referral.objects.select_related("sender_site", "receiver_site", "target_listing").filter(ref=key).first()
    if referral is None or site.pk not in (referral.sender_site_id, referral.receiver_site_id):
        raise Http404("No such referral.")
    return referral


def _referral_page(request, site: Site, item: Referral, *, status: int = 200, **bound):
    """The referral as `site` sees it; the current receiver's staff get Accept, Decline, Book and
    Cancel appointment (§5.4: never the sender). `bound` carries a refused form with its errors."""
    is_receiver = site.pk == item.receiver_site_id
    acts = is_receiver and item.folder not in (Referral.Folder.CANCELLED, Referral.Folder.COMPLETED)
    appointment = staff.current_appointment(item) if acts else None
    context = {
        "referral": item, "is_sender": site.pk == item.sender_site_id, "is_receiver": is_receiver,
        "message_form": forms.MessageForm(),
        "deliveries": item.deliveries.select_related("integration", "integration__site").order_by("id"),
        "receiver_actions": acts,
        "can_accept": acts and item.folder in (Referral.Folder.NEW, Referral.Folder.DECLINED),
        "can_decline": acts and item.folder != Referral.Folder.DECLINED,
        "current_appointment": appointment,
        "decline_form": bound.get("decline_form") or forms.DeclineForm(),
        "booking_form": bound.get("booking_form") or forms.BookingForm(),
    }
    return render(request, "sandbox/referral.html", {"site": site, **context}, status=status)


@login_required
def referral(request, number, ref):
    site = _site(request, number)
    return _referral_page(request, site, _referral(site, ref))


def _staff_refused(request, site: Site, item: Referral, exc: SandboxError, **bound):
    """A refused staff action: the sender's 403, or the state's (cancelled, nothing to cancel) as a notice."""
    messages.error(request, exc.message)
    if exc.status == 403:
        return _referral_page(request, site, item, status=403, **bound)
    return redirect("sandbox:referral", number=site.number, ref=item.ref)


def _staff_action(request, number, ref, act, done: str):
    """A receiver's action without a form (accept, cancel the appointment)."""
    site = _site(request, number)
    item = _referral(site, ref)
    try:
        act(item, site)
    except SandboxError as exc:
        return _staff_refused(request, site, item, exc)
    messages.success(request, done)
    return redirect("sandbox:referral", number=number, ref=ref)


@login_required
@require_POST
def referral_accept(request, number, ref):
    return _staff_action(request, number, ref, staff.accept, "Referral accepted (Pending Booking).")


def _staff_form_action(request, number, ref, form_class, bound_name: str, act, done: str):
    """A receiver's action from a form (decline, book): its errors shown on the referral page, the
    sender's refusal as a 403 page, success back to the referral."""
    site = _site(request, number)
    item = _referral(site, ref)
    form = form_class(request.POST)
    if form.is_valid():
        try:
            act(item, site, form.cleaned_data)
        except SandboxError as exc:
            if exc.field not in form.fields:
                return _staff_refused(request, site, item, exc, **{bound_name: form})
            _fail(form, exc)
        else:
            messages.success(request, done)
            return redirect("sandbox:referral", number=number, ref=ref)
    elif site.pk != item.receiver_site_id:
        return _staff_refused(request, site, item, SandboxError(staff.NOT_RECEIVER, status=403))
    return _referral_page(request, site, item, **{bound_name: form})


@login_required
@require_POST
def referral_decline(request, number, ref):
    return _staff_form_action(
        request, number, ref, forms.DeclineForm, "decline_form",
        lambda item, site, data: staff.decline(item, site, data["reason"]), "Referral declined.",
    )


@login_required
@require_POST
def referral_book(request, number, ref):
    def book(item, site, data):
        staff.book(item, site, start=staff.appointment_start(data["date"], data["time"]), minutes=data["duration"],
                   confirmed=data["confirmed"], instruction=data["instruction"])

    return _staff_form_action(request, number, ref, forms.BookingForm, "booking_form", book, "Appointment booked.")


@login_required
@require_POST
def referral_cancel_appointment(request, number, ref):
    return _staff_action(request, number, ref, staff.cancel_appointment, "Appointment cancelled (Pending Booking).")


@login_required
@require_POST
def referral_cancel(request, number, ref):
    site = _site(request, number)
    try:
        referrals.cancel_referral(_referral(site, ref), site)
        messages.success(request, "Referral cancelled.")
    except SandboxError as exc:
        messages.error(request, exc.message)
    return redirect("sandbox:referral", number=number, ref=ref)


@login_required
@require_POST
def referral_message(request, number, ref):
    site = _site(request, number)
    form = forms.MessageForm(request.POST)
    if form.is_valid():
        try:
            referrals.send_message(_referral(site, ref), site, form.cleaned_data["text"])
            messages.success(request, "Message sent.")
        except SandboxError as exc:
            messages.error(request, exc.message)
    else:
        messages.error(request, "Enter a message.")
    return redirect("sandbox:referral", number=number, ref=ref)


@login_required
def referral_edit(request, number, ref):
    site = _site(request, number)
    item = _referral(site, ref)
    initial = {**{k: item.patient.get(k, "") for k in ["family", "given", "hcn", "version_code"]}, "reason": item.reason}
    form = forms.EditReferralForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            referrals.edit_referral(item, site, patient={k: data[k] for k in ["family", "given", "hcn", "version_code"]}, reason=data["reason"])
        except SandboxError as exc:
            _fail(form, exc)
        else:
            messages.success(request, "Referral updated.")
            return redirect("sandbox:referral", number=number, ref=ref)
    return _page(request, "form.html", site, form=form, title="Edit referral", submit="Save")


# Error pages: the sandbox has its own (Harbour's extend Harbour's base and name Harbour's URLs).
def _error(request, status: int, title: str, text: str):
    return render(request, "sandbox/error.html", {"title": title, "text": text}, status=status)


def not_found(request, exception=None):
    return _error(request, 404, "Not found", "This page does not exist in the sandbox, or it belongs to a site you are not a member of.")


def forbidden(request, exception=None):
    return _error(request, 403, "Access refused", "Your account may not open this page.")


def server_error(request):
    return _error(request, 500, "Something went wrong", "The sandbox could not show this page; its log says why.")
