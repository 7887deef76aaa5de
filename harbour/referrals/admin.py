from django.contrib import admin

from .models import Event, Referral


@admin.register(Referral)
class ReferralAdmin(admin.ModelAdmin):
    # Ids and states only in lists: the admin is for operators, patient data stays on the staff pages.
    list_display = ("id", "clinic", "ocean_ref", "direction", "status", "last_activity_at")
    list_filter = ("direction", "status")
    search_fields = ("ocean_ref",)
    readonly_fields = [f.name for f in Referral._meta.fields]


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    list_display = ("id", "clinic", "referral", "kind", "code", "created_at")
    list_filter = ("code",)
    readonly_fields = [f.name for f in Event._meta.fields]
