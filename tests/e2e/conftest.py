"""End-to-end fixtures: real Harbour and sandbox servers (see tests/servers.py)."""
from tests.servers import (  # noqa: F401  (fixtures and the report hook, registered by import)
    harbour_server,
    pytest_runtest_makereport,
    sandbox_server,
    sandbox_time_scale,
)
