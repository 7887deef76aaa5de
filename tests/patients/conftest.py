import uuid
from datetime import date

import pytest
from django.utils import timezone

from harbour.patients.matching import save_new_chart
from harbour.patients.models import PatientChart
from harbour.referrals.models import Direction, Referral

PATIENT = dict(
    patient_family="Tremblay", patient_given="Élise", patient_sex="female",
    patient_birth_date=date(1980, 2, 29), patient_hcn="1234567890", patient_hcn_version="AB",
    patient_phone="416-555-0100", patient_email="elise@example.org", patient_address="1 Main St, Ottawa ON",
)


def make_referral(clinic, direction=Direction.RECEIVED, **fields) -> Referral:
    values = {**PATIENT, **fields}
    return Referral.objects.create(
        clinic=clinic, ocean_ref=str(uuid.uuid4()), direction=direction, last_activity_at=timezone.now(), **values,
    )


def make_chart(clinic, **fields) -> PatientChart:
    values = dict(family="Tremblay", given="Élise", sex="female", birth_date=date(1980, 2, 29),
                  hcn="1234567890", hcn_version="AB")
    values.update(fields)
    return save_new_chart(PatientChart(clinic=clinic, **values))


@pytest.fixture
def referral_factory(clinic):
    return lambda direction=Direction.RECEIVED, **fields: make_referral(clinic, direction, **fields)


@pytest.fixture
def chart_factory(clinic):
    return lambda **fields: make_chart(clinic, **fields)

