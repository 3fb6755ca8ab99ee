"""SMS bombing: throttles and caps.

Part 7 of step 4: the page's section step4.md#sms-bombing."""

import ipaddress

import pytest
import redis

from tests.harness import MOBILE, concurrently, error_text, says

# Stands on part 0: without it, these tests fail at once (tests/step04/conftest.py).
NEEDS = [0]


@pytest.fixture
def three_per_minute(monkeypatch):
    from users.throttling import SMSCodeIPThrottle

    # DRF reads the rates once, at import; a class attribute "rate" takes precedence.
    monkeypatch.setattr(SMSCodeIPThrottle, "rate", "3/minute", raising=False)


def test_the_per_ip_throttle_has_its_own_message(send, services, three_per_minute):
    """One client address over its rate: 429 with its own message; another address is not affected."""
    numbers = ["13800138001", "13800138002", "13800138003", "13800138004"]

    answers = [send(n, REMOTE_ADDR="203.0.113.7") for n in numbers]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert says(answers[3], "请求过于频繁"), error_text(answers[3])
    assert int(answers[3]["Retry-After"]) > 0
    assert send("13800138005", REMOTE_ADDR="203.0.113.8").status_code == 200
    # The counters live in Redis (the "default" cache), so every Django process shares them.
    counters = redis.Redis.from_url(f"{services.redis_url}/0")
    assert any(b"throttle_sms_203.0.113.7" in key for key in counters.keys("*throttle_sms_*"))
    counters.close()


def test_a_forged_x_forwarded_for_does_not_reset_the_throttle(send, three_per_minute):
    """With no trusted proxy, X-Forwarded-For is ignored: a new value per request is still one client."""
    for i, number in enumerate(["13800138001", "13800138002", "13800138003"]):
        assert (
            send(number, REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR=f"198.51.100.{i}").status_code == 200
        )

    forged = send("13800138004", REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR="198.51.100.99")

    assert forged.status_code == 429


def test_x_forwarded_for_is_believed_only_from_a_trusted_proxy(send, three_per_minute, settings):
    """TRUSTED_PROXIES: the proxy's own X-Forwarded-For entry names the client; what the client wrote
    before it (the left of the list) is not believed, and nobody else's header is."""
    settings.TRUSTED_PROXIES = [ipaddress.ip_network("10.0.0.1")]

    through_proxy = [
        send(f"1380013800{i}", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=f"forged-{i}, 198.51.100.{i}")
        for i in range(4)
    ]
    direct = [
        send(f"1390013900{i}", REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR=f"198.51.100.{i}")
        for i in range(4)
    ]
    same_client = [
        send(f"1370013700{i}", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=f"forged-{i}, 198.51.100.200")
        for i in range(4)
    ]

    assert [a.status_code for a in through_proxy] == [200] * 4, "four clients behind the proxy"
    assert [a.status_code for a in direct] == [200, 200, 200, 429], "not a proxy of ours: one client"
    assert [a.status_code for a in same_client] == [200, 200, 200, 429], (
        "the left of the list is the client's"
    )


def test_an_ipv6_client_is_counted_by_its_64(send, three_per_minute):
    """One /64 is one client: a host that picks a new address in its /64 per request is still throttled."""
    answers = [send(f"1380013800{i}", REMOTE_ADDR=f"2001:db8:0:7::{i + 1:x}") for i in range(4)]
    other_64 = send("13800138009", REMOTE_ADDR="2001:db8:0:8::1")

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert other_64.status_code == 200


def test_concurrent_requests_from_one_address_cannot_outrun_the_throttle(three_per_minute, send_from):
    """Twenty requests at once, one address, twenty numbers: the counter in Redis lets exactly three by."""
    statuses = concurrently(20, lambda i: send_from("203.0.113.9", f"1{i + 30}00138000").status_code)

    assert sorted(statuses) == [200] * 3 + [429] * 17


def test_the_daily_cap_per_number_has_its_own_message(send, sms_redis, settings):
    """SMS_DAILY_LIMIT codes a day per number; then 429 until midnight, and no interval is left held."""
    settings.SMS_DAILY_LIMIT = 2
    for _ in range(2):
        assert send().status_code == 200
        sms_redis.delete(f"interval_{MOBILE}")  # as if the interval had passed

    capped = send()

    assert capped.status_code == 429
    assert says(capped, "次数已达上限"), error_text(capped)
    assert int(capped["Retry-After"]) > 0
    assert sms_redis.get(f"interval_{MOBILE}") is None


def test_the_prefix_cap_has_its_own_message(settings, sms_redis, send_from):
    """SMS_PREFIX_RATE: numbers that differ only in their last 4 digits share one cap (SMS pumping buys
    ranges of numbers); numbers of another prefix do not."""
    settings.SMS_PREFIX_RATE = "3/hour"

    answers = [send_from(f"198.51.100.{i}", f"1380013{i:04d}") for i in range(4)]
    other_prefix = send_from("198.51.100.9", "13900139000")

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert says(answers[3], "该号段获取验证码过于频繁"), error_text(answers[3])
    assert 3000 < int(answers[3]["Retry-After"]) <= 3600
    assert other_prefix.status_code == 200
    assert sms_redis.get("interval_13800130003") is None, "a refused send holds no interval"


def test_the_global_cap_has_its_own_message(settings, send_from):
    """SMS_GLOBAL_RATE: the whole site's sends, whatever the number and the address."""
    settings.SMS_GLOBAL_RATE = "3/minute"

    answers = [send_from(f"198.51.100.{i}", f"13{i}00138000") for i in range(3, 7)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert says(answers[3], "短信发送繁忙"), error_text(answers[3])
    assert 0 < int(answers[3]["Retry-After"]) <= 60


def test_a_send_refused_by_one_cap_is_counted_in_none(settings, sms_redis, send_from):
    """The caps are checked together and counted together: a send the global cap refuses does not use
    up the number's daily codes or its prefix's."""
    settings.SMS_GLOBAL_RATE = "1/minute"
    assert send_from("198.51.100.1", "13900139000").status_code == 200

    refused = send_from("198.51.100.2", MOBILE)

    assert refused.status_code == 429
    assert sms_redis.get(f"sms_daily_{MOBILE}") is None
    assert sms_redis.get(f"sms_prefix_{MOBILE[:-4]}") is None


def test_concurrent_requests_cannot_outrun_the_prefix_cap(settings, send_from):
    """Twenty numbers of one prefix at once, each from its own address: exactly the cap gets through."""
    settings.SMS_PREFIX_RATE = "5/hour"

    statuses = concurrently(20, lambda i: send_from(f"198.51.100.{i + 1}", f"1380013{i:04d}").status_code)

    assert sorted(statuses) == [200] * 5 + [429] * 15


def test_checking_codes_is_throttled_per_address_too(verify, monkeypatch):
    """The verify endpoint has its own per-client rate (SMS_VERIFY_THROTTLE_RATE)."""
    from users.throttling import SMSVerifyIPThrottle

    monkeypatch.setattr(SMSVerifyIPThrottle, "rate", "3/minute", raising=False)

    answers = [verify(mobile=f"1380013800{i}", REMOTE_ADDR="203.0.113.10") for i in range(4)]

    assert [a.status_code for a in answers] == [400, 400, 400, 429]
    assert says(answers[3], "请求过于频繁"), error_text(answers[3])


def test_a_send_given_back_after_its_window_ended_does_not_break_the_next_window(
    settings, sms_redis, send_from
):
    """The broker refuses a send just as the global window ends: the count given back must not become a
    -1 with no expiry, or the cap would never reset again."""
    from django_redis import get_redis_connection

    from users import limits

    settings.SMS_GLOBAL_RATE = "2/minute"
    redis = get_redis_connection("sms_code")
    caps = limits.send_limits(MOBILE)
    assert limits.take(redis, caps) == (None, 0)
    sms_redis.delete("sms_global")  # the window ends before the refused send is given back
    pipe = redis.pipeline()
    limits.give_back(pipe, caps)
    pipe.execute()

    assert sms_redis.get("sms_global") is None
    assert send_from("198.51.100.1", "13900139000").status_code == 200
    assert 0 < sms_redis.pttl("sms_global") <= 60_000, "the next window has an end"
