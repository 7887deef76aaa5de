"""Who did what, when, in which clinic. Ids, codes and field names only: no secrets, no PHI."""
from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class AuditEntry(models.Model):
    clinic = models.ForeignKey("clinics.Clinic", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Kept apart from the foreign key so the entry still says who it was after the user is deleted.
    actor_username = models.CharField(max_length=150, blank=True)
    action = models.CharField(_("action"), max_length=64, db_index=True)
    target = models.CharField(_("target"), max_length=200, blank=True)
    details = models.JSONField(_("details"), default=dict, blank=True)
    created_at = models.DateTimeField(_("time"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit entries")
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["clinic", "-created_at"])]

    def __str__(self):
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action}"
