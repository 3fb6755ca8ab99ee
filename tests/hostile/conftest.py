"""The hostile matrix runs step 4 (or STEP_DIR's copy of it) as production does, in its own pytest
process: its own Redis servers, which its cells kill."""

import pytest

from tests.harness import configure_step

from .stack import Stack


def pytest_configure(config):
    configure_step(config, "step04_final", separate_broker=True, appendonly=True)


@pytest.fixture(scope="session")
def stack(services, step_path):
    running = Stack(services, step_path).start()
    yield running
    running.stop()
