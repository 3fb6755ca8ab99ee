"""Fixtures shared by every step's tests (see tests/harness.py for how the services start)."""

from __future__ import annotations

import pytest
import redis

from tests.harness import SERVICES, STEP_PATH, TEST_GATEWAY_LATENCY, Worker, missing, wait_while_working
from workshop.gateway import GatewayClient
from workshop.rabbitmq import INSTALL_HINT, shown


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


def pytest_report_header(config):
    services = config.stash.get(SERVICES, None)
    if services:
        return (
            f"broker: {services.kind} ({shown(services.broker_url)}), results and cache: {services.redis_url}"
        )


@pytest.fixture(autouse=True)
def _clean_services(pytestconfig):
    """Every step test starts from an empty Redis (codes, intervals) and empty queues."""
    services = pytestconfig.stash.get(SERVICES, None)
    if services is None:  # suites that start no services (the gateway's, the docs')
        return
    if services.missing:
        missing(services.missing, INSTALL_HINT)
    client = redis.Redis.from_url(services.redis_url)
    client.flushall()
    client.close()
    queues = services.queues()
    queues.clear()
    queues.close()


@pytest.fixture
def broker(services):
    """What the broker holds (tests/brokers.py): the same questions for Redis and RabbitMQ."""
    queues = services.queues()
    yield queues
    queues.close()


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
