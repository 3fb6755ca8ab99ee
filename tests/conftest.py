"""Fixtures shared by every step's tests (see tests/harness.py for how the services start)."""

from __future__ import annotations

import pytest
import redis

from tests.harness import SERVICES, STEP_PATH, TEST_GATEWAY_LATENCY, Worker, wait_while_working
from workshop.gateway import GatewayClient


def pytest_unconfigure(config):
    services = config.stash.get(SERVICES, None)
    if services:
        services.stop()


@pytest.fixture(scope="session")
def services(pytestconfig):
    return pytestconfig.stash[SERVICES]


@pytest.fixture(scope="session")
def step_path(pytestconfig):
    """The step folder under test (the reference step, or STEP_DIR)."""
    return pytestconfig.stash[STEP_PATH]


@pytest.fixture(scope="session")
def redis_url(services):
    return services.redis_url


@pytest.fixture
def gateway(services):
    """The real SMS gateway, its inbox emptied and its faults cleared before each test."""
    client = GatewayClient(services.gateway_url, wait=wait_while_working)
    client.configure(latency=TEST_GATEWAY_LATENCY, fail_rate=0.0, fail_next=0, hold=False)
    client.release()
    client.reset()
    yield client
    client.release()


@pytest.fixture(autouse=True)
def _clean_redis(pytestconfig):
    """Every step test starts from an empty Redis (codes, intervals, queued messages)."""
    services = pytestconfig.stash.get(SERVICES, None)
    if services is None:  # suites that start no services (the gateway's, the docs')
        return
    for url in {services.redis_url, services.broker_redis_url}:
        client = redis.Redis.from_url(url)
        client.flushall()
        client.close()


@pytest.fixture
def broker(services):
    """The broker's Redis db (15): Celery's default queue is the list named "celery"."""
    client = redis.Redis.from_url(f"{services.broker_redis_url}/15")
    yield client
    client.close()


@pytest.fixture
def sms_redis(services):
    """A client on the Redis db that holds the ``sms_code`` cache alias."""
    client = redis.Redis.from_url(f"{services.redis_url}/1", decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def start_worker(step_path):
    """Start real ``celery worker`` processes in the step folder; all are stopped after the test."""
    workers: list[Worker] = []

    def start(app: str = "mycelery.main", *extra: str, **kwargs) -> Worker:
        worker = Worker(step_path, app, *extra, **kwargs)
        workers.append(worker)
        return worker.start()

    yield start
    # The test is over and Redis is emptied before the next: a warm shutdown (about 3 s each) would
    # only slow the suite down. Tests that are about how a worker stops stop it themselves.
    for worker in workers:
        worker.kill()
