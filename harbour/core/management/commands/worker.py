from django.core.management.base import BaseCommand

from harbour.core import worker


class Command(BaseCommand):
    help = "Run the worker: processes inbound messages, delivers the outbox, fetches documents."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Work until nothing is left, then exit.")

    def handle(self, *args, once=False, **options):
        if once:
            handled = worker.run_until_idle()
            self.stdout.write(f"handled {handled} items")
        else:
            worker.run_forever()
