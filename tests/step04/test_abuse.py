"""Step 4, abuse: the interval, the per-IP throttle and the daily cap, each with its own message."""

import threading

import pytest
import redis
from django.test import Client

from .conftest import MOBILE


@pytest.fixture
def three_per_minute(monkeypatch):
    from users.throttling import SMSCodeIPThrottle

    # DRF reads the rates once, at import; a class attribute "rate" takes precedence.
    monkeypatch.setattr(SMSCodeIPThrottle, "rate", "3/minute", raising=False)


def test_the_interval_refuses_with_429_and_retry_after(send, sms_redis):
    assert send().status_code == 200

    again = send()

    assert again.status_code == 429
    assert "60秒内已经发送过短信" in again.json()["error"]
    assert 0 < int(again["Retry-After"]) <= 60


def test_the_per_ip_throttle_has_its_own_message(send, services, three_per_minute):
    numbers = ["13800138001", "13800138002", "13800138003", "13800138004"]

    answers = [send(n, REMOTE_ADDR="203.0.113.7") for n in numbers]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert "请求过于频繁" in answers[3].json()["error"]
    assert int(answers[3]["Retry-After"]) > 0
    # Another address is not affected.
    assert send("13800138005", REMOTE_ADDR="203.0.113.8").status_code == 200
    # The counters live in Redis (the "default" cache), so every Django process shares them.
    counters = redis.Redis.from_url(f"{services.redis_url}/0")
    assert any(b"throttle_sms_203.0.113.7" in key for key in counters.keys("*throttle_sms_*"))
    counters.close()


def test_a_forged_x_forwarded_for_does_not_reset_the_throttle(send, three_per_minute):
    for i, number in enumerate(["13800138001", "13800138002", "13800138003"]):
        assert (
            send(number, REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR=f"198.51.100.{i}").status_code == 200
        )

    forged = send("13800138004", REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR="198.51.100.99")

    assert forged.status_code == 429


def test_the_daily_cap_per_number_has_its_own_message(send, sms_redis, settings):
    settings.SMS_DAILY_LIMIT = 2
    for _ in range(2):
        assert send().status_code == 200
        sms_redis.delete(f"interval_{MOBILE}")  # as if the 60 s interval had passed

    capped = send()

    assert capped.status_code == 429
    assert "次数已达上限" in capped.json()["error"]
    assert int(capped["Retry-After"]) > 0
    assert sms_redis.get(f"interval_{MOBILE}") is None


def test_concurrent_requests_from_one_address_cannot_outrun_the_throttle(three_per_minute):
    """Twenty requests at once, one address, twenty numbers: the counter in Redis lets exactly three by."""
    statuses = []
    barrier = threading.Barrier(20)

    def one(i):
        barrier.wait()
        response = Client(REMOTE_ADDR="203.0.113.9").get(f"/users/sms/1380013{i:04d}/")
        statuses.append(response.status_code)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(statuses) == [200] * 3 + [429] * 17


def test_checking_codes_is_throttled_per_address_too(verify, monkeypatch):
    from users.throttling import SMSVerifyIPThrottle

    monkeypatch.setattr(SMSVerifyIPThrottle, "rate", "3/minute", raising=False)

    answers = [verify(mobile=f"1380013800{i}", REMOTE_ADDR="203.0.113.10") for i in range(4)]

    assert [a.status_code for a in answers] == [400, 400, 400, 429]
    assert "请求过于频繁" in answers[3].json()["error"]
