"""Something to watch: Flower and a health check.

Part 10 of step 4: the page's section step4.md#monitoring."""

import sys
import threading

import pytest

from tests.harness import MOBILE, NO_HANG, run, timed
from workshop.processes import wait_until

# Stands on part 0 and part 5: without them, these tests fail at once (tests/step04/conftest.py).
NEEDS = [0, 5]


def celery(step_path, *args):
    # `celery` is the console script of the same package as `python -m celery`.
    return run([sys.executable, "-m", "celery", "-A", "mycelery.main", *args], cwd=step_path, timeout=60)


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


@pytest.mark.parametrize(
    ("command", "shows"),
    [("registered", "mycelery.sms.tasks.send_sms"), ("active_queues", "'name': 'sms'")],
    ids=["registered", "active_queues"],
)
def test_inspect_shows_the_sms_task_and_its_queue(step_path, sms_worker, command, shows):
    """`celery -A mycelery.main inspect registered` names the SMS task; `inspect active_queues` the sms queue."""
    sms_worker()

    result = celery(step_path, "inspect", command)

    assert result.returncode == 0, result.stderr
    assert shows in result.stdout


def test_purge_empties_the_queues(step_path, send, broker):
    """`celery -A mycelery.main purge -f` removes a queued message."""
    assert send().status_code == 200
    assert broker.ready("sms") == 1

    result = celery(step_path, "purge", "-f")

    assert result.returncode == 0, result.stderr
    assert "Purged 1 message" in result.stdout
    assert broker.ready("sms") == 0


def test_the_windows_pool_drains_a_queue_in_time(send, gateway, sms_worker):
    """The Windows command (troubleshooting.md#windows-pool): `--pool=threads` drains 100 queued quick tasks
    and a real SMS behind them without a pause, on either broker.

    Not a speed figure: a bound that a pool stalling 10 s at a time breaks, as `--pool=solo` can on
    RabbitMQ with late acknowledgement (rabbitmq.md#solo). Solo's stall is a race that this queue, through
    step 4's task, did not trigger in three runs: this guards the recommended pool, not solo."""
    from mycelery.sms.tasks import send_sms

    for i in range(100):  # messages whose send has expired: the task looks in Redis and returns
        send_sms.delay(f"expired-{i}")
    assert send().status_code == 200  # and one real SMS, behind them
    worker = sms_worker("--pool=threads")

    gateway.wait_for_messages(MOBILE, count=1, timeout=20)
    assert worker.log.count("has expired or was used; not sending it") == 100
    assert "(thread)" in worker.log, "the worker should say: concurrency: N (thread)"
