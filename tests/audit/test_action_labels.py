"""Every action Harbour records has words on the audit page, in French and English."""
import html
import pathlib
import re

import pytest

import harbour
from harbour.audit import labels
from harbour.audit.log import record

AUDIT_URL = "/audit/"
# record("an.action", ...) and record(f"user.permission_{change}", ...) in Harbour's code.
_RECORDED = re.compile(r'\brecord\(\s*(f?)"([a-z_.{}]+)"')


def recorded_actions() -> set[str]:
    found = set()
    for path in pathlib.Path(harbour.__file__).parent.rglob("*.py"):
        for is_f_string, action in _RECORDED.findall(path.read_text()):
            if is_f_string:
                found |= {re.sub(r"\{[^}]*\}", change, action) for change in ("granted", "revoked")}
            else:
                found.add(action)
    return found


def test_every_recorded_action_has_a_label():
    actions = recorded_actions()
    assert {"ocean_settings.changed", "patients.link.waiting", "user.permission_revoked"} <= actions  # the scan works
    assert sorted(actions - set(labels.ACTIONS)) == []


@pytest.mark.parametrize("language, expected", [
    ("fr", [
        "Liaison au dossier en attente d'une personne",
        "<dt>état</dt><dd>En attente d'une personne</dd>",
        "<dt>motif</dt><dd>Aucun dossier n'a ce numéro de carte santé et cette date de naissance</dd>",
        "Connexion à Ocean testée", "<dt>résultat</dt><dd>identifiant de client inconnu</dd>",
    ]),
    ("en", [
        "Chart link waiting for a person",
        "<dt>state</dt><dd>Waiting for a person</dd>",
        "<dt>reason</dt><dd>No chart has this health card number and birth date</dd>",
        "Connection to Ocean tested", "<dt>result</dt><dd>unknown Client ID</dd>",
    ]),
])
def test_codes_are_shown_as_words(admin_client, clinic, language, expected):
    record("patients.link.waiting", clinic=clinic, target="referral:4", state="waiting", reason="no_match")
    record("ocean.connection_tested", clinic=clinic, target=f"clinic:{clinic.pk}", result="wrong_client_id")
    admin_client.post("/i18n/setlang/", {"language": language, "next": AUDIT_URL})
    page = html.unescape(admin_client.get(AUDIT_URL).content.decode())
    for text in expected:
        assert text in page
    # The action's code stays beside its label, for whoever supports the clinic.
    assert "<code>patients.link.waiting</code>" in page


def test_an_unknown_code_is_shown_as_recorded(admin_client, clinic):
    record("future.action", clinic=clinic, target="x:1", novel="some_value", fields=["unknown_field"])
    page = html.unescape(admin_client.get(AUDIT_URL).content.decode())
    assert "<dt>novel</dt><dd>some_value</dd>" in page and "<dd>unknown_field</dd>" in page


def test_a_detail_name_reads_by_its_action(admin_client, clinic):
    record("ocean_settings.inbound_key_generated", clinic=clinic, target="ocean_settings:1", replaced=True)
    record("patients.review.accepted", clinic=clinic, target="review:3", field="hcn", replaced=True,
           confirmed=True, confirmed_conflicts=["hcn", "birth_date"])
    page = html.unescape(admin_client.get(AUDIT_URL).content.decode())
    assert "<dt>a remplacé la clé précédente</dt><dd>oui</dd>" in page
    assert "<dt>a remplacé une valeur du dossier</dt><dd>oui</dd>" in page
    assert "<dt>différences confirmées</dt><dd>Numéro de carte santé, Date de naissance</dd>" in page
