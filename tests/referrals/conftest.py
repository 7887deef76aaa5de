import pytest

from harbour.clinics.models import ocean_settings_for


@pytest.fixture
def site(clinic):
    """The clinic's Ocean site is the target of the real payload (site number 1234)."""
    settings_row = ocean_settings_for(clinic)
    settings_row.site_number = "1234"
    settings_row.save()
    return settings_row
