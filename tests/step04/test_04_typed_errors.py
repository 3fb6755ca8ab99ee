"""Bare except: typed errors and retries.

Part 4 of step 4: the page's section step4.md#typed-errors."""

import pytest

from tests.harness import MOBILE, wait_until_settled
from workshop.gateway import PERMANENT_CODES, TRANSIENT_CODES, GatewayServer
from workshop.processes import free_port, wait_until

# Stands on part 0 and part 2: without them, these tests fail at once (tests/step04/conftest.py).
NEEDS = [0, 2]


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
def test_an_ambiguous_send_is_not_retried(send, gateway, broker, sms_worker, fault, env, delivered):
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


def test_a_permanent_error_is_logged_once_and_not_retried(send, gateway, broker, sms_worker):
    """Wrong credentials, a bad number, a provider's cap: logged once, with the provider's code, not retried."""
    permanent = sorted(PERMANENT_CODES)[0]
    gateway.configure(fail_next=1, fail_mode=permanent)
    worker = sms_worker()

    assert send().status_code == 200

    worker.wait_for("refused, not retrying")
    worker.wait_for("] succeeded in")  # the task ended: it returned instead of raising a retry
    wait_until_settled(broker)  # a retry would be a new message in the queue
    assert worker.log.count("refused, not retrying") == 1
    assert permanent in worker.log
    assert " retry: " not in worker.log
    assert gateway.control()["received"] == 1
    assert gateway.inbox(to=MOBILE) == []


def test_a_retry_countdown_waits_in_the_worker_not_in_the_broker(send, gateway, broker, sms_worker, the_ref):
    """A retry's countdown waits in the worker's timer on both brokers: the queue is empty meanwhile.

    A retry is a new message with a countdown (an ETA): the worker takes it at once and holds it,
    unacknowledged, until it is due, and `inspect scheduled` lists it. (RabbitMQ's quorum queues would
    hold it in the broker instead: rabbitmq.md#quorum-queues.)"""
    from mycelery.main import app
    from mycelery.sms.tasks import send_sms

    worker = sms_worker()
    assert send().status_code == 200
    gateway.wait_for_messages(MOBILE, count=1, timeout=30)
    worker.wait_for("] succeeded in")
    # The same task the autoretry sends, with a countdown long enough to look at: it finds the claim taken.
    send_sms.apply_async(args=[the_ref()], countdown=5)

    wait_until(lambda: worker.log.count("] received") == 2, "the countdown message received", timeout=10)
    assert broker.ready("sms") == 0, "the message with a countdown has left the queue for the worker"
    scheduled = app.control.inspect(timeout=2.0).scheduled() or {}
    assert any(entries for entries in scheduled.values()), f"inspect scheduled: {scheduled}"
    assert "already sent; not calling the provider again" not in worker.log, "it ran before its countdown"

    worker.wait_for("already sent; not calling the provider again", timeout=15)
    wait_until_settled(broker)
    assert gateway.control()["received"] == 1
