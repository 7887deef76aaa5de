"""`harbour sandbox demo_rewire`: what `harbour demo` runs when it starts on other ports than
before. The sandbox's admin API cannot change an integration's Request URL, so this does it in
the sandbox's own database, and makes the deliveries waiting to retry (they failed on the old
address) due now."""
import json

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone


class Command(BaseCommand):
    help = "Used by `harbour demo`: point a sandbox integration at a new Request URL (harbour sandbox demo_rewire ...)."

    def add_arguments(self, parser):
        parser.add_argument("--integration", type=int, required=True, help="The sandbox integration's id.")
        parser.add_argument("--request-url", required=True)

    def handle(self, *args, integration, request_url, **options):
        if settings.ROOT_URLCONF != "harbour.sandbox.urls":
            raise CommandError("This changes the Ocean sandbox's database: run it as `harbour sandbox demo_rewire ...`.")
        try:
            URLValidator(schemes=["http", "https"])(request_url)
        except ValidationError:
            raise CommandError(f"{request_url!r} is not an http(s) URL.") from None
        from harbour.sandbox.models import Delivery, Integration

        with transaction.atomic():
            found = Integration.objects.select_for_update().filter(pk=integration).first()
            if found is None:
                raise CommandError(f"The sandbox has no integration {integration}.")
            previous = found.request_url
            found.request_url = request_url
            found.save(update_fields=["request_url"])
            due = Delivery.objects.filter(integration=found, state=Delivery.State.PENDING).update(next_attempt_at=timezone.now())
        self.stdout.write(json.dumps({"integration": integration, "request_url": request_url, "previous": previous, "due_now": due}))
