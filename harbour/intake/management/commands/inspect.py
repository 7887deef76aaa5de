"""`harbour inspect FILE`: what Harbour reads from an Ocean bundle, as JSON, without storing it."""
import orjson
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from harbour.fhir.inspect import inspect_bytes


class Command(BaseCommand):
    help = "Show, as JSON, what Harbour reads from an Ocean bundle file, without storing it."

    def add_arguments(self, parser):
        parser.add_argument("file", help="a bundle as Ocean would POST it ('-' reads standard input)")
        parser.add_argument("--site-number", default="", help="the clinic's Ocean site number (decides direction)")

    def handle(self, *args, file, site_number="", **options):
        try:
            if file == "-":
                import sys
                raw = sys.stdin.buffer.read()
            else:
                with open(file, "rb") as handle:
                    raw = handle.read()
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror or type(exc).__name__}.") from None
        try:
            result = inspect_bytes(raw, site_number or None, max_bytes=settings.HARBOUR_MAX_BUNDLE_BYTES)
        except Exception as exc:  # the reader never raises; this guards the promise of no traceback
            raise CommandError(f"Could not inspect {file} ({type(exc).__name__}).") from None
        self.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2).decode())
        if not result.get("accepted"):
            raise CommandError(f"Harbour would reject this body: {result.get('error')}")
