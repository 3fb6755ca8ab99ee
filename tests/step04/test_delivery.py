"""Step 4, delivery: typed gateway errors, retries with backoff, crashes, the idempotency marker."""

import json
import re
import time

import pytest

from workshop.gateway import PERMANENT_CODES, TRANSIENT_CODES

from .conftest import MOBILE

TASK = "mycelery.sms.tasks.send_sms"


def wait_until_settled(broker, timeout=30):
    """Until no SMS message is queued or delivered-but-unacknowledged: nothing more can be delivered.

    acks_late: a message leaves the Redis transport's "unacked" hash only when its task has finished
    (succeeded, failed for good, or retried as a new message, which then shows up in the queue).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if broker.llen("sms") == 0 and broker.hlen("unacked") == 0:
            return
        time.sleep(0.1)
    raise AssertionError(
        f"messages still pending after {timeout} s: {broker.llen('sms')} queued, "
        f"{broker.hlen('unacked')} unacknowledged"
    )


def task_ids(worker):
    return re.findall(rf"{re.escape(TASK)}\[([0-9a-f-]+)\] succeeded", worker.log)


def test_send_answers_at_once_and_the_worker_delivers_a_six_digit_code(send, gateway, sms_redis, sms_worker):
    sms_worker()

    response = send()

    assert response.status_code == 200
    assert response.json() == {"message": "短信已经发送,请留意您的手机", "expires_in": 300, "retry_after": 60}
    stored = sms_redis.get(f"sms_{MOBILE}")
    assert re.fullmatch(r"\d{6}", stored)
    [message] = gateway.wait_for_messages(MOBILE, count=1, timeout=30)
    assert [str(d) for d in message["datas"]] == [stored, "5"]


def test_the_sms_task_goes_to_the_sms_queue(send, broker):
    """SMS tasks have a queue of their own, sms (CELERY_TASK_ROUTES), that other work cannot hold up."""
    assert send().status_code == 200

    assert broker.llen("sms") == 1, "send_sms should be routed to the sms queue (CELERY_TASK_ROUTES)"
    assert broker.llen("celery") == 0


def test_transient_failures_are_retried_and_the_sms_arrives_exactly_once(send, gateway, sms_worker):
    transient = sorted(TRANSIENT_CODES)[0]
    gateway.configure(fail_next=2, fail_mode=transient)
    worker = sms_worker()

    assert send().status_code == 200

    gateway.wait_for_messages(MOBILE, count=1, timeout=60)
    worker.wait_for("sent (")
    assert gateway.control()["received"] == 3, "two failed attempts, then the one that got through"
    assert worker.log.count(" retry: Retry in ") == 2
    assert len(gateway.inbox(to=MOBILE)) == 1


@pytest.mark.parametrize(
    ("fail_mode", "logged"),
    [("disconnect", "cannot reach Ronglian"), ("http503", "Ronglian answered HTTP 503")],
    ids=["network error", "HTTP 503"],
)
def test_a_network_error_or_a_5xx_is_transient_too(send, gateway, sms_worker, fail_mode, logged):
    gateway.configure(fail_next=1, fail_mode=fail_mode)
    worker = sms_worker()

    assert send().status_code == 200

    gateway.wait_for_messages(MOBILE, count=1, timeout=60)
    worker.wait_for("sent (")
    assert logged in worker.log
    assert worker.log.count(" retry: Retry in ") == 1


def test_the_client_sorts_the_providers_answers(gateway):
    """The step's Ronglian client against the real gateway: which answers are worth trying again."""
    from django.conf import settings

    from mycelery.sms.ronglian import PermanentSMSError, RonglianClient, TransientSMSError

    def client(base_url=gateway.base_url, token=settings.RONGLIAN_ACC_TOKEN):
        return RonglianClient(
            settings.RONGLIAN_ACC_ID, token, settings.RONGLIAN_APP_ID, base_url, timeout=(1, 2)
        )

    assert client().send_template_sms(MOBILE, ["123456", 5], 1)  # the smsMessageSid
    with pytest.raises(PermanentSMSError, match="HTTP 404"):  # a wrong base URL: retrying cannot help
        client(base_url=f"{gateway.base_url}/wrong/prefix").send_template_sms(MOBILE, ["123456", 5], 1)
    with pytest.raises(PermanentSMSError) as refused:  # wrong credentials
        client(token="not-the-token").send_template_sms(MOBILE, ["123456", 5], 1)
    assert refused.value.code == "111109"
    gateway.configure(fail_next=1, fail_mode="http500")
    with pytest.raises(TransientSMSError, match="HTTP 500"):
        client().send_template_sms(MOBILE, ["123456", 5], 1)
    gateway.configure(hold=True)  # the provider keeps the request longer than the 2 s read timeout
    with pytest.raises(TransientSMSError, match="did not answer in time"):
        client().send_template_sms(MOBILE, ["123456", 5], 1)
    gateway.release()  # let the abandoned request finish here, not in the next test
    gateway.wait_for_messages(MOBILE, count=2, timeout=10)
    with pytest.raises(TransientSMSError, match="cannot reach"):
        client(base_url="http://127.0.0.1:9").send_template_sms(MOBILE, ["123456", 5], 1)


def test_a_permanent_error_is_logged_once_without_the_code_and_not_retried(
    send, gateway, sms_redis, broker, sms_worker
):
    permanent = sorted(PERMANENT_CODES)[0]
    gateway.configure(fail_next=1, fail_mode=permanent)
    worker = sms_worker()

    assert send().status_code == 200

    worker.wait_for("refused, not retrying")
    worker.wait_for("] succeeded in")  # the task ended: it returned instead of raising a retry
    wait_until_settled(broker)  # a retry would be a new message in the queue
    code = sms_redis.get(f"sms_{MOBILE}")
    assert worker.log.count("refused, not retrying") == 1
    assert permanent in worker.log
    assert code not in worker.log
    assert MOBILE not in worker.log and "138****8000" in worker.log
    assert " retry: " not in worker.log
    assert gateway.control()["received"] == 1
    assert gateway.inbox(to=MOBILE) == []


def test_a_worker_killed_mid_send_is_redelivered_at_least_once_at_most_twice(
    send, gateway, broker, sms_worker
):
    """acks_late + reject_on_worker_lost: the message outlives the worker that held it.

    Here the provider had already accepted the SMS when the worker died, so nobody could know it
    went out: it is delivered twice. That is the price of at-least-once; losing it is worse.
    """
    worker = sms_worker()
    gateway.configure(hold=True)
    assert send().status_code == 200
    gateway.wait_until_held(1, timeout=30)

    worker.kill()  # SIGKILL: no warm shutdown, no acknowledgement
    gateway.release()  # the provider delivers what it had accepted
    gateway.wait_for_messages(MOBILE, count=1, timeout=10)

    # acks_late: the dead worker never acknowledged, so the Redis transport still lists the message
    # as delivered-but-unacknowledged, with the time it was delivered.
    [(_, delivered_at)] = broker.zrange("unacked_index", 0, -1, withscores=True)
    # kombu puts such a message back when a worker starts (and on a slow periodic sweep) if it is
    # older than the visibility timeout: let it become older than the 1 s the new worker uses.
    while time.time() - delivered_at < 1.5:
        time.sleep(0.1)
    second = sms_worker(env={"CELERY_BROKER_VISIBILITY_TIMEOUT": "1"})
    try:
        gateway.wait_for_messages(MOBILE, count=2, timeout=30)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nThe new worker's output:\n{second.log}") from None
    second.wait_for("sent (")
    wait_until_settled(broker)  # acknowledged: no third delivery can come

    messages = gateway.inbox(to=MOBILE)
    assert len(messages) == 2, "at least once (not lost), and here exactly twice (never a third time)"
    assert messages[0]["datas"] == messages[1]["datas"], "the same message, delivered again"


def test_a_message_already_sent_is_not_sent_again(send, gateway, sms_redis, broker, sms_worker):
    """The idempotency marker: the same message delivered again after its SMS went out is skipped.

    This is what a redelivery looks like to the worker: the same task id and arguments, once more.
    """
    from mycelery.sms.tasks import send_sms

    worker = sms_worker()
    assert send().status_code == 200
    gateway.wait_for_messages(MOBILE, count=1, timeout=30)
    worker.wait_for("] succeeded in")
    [task_id] = task_ids(worker)
    code = sms_redis.get(f"sms_{MOBILE}")

    send_sms.apply_async(kwargs={"mobile": MOBILE, "sms_code": code}, task_id=task_id)

    worker.wait_for("already sent by an earlier delivery")
    wait_until_settled(broker)
    assert gateway.control()["received"] == 1
    assert len(gateway.inbox(to=MOBILE)) == 1


def test_a_code_that_is_no_longer_current_is_not_sent(send, gateway, sms_redis, sms_worker):
    """A message that waited (no worker, or a redelivery) must not deliver a replaced or expired code."""
    assert send().status_code == 200
    sms_redis.delete(f"sms_{MOBILE}")  # as if it had expired, or been used

    worker = sms_worker()

    worker.wait_for("is no longer current; not sending it")
    assert gateway.control()["received"] == 0


def test_monitoring_sees_a_masked_number_and_no_code(send, broker, sms_redis):
    """Flower and the worker's events show the task's kwargsrepr, not its arguments."""
    assert send().status_code == 200
    code = sms_redis.get(f"sms_{MOBILE}")

    [raw] = broker.lrange("sms", 0, -1)
    headers = json.loads(raw)["headers"]

    assert "138****8000" in headers["kwargsrepr"]
    assert code not in headers["kwargsrepr"] and MOBILE not in headers["kwargsrepr"]
