"""A crashed worker loses the message; a claim before the call.

Part 5 of step 4: the page's section step4.md#worker-crash."""

import time

import redis

from tests.harness import MOBILE, python, wait_until_settled, wait_while_working
from workshop.processes import wait_until

# Stands on part 0 and part 2: without them, these tests fail at once (tests/step04/conftest.py).
NEEDS = [0, 2]


def test_celery_reads_django_settings_with_the_celery_namespace(services, step_path):
    """Celery's settings come from Django's (CELERY_ prefix): acks_late and the rest take effect, URLs from REDIS_URL."""
    from mycelery.main import app

    # Without CELERY_* in the environment, the broker and the result store come from REDIS_URL, through
    # Django's settings (CELERY_BROKER_URL = f"{REDIS_URL}/15").
    shown = python(
        "from mycelery.main import app; print(app.conf.broker_url, app.conf.result_backend)",
        step_path,
        env={"REDIS_URL": "redis://127.0.0.1:6390"},
        without=["CELERY_"],
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split() == ["redis://127.0.0.1:6390/15", "redis://127.0.0.1:6390/14"]
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True


def test_a_code_that_is_no_longer_current_is_not_sent(send, gateway, sms_redis, sms_worker):
    """A message that waited (no worker, or a redelivery) must not deliver a used or expired code."""
    assert send().status_code == 200
    sms_redis.delete(f"sms_{MOBILE}")  # as if it had expired, or been used

    worker = sms_worker()

    worker.wait_for("its code has expired or was used; not sending it")
    assert gateway.control()["received"] == 0


def test_a_message_already_sent_is_not_sent_again(send, gateway, sms_redis, broker, sms_worker, the_ref):
    """The claim: the same message delivered again after its SMS went out (a redelivery, a duplicate)
    stops before the provider."""
    from mycelery.sms.tasks import send_sms

    worker = sms_worker()
    assert send().status_code == 200
    gateway.wait_for_messages(MOBILE, count=1, timeout=30)
    worker.wait_for("] succeeded in")

    send_sms.delay(the_ref())

    worker.wait_for("already sent; not calling the provider again")
    wait_until_settled(broker)
    assert gateway.control()["received"] == 1
    assert len(gateway.inbox(to=MOBILE)) == 1


def test_a_claim_whose_answer_was_lost_is_taken_again_by_the_retry(
    send, gateway, sms_redis, monkeypatch, the_ref
):
    """Redis took the claim but its answer was lost (a timeout): the retry takes it again, one SMS goes out.

    The provider had not been called (the call comes after the claim), so "already sending" would lose
    the SMS. Run eagerly in this process, where a wrapper loses the answer of the first claim.
    """
    from mycelery.sms import tasks

    assert send().status_code == 200  # no worker: the message waits in the broker
    client = tasks.get_redis_connection("sms_code")

    class AnswerLost:
        lost = False

        def __getattr__(self, name):
            command = getattr(client, name)

            def call(*args, **kwargs):
                result = command(*args, **kwargs)
                claiming = name in ("set", "eval") and any(str(a).startswith("sms_claim_") for a in args)
                if claiming and not AnswerLost.lost:
                    AnswerLost.lost = True
                    raise redis.TimeoutError("Timeout reading from socket")
                return result

            return call

    monkeypatch.setattr(tasks, "get_redis_connection", lambda alias: AnswerLost())

    tasks.send_sms.apply(args=[the_ref()])  # eagerly: the automatic retry runs at once, here

    assert AnswerLost.lost
    assert gateway.wait_for_messages(MOBILE, count=1, timeout=10)
    assert gateway.control()["received"] == 1


def test_two_deliveries_at_the_same_moment_call_the_provider_once(
    send, gateway, sms_redis, broker, sms_worker, the_ref
):
    """Two copies of one message running at once (two workers): only the one that took the claim calls
    the provider, even though neither has finished."""
    from mycelery.sms.tasks import send_sms

    gateway.configure(hold=True)
    assert send().status_code == 200
    send_sms.delay(the_ref())  # a duplicate of the same request's message
    first, second = sms_worker("-c", "1"), sms_worker("-c", "1")
    gateway.wait_until_held(1, timeout=30)

    # Until one delivery finds the claim taken, or both are at the provider at once (no claim).
    wait_while_working(
        lambda: any("already sending" in w.log for w in (first, second)) or gateway.control()["held"] > 1,
        "a delivery that finds the claim taken (already sending)",
    )
    assert gateway.control()["held"] == 1, "both deliveries called the provider: no claim was taken first"
    gateway.release()
    wait_until_settled(broker)

    assert gateway.control()["received"] == 1
    assert len(gateway.inbox(to=MOBILE)) == 1


def test_a_worker_killed_mid_send_does_not_send_twice(send, gateway, broker, sms_worker):
    """A worker killed while the provider holds its SMS: the message comes back, and the claim stops a second call.

    acks_late: the message outlives the worker that held it and is delivered again. Here the provider
    had accepted the SMS when the worker died; the new delivery finds the claim taken ("may have been
    sent") and does not call the provider again: one SMS, not two."""
    worker = sms_worker()
    gateway.configure(hold=True)
    assert send().status_code == 200
    gateway.wait_until_held(1, timeout=30)

    worker.kill()  # SIGKILL: no warm shutdown, no acknowledgement
    gateway.release()  # the provider delivers what it had accepted
    gateway.wait_for_messages(MOBILE, count=1, timeout=10)

    # acks_late: the dead worker never acknowledged, so the broker hands the message out again. When
    # depends on the broker (the page's table, step4.md#worker-crash):
    if broker.kind == "redis":
        # The Redis transport cannot see that a worker died: the message stays listed as unacknowledged,
        # with the time it was delivered, until it is older than the visibility timeout; kombu puts it
        # back when a worker starts (and on a slow periodic sweep). Let it become older than the 1 s the
        # new worker uses.
        [(_, delivered_at)] = broker.client.zrange("unacked_index", 0, -1, withscores=True)
        while time.time() - delivered_at < 1.5:
            time.sleep(0.1)
        env = {"CELERY_BROKER_VISIBILITY_TIMEOUT": "1"}
    else:
        # RabbitMQ knows which connection held the message: it is back in its queue as soon as the dead
        # worker's connection closes, whatever the visibility timeout (RabbitMQ has none).
        wait_until(lambda: broker.ready("sms") == 1, "the message back in the sms queue", timeout=10)
        env = {}
    second = sms_worker(env=env)
    second.wait_for("already sending; not calling the provider again", timeout=30)
    wait_until_settled(broker)  # acknowledged: no third delivery can come

    assert gateway.control()["received"] == 1
    assert len(gateway.inbox(to=MOBILE)) == 1


def test_an_ambiguous_send_leaves_the_claim_taken(send, gateway, sms_redis, the_ref):
    """Sent, answer lost: the claim records "unknown" and stays taken, so no delivery calls again.

    Run eagerly in this process: the worker's part (typed errors) is part 4's test."""
    from mycelery.sms.tasks import send_sms

    gateway.configure(fail_next=1, fail_mode="answer_lost")
    assert send().status_code == 200

    send_sms.apply(args=[the_ref()])
    send_sms.apply(args=[the_ref()])  # a second delivery of the same message

    assert sms_redis.get(f"sms_claim_{the_ref()}") == "unknown"
    assert gateway.control()["received"] == 1
