import getpass
import secrets

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from harbour.clinics.models import ClinicDomain, User
from harbour.clinics.setup import create_clinic


class Command(BaseCommand):
    help = "Create a clinic with its domain(s) and an administrator who holds the consultation settings permission."

    def add_arguments(self, parser):
        parser.add_argument("name", help="The clinic's name.")
        parser.add_argument("--domain", action="append", default=[], help="A host name the clinic is served on (repeatable).")
        parser.add_argument("--admin", required=True, help="The administrator's username.")
        parser.add_argument("--email", default="")
        parser.add_argument("--password", help="The administrator's password (prompted for when omitted; '-' generates one).")

    def handle(self, *args, name, domain, admin, email, password, **options):
        if not name.strip():
            raise CommandError("The clinic needs a name.")
        if User.objects.filter(username=admin).exists():
            raise CommandError(f"A user named {admin!r} already exists.")
        taken = ClinicDomain.objects.filter(domain__in=[d.strip().lower() for d in domain]).values_list("domain", flat=True)
        if taken:
            raise CommandError(f"Domain already used by another clinic: {', '.join(taken)}")
        if password == "-":
            password = secrets.token_urlsafe(12)
            self.stdout.write(f"Generated password for {admin}: {password}")
        elif password is None:
            password = getpass.getpass(f"Password for {admin}: ")
        try:
            validate_password(password)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        clinic = create_clinic(name.strip(), domains=domain, admin_username=admin, admin_password=password, admin_email=email)
        self.stdout.write(self.style.SUCCESS(f"Clinic {clinic.pk} created; administrator {admin}."))
