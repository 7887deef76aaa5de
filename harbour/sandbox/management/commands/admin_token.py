from django.core.management.base import BaseCommand

from harbour.sandbox import conf


class Command(BaseCommand):
    help = "Print the sandbox's JSON admin API token (header X-Sandbox-Admin-Token)."

    def handle(self, *args, **options):
        self.stdout.write(conf.admin_token())
