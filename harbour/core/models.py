"""What the core keeps in the database: the workers' heartbeats (for /readyz)."""
import os
import socket

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class WorkerHeartbeat(models.Model):
    """One row per running worker process, touched every few seconds while it loops.

    /readyz reads the newest beat: the database is the only shared state, so a web process on
    another machine can tell whether any worker is alive.
    """

    name = models.CharField(max_length=200, unique=True)  # host:pid:start, unique per process
    hostname = models.CharField(max_length=200)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    beat_at = models.DateTimeField(db_index=True)
    handled = models.PositiveBigIntegerField(default=0)  # items handled since the process started

    class Meta:
        verbose_name = _("worker heartbeat")
        verbose_name_plural = _("worker heartbeats")

    def __str__(self):
        return self.name

    @classmethod
    def process_name(cls, started_at) -> str:
        return f"{socket.gethostname()[:120]}:{os.getpid()}:{int(started_at.timestamp())}"

    @classmethod
    def beat(cls, name: str, started_at, handled: int) -> None:
        now = timezone.now()
        updated = cls.objects.filter(name=name).update(beat_at=now, handled=handled)
        if not updated:
            cls.objects.create(
                name=name, hostname=socket.gethostname()[:200], pid=os.getpid(),
                started_at=started_at, beat_at=now, handled=handled,
            )

    @classmethod
    def latest(cls):
        return cls.objects.order_by("-beat_at").values_list("beat_at", flat=True).first()
