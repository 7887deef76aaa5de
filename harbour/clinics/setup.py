"""Creating clinics and their administrators (used by `harbour create-clinic` and the demo)."""
from django.contrib.auth.models import Permission
from django.db import transaction

from harbour.audit.log import record
from harbour.clinics.models import Clinic, ClinicDomain, OceanSettings, User

ADMIN_PERMISSIONS = ["manage_consultation_settings", "manage_clinic_users"]


def grant(user: User, *codenames: str) -> None:
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="clinics", codename__in=codenames))


@transaction.atomic
def create_clinic(name: str, *, domains=(), admin_username: str, admin_password: str, admin_email: str = "") -> Clinic:
    clinic = Clinic.objects.create(name=name)
    for domain in domains:
        ClinicDomain.objects.create(clinic=clinic, domain=domain)
    OceanSettings.objects.create(clinic=clinic)
    admin = User.objects.create_user(
        username=admin_username, password=admin_password, email=admin_email, clinic=clinic
    )
    grant(admin, *ADMIN_PERMISSIONS)
    record("clinic.created", clinic=clinic, target=f"clinic:{clinic.pk}", domains=list(domains))
    record("user.created", clinic=clinic, target=f"user:{admin.pk}", permissions=ADMIN_PERMISSIONS)
    return clinic
