"""The hostile matrix runs step 4 (or STEP_DIR's copy of it) as production does, in its own pytest
process: its own Redis servers, which its cells kill."""

import pytest

from tests.harness import configure_step, missing
from workshop.processes import can_use_many_addresses

from .stack import Stack


def pytest_configure(config):
    configure_step(config, "step04_final", separate_broker=True, appendonly=True)


@pytest.fixture(scope="session")
def stack(services, step_path):
    if not can_use_many_addresses():
        # Each client of the matrix is its own 127.x.y.z address, as different users would be.
        missing("the whole of 127.0.0.0/8 on loopback (Linux has it)", "run the matrix on Linux or in WSL")
    running = Stack(services, step_path).start()
    yield running
    running.stop()
