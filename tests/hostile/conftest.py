import pytest
from django.apps import apps

from tests.hostile.world import build_world

# Every table these apps own (and the user-permission link tables): what "nothing changed" compares.
TRACKED_APPS = {"auth", "clinics", "audit", "intake", "referrals", "ocean", "patients"}


@pytest.fixture
def world(db, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return build_world()


def database_state() -> dict:
    """Every row of every tracked table, for before/after comparisons."""
    state = {}
    for model in apps.get_models(include_auto_created=True):
        if model._meta.app_label in TRACKED_APPS:
            state[model._meta.label] = list(model._base_manager.order_by("pk").values())
    return state


def changed_tables(before: dict, after: dict) -> list[str]:
    return sorted(label for label in before.keys() | after.keys() if before.get(label) != after.get(label))
