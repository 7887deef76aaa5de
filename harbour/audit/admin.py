from django.contrib import admin

from harbour.audit.models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Read-only: the audit log is append-only, even for operators."""

    list_display = ["created_at", "clinic", "actor_username", "action", "target"]
    list_filter = ["action", "clinic"]
    search_fields = ["action", "target", "actor_username"]
    date_hierarchy = "created_at"
    list_select_related = ["clinic"]
    readonly_fields = ["created_at", "clinic", "actor", "actor_username", "action", "target", "details"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
