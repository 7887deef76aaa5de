"""Django admin for operators. Secrets stay out: the inbound key hash and the encrypted OAuth
secret are neither shown nor editable here (clinic administrators use the Ocean settings page)."""
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.db import models
from django.utils.translation import gettext_lazy as _

from harbour.clinics.models import Clinic, ClinicDomain, OceanSettings, User


class ClinicDomainInline(admin.TabularInline):
    model = ClinicDomain
    extra = 0


@admin.register(Clinic)
class ClinicAdmin(admin.ModelAdmin):
    list_display = ["name", "created_at"]
    search_fields = ["name", "domains__domain"]
    inlines = [ClinicDomainInline]


class AdminUserAddForm(AdminUserCreationForm):
    class Meta(AdminUserCreationForm.Meta):
        model = User
        fields = ("username", "clinic")


class AdminUserChangeForm(UserChangeForm):
    class Meta(UserChangeForm.Meta):
        model = User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    add_form = AdminUserAddForm
    form = AdminUserChangeForm
    list_display = ["username", "clinic", "first_name", "last_name", "is_active", "is_staff"]
    list_filter = ["clinic", "is_active", "is_staff", "is_superuser"]
    list_select_related = ["clinic"]
    fieldsets = DjangoUserAdmin.fieldsets + ((_("Clinic"), {"fields": ["clinic"]}),)
    add_fieldsets = DjangoUserAdmin.add_fieldsets + ((_("Clinic"), {"fields": ["clinic"]}),)


@admin.register(OceanSettings)
class OceanSettingsAdmin(admin.ModelAdmin):
    # A server typed without a scheme is Ocean's, which is https (Django 6's default, chosen now).
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ["clinic", "site_number", "server", "has_inbound_key", "has_oauth_credentials", "last_inbound_at"]
    list_select_related = ["clinic"]
    fields = [
        "clinic", "site_number", "server", "custom_server_url", "oauth_client_id",
        "has_inbound_key", "inbound_key_generated_at", "inbound_key_generated_by", "has_client_secret",
        "last_inbound_at", "last_inbound_result", "last_rejected_at", "last_rejected_status", "rejected_count",
    ]
    readonly_fields = [
        "clinic", "has_inbound_key", "inbound_key_generated_at", "inbound_key_generated_by", "has_client_secret",
        "last_inbound_at", "last_inbound_result", "last_rejected_at", "last_rejected_status", "rejected_count",
    ]

    @admin.display(boolean=True, description=_("Inbound key"))
    def has_inbound_key(self, obj):
        return bool(obj.inbound_key_hash)

    @admin.display(boolean=True, description=_("OAuth secret saved"))
    def has_client_secret(self, obj):
        return obj.has_client_secret

    @admin.display(boolean=True, description=_("OAuth credentials"))
    def has_oauth_credentials(self, obj):
        return obj.has_oauth_credentials

    def has_add_permission(self, request):
        return False  # one row per clinic, created with the clinic
