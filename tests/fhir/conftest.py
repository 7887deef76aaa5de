"""Shared fixtures for the pure-Python FHIR layer (no Django needed)."""

import copy
import json
from pathlib import Path

import pytest

BUNDLES = Path(__file__).resolve().parents[1] / "fixtures" / "bundles"
_CACHE: dict[str, dict] = {}


def _load(name: str) -> dict:
    if name not in _CACHE:
        _CACHE[name] = json.loads((BUNDLES / name).read_text())
    return copy.deepcopy(_CACHE[name])


@pytest.fixture
def load_bundle():
    """``load_bundle(name)`` -> a fresh, mutable copy of tests/fixtures/bundles/<name>."""
    return _load


@pytest.fixture
def bundle():
    """A fresh copy of the real Ocean payload."""
    return _load("add-service-request.back-pain.json")


@pytest.fixture
def full_bundle():
    return _load("notify-update-service-request.full.json")
