"""Step 4, faults: Redis or the broker down gives a fast 503 and leaves nothing behind."""

import threading
import time

import pytest
import redis

from tests.harness import MOBILE, concurrently
from workshop.processes import wait_until

# Not a speed figure: a bound that only a hang breaks (the view gives up after about 0.5 s).
NO_HANG = 2.0


@pytest.fixture
def stopped(services):
    """Stop one of the Redis servers for a test; it is started again (empty) afterwards."""
    to_restart = []

    def stop(server):
        server.stop()
        to_restart.append(server)

    yield stop
    for server in to_restart:
        if not server.running:  # the test may have started it again itself
            server.start()


def timed(call):
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def test_redis_down_gives_503_json_fast_and_no_interval(send, services, stopped, sms_redis):
    """Redis stopped: 503 JSON at once (short socket timeouts), and a code again once it is back."""
    stopped(services.redis)

    response, elapsed = timed(send)

    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert "短信服务暂时不可用" in response.json()["error"]
    assert elapsed < NO_HANG

    # (The view could write nothing to a stopped Redis; giving the interval back matters when the
    # broker fails after the interval was taken: the next test.)
    services.redis.start()
    assert send().status_code == 200, "once Redis is back, the same number gets a code"


def test_a_redis_that_hangs_gives_503_json_fast_not_a_hang(send, services, sms_redis):
    """A Redis that accepts connections but does not answer (overloaded, a network partition): a fast 503."""
    pauser = redis.Redis.from_url(services.redis_url)
    pauser.execute_command("CLIENT", "PAUSE", 3000, "ALL")
    try:
        response, elapsed = timed(send)
    finally:
        pauser.execute_command("CLIENT", "UNPAUSE")
        pauser.close()

    assert response.status_code == 503
    assert "短信服务暂时不可用" in response.json()["error"]
    assert elapsed < NO_HANG
    assert send().status_code == 200, "once Redis answers again, so does the view"


def test_broker_down_gives_503_and_gives_back_the_interval_and_the_code(
    send, services, stopped, sms_redis, broker
):
    """The broker refuses the message: 503, and the interval, the code and the caps' counts are given back."""
    stopped(services.broker)

    response, elapsed = timed(send)

    assert response.status_code == 503
    assert "短信服务暂时不可用" in response.json()["error"]
    assert elapsed < NO_HANG
    assert sms_redis.get(f"interval_{MOBILE}") is None
    assert sms_redis.get(f"sms_{MOBILE}") is None
    assert sms_redis.keys("sms_send_*") == []
    assert {sms_redis.get(key) for key in sms_redis.keys("sms_*")} <= {"0"}, "the caps' counts given back"

    services.broker.start()
    assert send().status_code == 200, "once the broker is back, the same number gets a code"
    assert broker.llen("sms") == 1


def test_health_reports_redis_broker_and_workers(
    client, services, stopped, start_worker, sms_worker, settings
):
    """/healthz: 503 naming what is wrong (no worker on the sms queue, broker or Redis down), else 200."""
    settings.HEALTH_CHECK_CACHE = 0  # a fresh answer each time here: the cache has its own test
    unhealthy = client.get("/healthz")
    assert unhealthy.status_code == 503
    assert "workers: no worker consumes the sms queue" in unhealthy.json()["problems"]

    # A worker that consumes only the default queue answers, but would never send a code.
    default_queue_only = start_worker("mycelery.main", "-Q", "celery")
    from mycelery.main import app

    wait_until(
        lambda: app.control.inspect(timeout=2.0).active_queues(), "an answer from the worker", timeout=20
    )
    assert client.get("/healthz").status_code == 503
    default_queue_only.stop()

    worker = sms_worker()
    # A worker that has just started may miss the health check's short inspect: ask until it answers.
    wait_until(lambda: client.get("/healthz").status_code == 200, "a healthy /healthz", timeout=20)
    healthy = client.get("/healthz")
    assert healthy.status_code == 200, healthy.json()
    assert healthy.json()["redis"] == healthy.json()["broker"] == "ok"
    assert any(name.startswith("test-") for name in healthy.json()["workers"])
    worker.stop()

    stopped(services.broker)
    broken, elapsed = timed(lambda: client.get("/healthz"))
    assert elapsed < NO_HANG
    assert broken.status_code == 503
    assert broken.json()["broker"].startswith("unreachable")
    assert broken.json()["redis"] == "ok"

    stopped(services.redis)
    both = client.get("/healthz")
    assert both.status_code == 503
    assert both.json()["redis"].startswith("unreachable")


def test_fifty_concurrent_requests_for_one_number_send_exactly_one_sms(gateway, sms_worker, send_from):
    """Fifty requests for one number at once: the atomic interval lets exactly one through, one SMS."""
    worker = sms_worker()

    # Distinct client addresses: this is about the interval lock, not the per-IP throttle.
    statuses = concurrently(50, lambda i: send_from(f"10.0.0.{i + 1}", MOBILE).status_code)

    assert sorted(statuses) == [200] + [429] * 49
    gateway.wait_for_messages(MOBILE, count=1, timeout=30)
    worker.wait_for("sent (")
    assert len(gateway.inbox(to=MOBILE)) == 1


def test_health_answers_while_every_pooled_connection_is_taken(client, sms_worker, settings):
    """/healthz answers in time even when every connection of .delay()'s pool is busy: it takes none.

    kombu's pool waits for a free connection without a timeout; a health check that borrowed from it
    would hang behind a burst of publishes, or deadlock with other health checks."""
    from mycelery.main import app

    settings.HEALTH_CHECK_CACHE = 0
    sms_worker()
    pool = app.amqp.producer_pool
    held = [pool.acquire(block=True) for _ in range(app.conf.broker_pool_limit)]
    try:
        answers = []
        check = threading.Thread(target=lambda: answers.append(client.get("/healthz")), daemon=True)
        check.start()
        check.join(timeout=NO_HANG)
        assert not check.is_alive(), "the health check waited for a pooled connection"
    finally:
        for producer in held:
            producer.release()

    assert answers[0].status_code in (200, 503) and answers[0].json()["broker"] == "ok"
