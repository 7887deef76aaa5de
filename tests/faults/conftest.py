"""Fault tests: real Harbour processes (gunicorn, workers) on loopback, broken on purpose."""
from tests.servers import pytest_runtest_makereport  # noqa: F401  (keeps each phase's report for log printing)
