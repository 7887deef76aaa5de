"""Harbour's settings for bench/fuzz_intake.py: no rate limit (every call comes from 127.0.0.1),
and a 64 KB body cap so the fuzzer meets 413 with small bodies."""
from harbour.settings import *  # noqa: F401,F403

HARBOUR_INTAKE_FAILURE_LIMIT = 10**9
HARBOUR_MAX_BUNDLE_BYTES = 64 * 1024
