from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PatientsConfig(AppConfig):
    name = "harbour.patients"
    verbose_name = _("Patients")

    def ready(self):
        from . import queue

        queue.connect()
