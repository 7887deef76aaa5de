from django.apps import AppConfig


class SandboxConfig(AppConfig):
    name = "harbour.sandbox"
    verbose_name = "Ocean sandbox"
