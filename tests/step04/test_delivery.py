"""Step 4, delivery: typed gateway errors, retries with backoff, crashes, and the send claim that keeps
every request to at most one call to the provider."""

import base64
import json
import re
import time

import pytest
import redis

from tests.harness import MOBILE, wait_until_settled
from workshop.gateway import PERMANENT_CODES, TRANSIENT_CODES, GatewayServer
from workshop.processes import free_port

TASK = "mycelery.sms.tasks.send_sms"


def the_ref(sms_redis):
    """The one pending send's reference (the view stores sms_send_<ref>: the number)."""
    [key] = sms_redis.keys("sms_send_*")
    return key.removeprefix("sms_send_")


def test_send_answers_at_once_and_the_worker_delivers_a_six_digit_code(send, gateway, sms_redis, sms_worker):
    """200 at once; a real worker then hands the provider the 6-digit code that Redis holds."""
    sms_worker()

    response = send()

    assert response.status_code == 200
    assert response.json() == {
        "message": "短信已经发送，请留意您的手机",
        "expires_in": 300,
        "retry_after": 60,
    }
    stored = sms_redis.get(f"sms_{MOBILE}")
    assert re.fullmatch(r"\d{6}", stored)
    [message] = gateway.wait_for_messages(MOBILE, count=1, timeout=30)
    assert [str(d) for d in message["datas"]] == [stored, "5"]


def test_the_sms_task_goes_to_the_sms_queue(send, broker):
    """SMS tasks have a queue of their own, sms (CELERY_TASK_ROUTES), that other work cannot hold up."""
    assert send().status_code == 200

    assert broker.llen("sms") == 1, "send_sms should be routed to the sms queue (CELERY_TASK_ROUTES)"
    assert broker.llen("celery") == 0


def test_the_message_carries_a_reference_not_the_number_or_the_code(send, broker, sms_redis):
    """What the broker stores (and inspect, events and Flower show) is a random reference: the number and
    the code stay in Redis, where the worker reads them when it sends."""
    assert send().status_code == 200
    code = sms_redis.get(f"sms_{MOBILE}")

    [raw] = broker.lrange("sms", 0, -1)
    message = json.loads(raw)
    args, kwargs, _ = json.loads(base64.b64decode(message["body"]))

    assert args == [the_ref(sms_redis)] and kwargs == {}
    everything = raw.decode() + base64.b64decode(message["body"]).decode()
    assert code not in everything and MOBILE not in everything and MOBILE[-4:] not in everything


@pytest.mark.parametrize(
    ("fail_mode", "logged"),
    [
        (sorted(TRANSIENT_CODES)[0], "Ronglian refused the SMS: 111120"),
        ("http503", "Ronglian answered HTTP 503"),
    ],
    ids=["provider busy", "HTTP 503"],
)
def test_transient_failures_are_retried_and_the_sms_arrives_exactly_once(
    send, gateway, sms_worker, fail_mode, logged
):
    """The provider says "busy" (or answers 503) twice: retried with backoff, then delivered, once."""
    gateway.configure(fail_next=2, fail_mode=fail_mode)
    worker = sms_worker()

    assert send().status_code == 200

    gateway.wait_for_messages(MOBILE, count=1, timeout=60)
    worker.wait_for("sent (")
    assert logged in worker.log
    assert gateway.control()["received"] == 3, "two failed attempts, then the one that got through"
    assert worker.log.count(" retry: Retry in ") == 2
    assert len(gateway.inbox(to=MOBILE)) == 1


def test_a_provider_that_cannot_be_reached_is_retried_until_it_can(send, sms_worker):
    """Connection refused: the request never left, so retrying cannot send twice. The provider comes
    back during the backoff and the SMS arrives once."""
    port = free_port()
    worker = sms_worker(env={"RONGLIAN_BASE_URL": f"http://127.0.0.1:{port}"})

    assert send().status_code == 200
    worker.wait_for(" retry: Retry in ")
    assert "cannot reach Ronglian" in worker.log

    with GatewayServer(port=port, latency=0) as provider:
        worker.wait_for("sent (", timeout=60)
        assert [m["to"] for m in provider.state.messages] == [MOBILE]


@pytest.mark.parametrize(
    ("fault", "env", "delivered"),
    [
        ({"fail_next": 1, "fail_mode": "answer_lost"}, {}, 1),
        ({"latency": 2.0}, {"RONGLIAN_READ_TIMEOUT": "0.5"}, 1),
        ({"fail_next": 1, "fail_mode": "disconnect"}, {}, 0),
    ],
    ids=["sent, answer lost", "slower than the read timeout", "connection dropped"],
)
def test_an_ambiguous_send_is_not_retried(
    send, gateway, sms_redis, broker, sms_worker, fault, env, delivered
):
    """The request reached the provider and no answer came back: it may be on the phone already, so it
    is never sent again (at most one SMS); the user may ask again after the interval."""
    gateway.configure(**fault)
    worker = sms_worker(env=env)

    assert send().status_code == 200

    worker.wait_for("may have been sent", timeout=30)
    worker.wait_for("] succeeded in")
    wait_until_settled(broker)
    if delivered:  # the slow provider finishes what it was sent
        gateway.wait_for_messages(MOBILE, count=1, timeout=10)
    assert gateway.control()["received"] == 1, "one call to the provider, no retry"
    assert len(gateway.inbox(to=MOBILE)) == delivered
    assert " retry: " not in worker.log
    assert sms_redis.get(f"sms_claim_{the_ref(sms_redis)}") == "unknown"


def test_the_client_sorts_the_providers_answers(gateway):
    """The step's Ronglian client against the real gateway: which answers are worth trying again."""
    from django.conf import settings

    from mycelery.sms.ronglian import AmbiguousSMSError, PermanentSMSError, RonglianClient, TransientSMSError

    def client(base_url=gateway.base_url, token=settings.RONGLIAN_ACC_TOKEN):
        return RonglianClient(
            settings.RONGLIAN_ACC_ID, token, settings.RONGLIAN_APP_ID, base_url, timeout=(1, 2)
        )

    def send():
        return client().send_template_sms(MOBILE, ["123456", 5], 1)

    assert send()  # the smsMessageSid
    with pytest.raises(PermanentSMSError, match="HTTP 404"):  # a wrong base URL: retrying cannot help
        client(base_url=f"{gateway.base_url}/wrong/prefix").send_template_sms(MOBILE, ["123456", 5], 1)
    with pytest.raises(PermanentSMSError) as refused:  # wrong credentials
        client(token="not-the-token").send_template_sms(MOBILE, ["123456", 5], 1)
    assert refused.value.code == "111109"
    gateway.configure(fail_next=1, fail_mode="http500")
    with pytest.raises(TransientSMSError, match="HTTP 500"):
        send()
    with pytest.raises(TransientSMSError, match="cannot reach"):  # nothing listens: it never left
        client(base_url=f"http://127.0.0.1:{free_port()}").send_template_sms(MOBILE, ["123456", 5], 1)
    for mode in ("disconnect", "answer_lost"):
        gateway.configure(fail_next=1, fail_mode=mode)
        with pytest.raises(AmbiguousSMSError, match="no answer"):
            send()
    gateway.configure(hold=True)  # the provider keeps the request longer than the 2 s read timeout
    with pytest.raises(AmbiguousSMSError, match="ReadTimeout"):
        send()
    gateway.release()  # let the abandoned request finish here, not in the next test
    assert len(gateway.wait_for_messages(MOBILE, count=3, timeout=10)) == 3, (
        "the first, the lost answer, the slow"
    )


def test_a_permanent_error_is_logged_once_without_the_code_and_not_retried(
    send, gateway, sms_redis, broker, sms_worker
):
    """Wrong credentials, a bad number, a provider's cap: logged once (masked number, no code), not retried."""
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

    # acks_late: the dead worker never acknowledged, so the Redis transport still lists the message
    # as delivered-but-unacknowledged, with the time it was delivered.
    [(_, delivered_at)] = broker.zrange("unacked_index", 0, -1, withscores=True)
    # kombu puts such a message back when a worker starts (and on a slow periodic sweep) if it is
    # older than the visibility timeout: let it become older than the 1 s the new worker uses.
    while time.time() - delivered_at < 1.5:
        time.sleep(0.1)
    second = sms_worker(env={"CELERY_BROKER_VISIBILITY_TIMEOUT": "1"})
    second.wait_for("already sending; not calling the provider again", timeout=30)
    wait_until_settled(broker)  # acknowledged: no third delivery can come

    assert gateway.control()["received"] == 1
    assert len(gateway.inbox(to=MOBILE)) == 1


def test_a_message_already_sent_is_not_sent_again(send, gateway, sms_redis, broker, sms_worker):
    """The claim: the same message delivered again after its SMS went out (a redelivery, a duplicate)
    stops before the provider."""
    from mycelery.sms.tasks import send_sms

    worker = sms_worker()
    assert send().status_code == 200
    gateway.wait_for_messages(MOBILE, count=1, timeout=30)
    worker.wait_for("] succeeded in")

    send_sms.delay(the_ref(sms_redis))

    worker.wait_for("already sent; not calling the provider again")
    wait_until_settled(broker)
    assert gateway.control()["received"] == 1
    assert len(gateway.inbox(to=MOBILE)) == 1


def test_a_claim_whose_answer_was_lost_is_taken_again_by_the_retry(send, gateway, sms_redis, monkeypatch):
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

    tasks.send_sms.apply(args=[the_ref(sms_redis)])  # eagerly: the automatic retry runs at once, here

    assert AnswerLost.lost
    assert gateway.wait_for_messages(MOBILE, count=1, timeout=10)
    assert gateway.control()["received"] == 1


def test_two_deliveries_at_the_same_moment_call_the_provider_once(
    send, gateway, sms_redis, broker, sms_worker
):
    """Two copies of one message running at once (two workers): only the one that took the claim calls
    the provider, even though neither has finished."""
    from mycelery.sms.tasks import send_sms

    gateway.configure(hold=True)
    assert send().status_code == 200
    send_sms.delay(the_ref(sms_redis))  # a duplicate of the same request's message
    first, second = sms_worker("-c", "1"), sms_worker("-c", "1")
    gateway.wait_until_held(1, timeout=30)

    deadline = time.monotonic() + 30
    while not any("already sending" in worker.log for worker in (first, second)):
        assert time.monotonic() < deadline, f"no delivery found the claim taken:\n{first.log}\n{second.log}"
        time.sleep(0.05)
    gateway.release()
    wait_until_settled(broker)

    assert gateway.control()["received"] == 1
    assert len(gateway.inbox(to=MOBILE)) == 1


def test_a_code_that_is_no_longer_current_is_not_sent(send, gateway, sms_redis, sms_worker):
    """A message that waited (no worker, or a redelivery) must not deliver a used or expired code."""
    assert send().status_code == 200
    sms_redis.delete(f"sms_{MOBILE}")  # as if it had expired, or been used

    worker = sms_worker()

    worker.wait_for("its code has expired or was used; not sending it")
    assert gateway.control()["received"] == 0
