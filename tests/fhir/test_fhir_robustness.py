"""read_message never raises on a bundle whose envelope passes, whatever sits inside."""

import copy
import json
from pathlib import Path

import orjson
from hypothesis import HealthCheck, given, settings, strategies as st

from harbour.fhir.read import EnvelopeError, check_envelope, read_message

BUNDLES = Path(__file__).resolve().parents[1] / "fixtures" / "bundles"
REAL = json.loads((BUNDLES / "add-service-request.back-pain.json").read_text())
FULL = json.loads((BUNDLES / "notify-update-service-request.full.json").read_text())
FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

WRONG_TYPES = [None, 1.5, True, "text", ["x"], {"x": 1}, [{}], [[{}]]]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


def paths(value, prefix=()):
    """Every dict key / list index in ``value``, depth first."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        yield prefix + (key,)
        yield from paths(child, prefix + (key,))


def mutated(bundle, path, replacement=..., remove=False):
    copy_ = orjson.loads(orjson.dumps(bundle))  # a fast deep copy
    parent = copy_
    for key in path[:-1]:
        parent = parent[key]
    if remove:
        del parent[path[-1]]
    else:
        parent[path[-1]] = copy.deepcopy(replacement)
    return copy_


def read_if_accepted(bundle):
    try:
        check_envelope(bundle)
    except EnvelopeError:
        return None
    return read_message(bundle, strict=True)


REAL_PATHS = list(paths(REAL))
FULL_PATHS = list(paths(FULL))


def test_every_element_removed_in_turn():
    for bundle, all_paths in ((REAL, REAL_PATHS), (FULL, FULL_PATHS)):
        for path in all_paths:
            read_if_accepted(mutated(bundle, path, remove=True))


def test_every_element_replaced_by_each_wrong_type():
    for bundle, all_paths in ((REAL, REAL_PATHS), (FULL, FULL_PATHS)):
        for path in all_paths:
            for wrong in WRONG_TYPES:
                read_if_accepted(mutated(bundle, path, wrong))


@FAST
@given(st.sampled_from(REAL_PATHS + FULL_PATHS), json_values, st.booleans())
def test_random_replacement_never_raises(path, value, use_full):
    bundle = FULL if use_full else REAL
    if path not in set(FULL_PATHS if use_full else REAL_PATHS):
        return
    message = read_if_accepted(mutated(bundle, path, value))
    if message is not None:
        assert all(isinstance(w, str) for w in message.warnings)


@FAST
@given(st.lists(st.tuples(st.sampled_from(FULL_PATHS), json_values), min_size=1, max_size=5))
def test_several_random_replacements_never_raise(changes):
    bundle = copy.deepcopy(FULL)
    for path, value in changes:
        try:
            bundle = mutated(bundle, path, value)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed that path
    read_if_accepted(bundle)


def test_warnings_never_hold_patient_data():
    secrets = ("1234567890", "1234-567-890", "Dana", "DKTest", "CHART-0042", "dana@example.org", "1980-02-29")
    patient_index = next(i for i, e in enumerate(FULL["entry"]) if e["resource"]["resourceType"] == "Patient")
    patient_paths = [p for p in FULL_PATHS if p[:2] == ("entry", patient_index)]
    for path in patient_paths:
        for wrong in WRONG_TYPES:
            message = read_if_accepted(mutated(FULL, path, wrong))
            if message is None:
                continue
            for warning in message.warnings:
                assert not any(s in warning for s in secrets), warning


def test_internal_errors_are_contained(monkeypatch):
    from harbour.fhir import read

    monkeypatch.setattr(read._MessageReader, "read", lambda self: 1 / 0)
    message = read_message(copy.deepcopy(REAL))
    assert message.referral_ref == "71db1a5c-89ce-41d5-bc71-8466f6c2f182"
    assert message.warnings == ("the bundle could not be read completely (internal reader error)",)
