"""Paramètres > Consultations > Ocean, and the clinic's users and their permissions."""
from django.contrib import messages
from django.contrib.auth.models import Permission
from django.db import transaction
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST

from harbour.audit.log import record
from harbour.clinics.access import current_clinic, staff_view
from harbour.clinics.forms import MANAGED_PERMISSIONS, AddUserForm, GenerateKeyForm, OceanSettingsForm, PermissionsForm
from harbour.clinics.inbound import inbound_request_url, rejection_help
from harbour.clinics.models import OceanSettings, User, ocean_settings_for

SETTINGS_PERMISSION = "clinics.manage_consultation_settings"
USERS_PERMISSION = "clinics.manage_clinic_users"

# Form field -> database column, for save(update_fields=...): the intake endpoint writes the
# last_inbound_*/last_rejected_* columns of the same row concurrently, so only touch ours.
_COLUMNS = {"oauth_client_secret": "oauth_client_secret_encrypted"}


def _locked_settings(clinic) -> OceanSettings:
    ocean_settings_for(clinic)  # creates the row on first use
    # Lock our row only (of=self): PostgreSQL refuses FOR UPDATE on the nullable side of a join.
    return OceanSettings.objects.select_for_update(of=("self",)).select_related("inbound_key_generated_by").get(clinic=clinic)


def _settings_page(request, ocean, *, form=None, new_key=None, status=200):
    clinic = current_clinic(request)
    response = render(
        request,
        "clinics/ocean_settings.html",
        {
            "ocean": ocean,
            "form": form or OceanSettingsForm(ocean=ocean),
            "new_key": new_key,
            "request_url": inbound_request_url(clinic),
            "header_name": OceanSettings.INBOUND_KEY_HEADER,
            "rejection": rejection_help(ocean),
        },
        status=status,
    )
    return response


def _key_generated_on(ocean) -> str:
    when = ocean.inbound_key_generated_at
    return date_format(timezone.localtime(when), "DATETIME_FORMAT") if when else "—"


@sensitive_post_parameters("oauth_client_secret", "shown_key")  # kept out of error reports and their logs
@staff_view(permission=SETTINGS_PERMISSION)
@require_http_methods(["GET", "POST"])
@never_cache
def ocean_settings(request):
    clinic = current_clinic(request)
    if request.method == "GET":
        ocean = OceanSettings.objects.select_related("inbound_key_generated_by").get(pk=ocean_settings_for(clinic).pk)
        return _settings_page(request, ocean)
    with transaction.atomic():
        ocean = _locked_settings(clinic)
        # The article has the administrator click « Générer », then « Enregistrer les paramètres
        # Ocean », and only then paste the key in Ocean: the page that showed a new key sends it
        # back, and while it is still the key in force it stays on screen (it is stored nowhere).
        shown_key = request.POST.get("shown_key", "")
        shown_key = shown_key if ocean.inbound_key_matches(shown_key) else None
        form = OceanSettingsForm(request.POST, ocean=ocean)
        if not form.is_valid():
            return _settings_page(request, ocean, form=form, new_key=shown_key)
        changed = form.apply()
        if changed:
            ocean.save(update_fields=[_COLUMNS.get(name, name) for name in changed] + ["updated_at"])
            # Field names only: never the values (the secret above all).
            record("ocean_settings.changed", clinic=clinic, actor=request.user, target=f"ocean_settings:{ocean.pk}", fields=changed)
    if changed:
        messages.success(request, _("Ocean settings saved."))
    else:
        messages.info(request, _("Nothing changed."))
    if shown_key:
        return _settings_page(request, ocean, new_key=shown_key)
    return redirect("clinics:ocean_settings")


@staff_view(permission=SETTINGS_PERMISSION)
@require_POST
@never_cache
def generate_inbound_key(request):
    """« Générer »: a new key, shown once in this response and never again (only its hash is kept)."""
    clinic = current_clinic(request)
    form = GenerateKeyForm(request.POST)
    form.is_valid()  # optional hidden fields: always valid (a stamp past its length matches no key)
    with transaction.atomic():
        ocean = _locked_settings(clinic)
        replacing = bool(ocean.inbound_key_hash)
        if replacing and not form.cleaned_data.get("confirm_replace"):
            # Without JavaScript the button's data-confirm never ran: ask here instead.
            return render(request, "clinics/confirm_replace_key.html", {"ocean": ocean})
        if replacing and form.cleaned_data.get("replaces", "") != ocean.inbound_key_stamp:
            # The form was shown before the key last changed: the page that showed a new key,
            # reloaded (the browser sends the form again), or another administrator's « Générer »
            # in between. Replacing again would break the key just pasted in Ocean.
            messages.warning(request, _(
                "No new key was generated: this form was sent again (for example by reloading the page), "
                "and the key has changed since it was shown. The key generated on %(when)s is still the one "
                "Ocean must send. If you did not copy it, click “Generate” to make a new one."
            ) % {"when": _key_generated_on(ocean)})
            return redirect("clinics:ocean_settings")
        raw_key = ocean.generate_inbound_key(request.user)
        ocean.save(update_fields=["inbound_key_hash", "inbound_key_generated_at", "inbound_key_generated_by", "updated_at"])
        record(
            "ocean_settings.inbound_key_generated",
            clinic=clinic,
            actor=request.user,
            target=f"ocean_settings:{ocean.pk}",
            replaced=replacing,
        )
    return _settings_page(request, ocean, new_key=raw_key)


def _permission_objects() -> dict[str, Permission]:
    codenames = [codename for codename, _label in MANAGED_PERMISSIONS]
    return {
        p.codename: p
        for p in Permission.objects.filter(content_type__app_label="clinics", codename__in=codenames)
    }


def _users_page(request, *, bound: PermissionsForm | None = None, add_form: AddUserForm | None = None, status=200):
    clinic = current_clinic(request)
    rows = []
    for user in User.objects.filter(clinic=clinic).order_by("username").prefetch_related("user_permissions"):
        if bound is not None and bound.target.pk == user.pk:
            form = bound
        else:
            form = PermissionsForm(target=user, actor=request.user)
        rows.append({"user": user, "form": form})
    return render(
        request,
        "clinics/users.html",
        {"rows": rows, "add_form": add_form or AddUserForm(), "managed": MANAGED_PERMISSIONS},
        status=status,
    )


@staff_view(permission=USERS_PERMISSION)
@require_http_methods(["GET"])
def users(request):
    return _users_page(request)


@staff_view(permission=USERS_PERMISSION)
@require_POST
def user_permissions(request, user_id: int):
    clinic = current_clinic(request)
    # Another clinic's user is not found here, whatever the id.
    target = get_object_or_404(User, pk=user_id, clinic=clinic)
    form = PermissionsForm(request.POST, target=target, actor=request.user)
    if not form.is_valid():
        return _users_page(request, bound=form)
    objects = _permission_objects()
    held = set(target.user_permissions.filter(content_type__app_label="clinics").values_list("codename", flat=True))
    changes = []
    with transaction.atomic():
        for codename, _label in MANAGED_PERMISSIONS:
            wanted = form.cleaned_data[codename]
            if wanted and codename not in held:
                target.user_permissions.add(objects[codename])
                changes.append(("granted", codename))
            elif not wanted and codename in held:
                target.user_permissions.remove(objects[codename])
                changes.append(("revoked", codename))
        for change, codename in changes:
            record(
                f"user.permission_{change}",
                clinic=clinic,
                actor=request.user,
                target=f"user:{target.pk}",
                user_id=target.pk,
                permission=codename,
                change=change,
            )
    if changes:
        messages.success(request, _("Permissions of %(username)s saved.") % {"username": target.get_username()})
    else:
        messages.info(request, _("Nothing changed."))
    return redirect("clinics:users")


@sensitive_post_parameters("new-password1", "new-password2")
@staff_view(permission=USERS_PERMISSION)
@require_POST
def add_user(request):
    clinic = current_clinic(request)
    form = AddUserForm(request.POST)
    if not form.is_valid():
        return _users_page(request, add_form=form)
    with transaction.atomic():
        user = form.save(commit=False)
        user.clinic = clinic
        user.save()
        objects = _permission_objects()
        granted = [codename for codename, _label in MANAGED_PERMISSIONS if form.cleaned_data[codename]]
        user.user_permissions.add(*(objects[codename] for codename in granted))
        record("user.created", clinic=clinic, actor=request.user, target=f"user:{user.pk}", user_id=user.pk, permissions=granted)
    messages.success(request, _("User %(username)s added.") % {"username": user.get_username()})
    return redirect("clinics:users")
