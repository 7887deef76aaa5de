"""French is complete: every catalogue translated, compiled, and holding every string the code uses.

Adding a string without translating it (or without running makemessages and compilemessages)
fails here, in the app's own parametrized case.
"""
import os
import shutil
from pathlib import Path

import polib
import pytest
from django.core.management import call_command

HARBOUR = Path(__file__).resolve().parents[2] / "harbour"
CATALOGUES = sorted(HARBOUR.glob("*/locale/fr/LC_MESSAGES/django.po"))
APPS = sorted(path.parent for path in HARBOUR.glob("*/apps.py"))


def app_of(po_path: Path) -> str:
    return po_path.relative_to(HARBOUR).parts[0]


def keys(entries) -> set[tuple]:
    return {(entry.msgctxt, entry.msgid) for entry in entries if entry.msgid and not entry.obsolete}


def test_the_user_facing_apps_have_catalogues():
    assert {"core", "clinics", "audit"} <= {app_of(path) for path in CATALOGUES}


@pytest.mark.parametrize("po_path", CATALOGUES, ids=app_of)
def test_every_entry_is_translated_and_none_is_fuzzy(po_path):
    po = polib.pofile(str(po_path))
    assert [entry.msgid for entry in po.untranslated_entries()] == []
    assert [entry.msgid for entry in po.fuzzy_entries()] == []
    plural = [entry.msgid for entry in po.translated_entries() if entry.msgid_plural and not all(entry.msgstr_plural.values())]
    assert plural == []


@pytest.mark.parametrize("po_path", CATALOGUES, ids=app_of)
def test_the_compiled_catalogue_is_up_to_date(po_path, tmp_path):
    mo_path = po_path.with_suffix(".mo")
    assert mo_path.exists(), f"run compilemessages in harbour/{app_of(po_path)}"
    fresh_path = tmp_path / "django.mo"
    polib.pofile(str(po_path)).save_as_mofile(str(fresh_path))

    def table(path):
        return {
            (entry.msgctxt, entry.msgid): (entry.msgstr, tuple(sorted(entry.msgstr_plural.items())))
            for entry in polib.mofile(str(path))
            if entry.msgid
        }

    assert table(mo_path) == table(fresh_path), f"run compilemessages in harbour/{app_of(po_path)}"


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    """What `makemessages -l fr` finds in each app today, run once over copies of every app."""
    root = tmp_path_factory.mktemp("makemessages")
    for app in APPS:
        shutil.copytree(app, root / app.name, ignore=shutil.ignore_patterns("locale", "__pycache__", "static"))
        (root / app.name / "locale").mkdir()
    previous = Path.cwd()
    os.chdir(root)  # makemessages works on the current directory
    try:
        call_command("makemessages", locale=["fr"], verbosity=0)
    finally:
        os.chdir(previous)
    found = {}
    for app in APPS:
        po_path = root / app.name / "locale" / "fr" / "LC_MESSAGES" / "django.po"
        found[app.name] = keys(polib.pofile(str(po_path))) if po_path.exists() else set()
    return found


@pytest.mark.parametrize("app", [app.name for app in APPS])
def test_makemessages_finds_nothing_missing_from_the_catalogue(app, extracted):
    wanted = extracted[app]
    if not wanted:
        return  # the app shows no translatable string
    po_path = HARBOUR / app / "locale" / "fr" / "LC_MESSAGES" / "django.po"
    assert po_path.exists(), f"harbour/{app} has translatable strings but no French catalogue: run makemessages -l fr there"
    missing = sorted(msgid for _context, msgid in wanted - keys(polib.pofile(str(po_path))))
    assert missing == [], f"run makemessages -l fr in harbour/{app}, translate, compilemessages"


def test_no_entry_of_ours_is_hidden_by_an_app_listed_before_it():
    """Django merges the apps' catalogues so that the app listed first in INSTALLED_APPS wins a msgid
    they share: Django admin's "Filter" showed « Filtre » on our list's button although our
    catalogue says « Filtrer ». A word that needs another French there takes a context."""
    from django.apps import apps

    winner = {}  # (context, msgid) -> (app, French) of the first app in INSTALLED_APPS order
    hidden = []
    for config in apps.get_app_configs():
        po_path = Path(config.path) / "locale" / "fr" / "LC_MESSAGES" / "django.po"
        if not po_path.exists():
            continue
        for entry in polib.pofile(str(po_path)).translated_entries():
            french = entry.msgstr or tuple(sorted(entry.msgstr_plural.items()))
            first = winner.setdefault((entry.msgctxt, entry.msgid), (config.label, french))
            if config.name.startswith("harbour.") and first[1] != french:
                hidden.append(f"{config.label}: {entry.msgid!r} shows {first[0]}'s {first[1]!r}, not {french!r}")
    assert hidden == []
