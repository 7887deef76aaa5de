from django.apps import AppConfig


class IntakeConfig(AppConfig):
    name = "harbour.intake"
