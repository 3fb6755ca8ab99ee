"""Step 4, abuse: the interval, the per-IP throttle and the daily cap, each with its own message."""

import pytest

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


def test_the_per_ip_throttle_has_its_own_message(send, three_per_minute):
    numbers = ["13800138001", "13800138002", "13800138003", "13800138004"]

    answers = [send(n, REMOTE_ADDR="203.0.113.7") for n in numbers]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert "请求过于频繁" in answers[3].json()["error"]
    assert int(answers[3]["Retry-After"]) > 0
    # Another address is not affected.
    assert send("13800138005", REMOTE_ADDR="203.0.113.8").status_code == 200


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
