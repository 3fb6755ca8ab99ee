"""The interval check is a race.

Part 1 of step 4: the page's section step4.md#interval-race."""

from tests.harness import MOBILE, concurrently, error_text, says, wait_until_settled

# Stands on part 0: without it, these tests fail at once (tests/step04/conftest.py).
NEEDS = [0]


def test_the_interval_refuses_with_429_and_retry_after(send, sms_redis):
    """A second code for one number within SMS_INTERVAL_TIME: 429, its own message, and Retry-After."""
    assert send().status_code == 200

    again = send()

    assert again.status_code == 429
    assert says(again, "60秒内已经发送过短信"), error_text(again)
    assert 0 < int(again["Retry-After"]) <= 60


def test_fifty_concurrent_requests_for_one_number_send_exactly_one_sms(
    gateway, broker, sms_worker, send_from
):
    """Fifty requests for one number at once: the atomic interval lets exactly one through, one SMS."""
    sms_worker()

    # Distinct client addresses: this is about the interval lock, not the per-IP throttle.
    statuses = concurrently(50, lambda i: send_from(f"10.0.0.{i + 1}", MOBILE).status_code)

    assert sorted(statuses) == [200] + [429] * 49
    gateway.wait_for_messages(MOBILE, count=1, timeout=30)
    wait_until_settled(broker, gateway)  # nothing queued or in flight: no second SMS can come
    assert len(gateway.inbox(to=MOBILE)) == 1
