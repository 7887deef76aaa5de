import getpass
import secrets

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.http.request import validate_host
from django.utils import translation

from harbour.clinics import models
from harbour.clinics.models import Clinic, ClinicDomain, User
from harbour.clinics.setup import create_clinic

def is_host_name(domain: str) -> bool:
    """The check ClinicDomain's field makes (the admin's too)."""
    try:
        models.host_name_validator(domain)
    except ValidationError:
        return False
    return True


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
        domain = [models.normalise_domain(d) for d in domain]
        bad = [d for d in domain if not is_host_name(d)]
        if bad:
            raise CommandError(f"Not a host name: {', '.join(map(repr, bad))} (e.g. --domain clinique.example.org).")
        taken = ClinicDomain.objects.filter(domain__in=domain).values_list("domain", flat=True)
        if taken:
            raise CommandError(f"Domain already used by another clinic: {', '.join(taken)}")
        domainless = Clinic.objects.filter(domains__isnull=True).first()
        if not domain and domainless is not None:
            # Two clinics without a domain: no host would say which one a request is for.
            raise CommandError(
                f"Clinic {domainless.pk} ({domainless.name}) has no domain and already answers on every host no "
                "clinic claims: give this clinic its own --domain."
            )
        if password == "-":
            password = secrets.token_urlsafe(12)
            self.stdout.write(f"Generated password for {admin}: {password}")
        elif password is None:
            password = getpass.getpass(f"Password for {admin}: ")
        try:
            with translation.override("en"):  # the CLI speaks English; LANGUAGE_CODE is French
                validate_password(password)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        clinic = create_clinic(name.strip(), domains=domain, admin_username=admin, admin_password=password, admin_email=email)
        self.stdout.write(self.style.SUCCESS(f"Clinic {clinic.pk} created; administrator {admin}."))
        if domainless is not None:
            self.stdout.write(f"Clinic {domainless.pk} ({domainless.name}) has no domain: it keeps every other host.")
        refused = [d for d in domain if not validate_host(d, settings.ALLOWED_HOSTS)]
        if refused:
            self.stderr.write(
                f"Warning: {', '.join(refused)} is not in HARBOUR_ALLOWED_HOSTS: requests for it are refused (400) "
                "until it is added there and the web processes are restarted."
            )
