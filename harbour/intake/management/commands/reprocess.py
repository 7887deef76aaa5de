"""`harbour reprocess`: process inbound messages again, e.g. failed ones after a fix."""
from django.core.management.base import BaseCommand, CommandError

from harbour.clinics.models import Clinic, ClinicDomain
from harbour.intake.jobs import reprocess
from harbour.intake.models import InboundMessage


class Command(BaseCommand):
    help = "Process inbound messages again: all failed ones (--failed) or chosen ones (--id)."

    def add_arguments(self, parser):
        parser.add_argument("--failed", action="store_true", help="every failed message")
        parser.add_argument("--id", type=int, nargs="+", dest="ids", metavar="N", help="these message ids")
        parser.add_argument("--clinic", help="only this clinic (id or domain)")
        parser.add_argument("--now", action="store_true",
                            help="process here and now instead of putting them back in the worker's queue")

    def handle(self, *args, failed=False, ids=None, clinic=None, now=False, **options):
        if not failed and not ids:
            raise CommandError("Say which messages: --failed, or --id N [N ...].")
        messages = InboundMessage.objects.all()
        if clinic:
            messages = messages.filter(clinic=self._clinic(clinic))
        missing = []
        if ids:
            messages = messages.filter(pk__in=ids)
            found = set(messages.values_list("pk", flat=True))
            missing = sorted(set(ids) - found)
            if not found:
                raise CommandError(self._missing(missing, clinic))
        if failed:
            messages = messages.filter(state=InboundMessage.State.FAILED)
        counts = reprocess(messages, now=now)
        if not any(counts.values()):
            self.stdout.write("Nothing to reprocess.")
        else:
            for outcome, count in sorted(counts.items()):
                self.stdout.write(f"{outcome}: {count}")
        if missing:
            # The others were handled; the exit status still says not everything asked for was there.
            raise CommandError(self._missing(missing, clinic))

    @staticmethod
    def _missing(ids: list[int], clinic) -> str:
        where = " in that clinic" if clinic else ""
        return f"No inbound message {', '.join(map(str, ids))}{where}."

    @staticmethod
    def _clinic(value: str) -> Clinic:
        if value.isdigit():
            found = Clinic.objects.filter(pk=int(value)).first()
        else:
            domain = ClinicDomain.objects.select_related("clinic").filter(domain=value.strip().lower()).first()
            found = domain.clinic if domain else None
        if found is None:
            raise CommandError(f"No clinic {value!r} (give its id or one of its domains).")
        return found
