from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "harbour.core"
    verbose_name = "Harbour"
