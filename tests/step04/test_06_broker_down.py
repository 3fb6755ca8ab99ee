"""Broker down: from 500 to 503.

Part 6 of step 4: the page's section step4.md#broker-down."""

import redis

from tests.harness import MOBILE, NO_HANG, error_text, says, timed

# Stands on part 0 and part 5: without them, these tests fail at once (tests/step04/conftest.py).
NEEDS = [0, 5]


def test_broker_down_gives_503_and_gives_back_the_interval_and_the_code(
    send, services, stopped, sms_redis, broker
):
    """The broker refuses the message: 503, and the interval, the code and the caps' counts are given back."""
    stopped(services.broker)

    response, elapsed = timed(send)

    assert response.status_code == 503
    assert says(response, "短信服务暂时不可用"), error_text(response)
    assert elapsed < NO_HANG
    assert sms_redis.get(f"interval_{MOBILE}") is None
    assert sms_redis.get(f"sms_{MOBILE}") is None
    assert sms_redis.keys("sms_send_*") == []
    assert {sms_redis.get(key) for key in sms_redis.keys("sms_*")} <= {"0"}, "the caps' counts given back"

    services.broker.start()
    assert send().status_code == 200, "once the broker is back, the same number gets a code"
    assert broker.ready("sms") + broker.ready("celery") == 1, "the message is queued"


def test_redis_down_gives_503_json_fast_and_no_interval(send, services, stopped, sms_redis):
    """Redis stopped: 503 JSON at once (short socket timeouts), and a code again once it is back."""
    stopped(services.redis)

    response, elapsed = timed(send)

    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert says(response, "短信服务暂时不可用"), error_text(response)
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
    assert says(response, "短信服务暂时不可用"), error_text(response)
    assert elapsed < NO_HANG
    assert send().status_code == 200, "once Redis answers again, so does the view"
