"""The test hosts every module here stands on: one network a module, torn down after it."""

import pytest

from tests.hosts.network import Network, require


@pytest.fixture(scope="module")
def network():
    require()
    with Network() as net:
        yield net
