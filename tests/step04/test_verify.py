"""Step 4, verify: a code works once, survives 4 wrong attempts, dies at the 5th, and expires."""

import time

from .conftest import MOBILE


def code_for(send, sms_redis):
    assert send().status_code == 200
    return sms_redis.get(f"sms_{MOBILE}")


def test_the_right_code_works_once(send, verify, sms_redis):
    code = code_for(send, sms_redis)

    first = verify(code=code)
    second = verify(code=code)

    assert first.status_code == 200
    assert first.json() == {"message": "验证成功 / verified"}
    assert second.status_code == 400
    assert "不存在或已过期" in second.json()["error"]


def test_wrong_attempts_are_counted_and_the_fifth_destroys_the_code(send, verify, sms_redis):
    code = code_for(send, sms_redis)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"

    answers = [verify(code=wrong) for _ in range(5)]

    assert [a.status_code for a in answers] == [400] * 5
    assert "还可以再试4次" in answers[0].json()["error"]
    assert "还可以再试1次" in answers[3].json()["error"]
    assert "错误次数过多" in answers[4].json()["error"]
    assert verify(code=code).status_code == 400, "the right code no longer works after 5 wrong attempts"


def test_four_wrong_attempts_still_leave_the_right_code_usable(send, verify, sms_redis):
    code = code_for(send, sms_redis)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"

    for _ in range(4):
        verify(code=wrong)

    assert verify(code=code).status_code == 200


def test_the_code_expires_after_sms_expire_time(send, sms_redis):
    from mycelery.sms import constants

    assert send().status_code == 200

    assert 0 < sms_redis.ttl(f"sms_{MOBILE}") <= constants.SMS_EXPIRE_TIME == 300
    assert 0 < sms_redis.ttl(f"interval_{MOBILE}") <= constants.SMS_INTERVAL_TIME == 60


def test_an_expired_code_fails(send, verify, sms_redis):
    code = code_for(send, sms_redis)
    sms_redis.pexpire(f"sms_{MOBILE}", 20)  # as if SMS_EXPIRE_TIME had passed
    deadline = time.monotonic() + 5
    while sms_redis.exists(f"sms_{MOBILE}") and time.monotonic() < deadline:
        time.sleep(0.02)

    response = verify(code=code)

    assert response.status_code == 400
    assert "不存在或已过期" in response.json()["error"]


def test_a_new_code_resets_the_attempts(send, verify, sms_redis):
    code_for(send, sms_redis)
    for _ in range(3):
        verify(code="999999" if sms_redis.get(f"sms_{MOBILE}") != "999999" else "888888")

    sms_redis.delete(f"interval_{MOBILE}")  # as if the interval had passed
    new_code = code_for(send, sms_redis)

    assert sms_redis.get(f"sms_attempts_{MOBILE}") is None
    assert verify(code=new_code).status_code == 200


def test_an_attempt_is_counted_before_the_code_is_compared(send, verify, sms_redis):
    """Five attempts already counted (say, by guesses sent at the same moment, still in flight): even the
    right code is refused. Compared first and counted after, a burst of guesses would all be compared."""
    code = code_for(send, sms_redis)
    sms_redis.set(f"sms_attempts_{MOBILE}", 5)

    response = verify(code=code)

    assert response.status_code == 400
    assert "错误次数过多" in response.json()["error"]
