"""The code: secrets, 6 digits, one use.

Part 2 of step 4: the page's section step4.md#secure-code."""

import re
import time

from tests.harness import MOBILE, concurrently, error_text, says

# Stands on part 0: without it, these tests fail at once (tests/step04/conftest.py).
NEEDS = [0]

WRONG = "验证码错误或已失效"


def code_for(send, sms_redis, mobile=MOBILE):
    assert send(mobile).status_code == 200
    return sms_redis.get(f"sms_{mobile}")


def wrong_for(code):
    return f"{(int(code) + 1) % 1_000_000:06d}"


def test_the_right_code_works_once(send, verify, sms_redis):
    """The right code verifies once; the second time it is gone."""
    code = code_for(send, sms_redis)

    first = verify(code=code)
    second = verify(code=code)

    assert first.status_code == 200
    assert first.json() == {"message": "验证成功"}
    assert second.status_code == 400
    assert says(second, WRONG), error_text(second)


def test_a_wrong_code_and_no_code_get_the_same_answer(send, verify, sms_redis):
    """No oracle: a number with a code waiting and a number with none answer alike (OWASP), so nobody can
    probe which numbers have a code pending."""
    code = code_for(send, sms_redis)

    wrong = verify(code=wrong_for(code))
    none = verify(mobile="13900139000", code=wrong_for(code))

    assert wrong.status_code == none.status_code == 400
    assert wrong.json() == none.json()
    assert says(wrong, WRONG) and "5" in error_text(wrong), "the rule, not the state"


def test_the_fifth_wrong_attempt_destroys_the_code(send, verify, sms_redis):
    """Five tries per code, right or wrong: after five wrong ones, even the right code fails."""
    code = code_for(send, sms_redis)

    answers = [verify(code=wrong_for(code)) for _ in range(5)]

    assert [a.status_code for a in answers] == [400] * 5
    assert len({a.content for a in answers}) == 1, "every wrong try answers alike"
    assert sms_redis.get(f"sms_{MOBILE}") is None
    assert verify(code=code).status_code == 400


def test_four_wrong_attempts_still_leave_the_right_code_usable(send, verify, sms_redis):
    """A person who mistypes four times can still use the code."""
    code = code_for(send, sms_redis)

    for _ in range(4):
        verify(code=wrong_for(code))

    assert verify(code=code).status_code == 200


def test_the_code_expires_after_sms_expire_time(send, sms_redis):
    """The code lives SMS_EXPIRE_TIME (300 s), the interval SMS_INTERVAL_TIME (60 s)."""
    from mycelery.sms import constants

    assert send().status_code == 200

    assert 0 < sms_redis.ttl(f"sms_{MOBILE}") <= constants.SMS_EXPIRE_TIME == 300
    assert 0 < sms_redis.ttl(f"interval_{MOBILE}") <= constants.SMS_INTERVAL_TIME == 60


def test_an_expired_code_fails(send, verify, sms_redis):
    """Once Redis has dropped the code, the right digits no longer verify."""
    code = code_for(send, sms_redis)
    sms_redis.pexpire(f"sms_{MOBILE}", 20)  # as if SMS_EXPIRE_TIME had passed
    deadline = time.monotonic() + 5
    while sms_redis.exists(f"sms_{MOBILE}") and time.monotonic() < deadline:
        time.sleep(0.02)

    response = verify(code=code)

    assert response.status_code == 400
    assert says(response, WRONG), error_text(response)


def test_a_new_code_resets_the_attempts(send, verify, sms_redis):
    """Tries are counted per code: a new code starts with five again."""
    code = code_for(send, sms_redis)
    for _ in range(3):
        verify(code=wrong_for(code))

    sms_redis.delete(f"interval_{MOBILE}")  # as if the interval had passed
    new_code = code_for(send, sms_redis)

    assert sms_redis.get(f"sms_attempts_{MOBILE}") is None
    assert verify(code=new_code).status_code == 200


def test_concurrent_guesses_are_compared_at_most_five_times(send, sms_redis, monkeypatch):
    """Twenty wrong guesses at the same moment: the code is compared SMS_MAX_ATTEMPTS times at most.

    Each comparison is slowed down, so that all twenty are in flight together: counted after comparing,
    every one of them would be compared."""
    from django.test import Client

    from mycelery.sms import constants
    from users import views

    code = code_for(send, sms_redis)
    compared = []
    real = views.hmac.compare_digest

    def slow_compare(a, b):
        compared.append(a)
        time.sleep(0.05)
        return real(a, b)

    monkeypatch.setattr(views.hmac, "compare_digest", slow_compare)

    def guess(i):
        body = {"mobile": MOBILE, "code": wrong_for(code)}
        return Client(REMOTE_ADDR=f"198.51.100.{i + 1}").post(
            "/users/sms/verify/", body, content_type="application/json"
        )

    answers = concurrently(20, guess)

    assert [a.status_code for a in answers] == [400] * 20
    assert 0 < len(compared) <= constants.SMS_MAX_ATTEMPTS


def test_an_attempt_is_counted_before_the_code_is_compared(send, verify, sms_redis):
    """Five attempts already counted (say, by guesses sent at the same moment, still in flight): even the
    right code is refused. Compared first and counted after, a burst of guesses would all be compared."""
    code = code_for(send, sms_redis)
    sms_redis.set(f"sms_attempts_{MOBILE}", 5)

    response = verify(code=code)

    assert response.status_code == 400
    assert says(response, WRONG), error_text(response)


def test_wrong_codes_are_capped_per_number_per_day_across_codes(send, verify, sms_redis, settings):
    """A new code gives five new tries, but SMS_DAILY_WRONG_LIMIT caps a number's wrong codes a day
    (NIST SP 800-63B: a cap on failed attempts per account); then 429 until midnight, right code or not."""
    settings.SMS_DAILY_WRONG_LIMIT = 7
    first = code_for(send, sms_redis)
    for _ in range(5):
        verify(code=wrong_for(first))
    sms_redis.delete(f"interval_{MOBILE}")
    second = code_for(send, sms_redis)
    assert [verify(code=wrong_for(second)).status_code for _ in range(2)] == [400, 400]

    capped = verify(code=second)

    assert capped.status_code == 429
    assert says(capped, "输错验证码的次数过多"), error_text(capped)
    assert int(capped["Retry-After"]) > 0
    assert sms_redis.get(f"sms_{MOBILE}") == second, "the code is kept: tomorrow it will have expired anyway"


def test_probes_of_a_number_with_no_code_do_not_lock_its_owner_out(send, verify, sms_redis, settings):
    """Guesses for a number with no code count nowhere: nobody can use up a stranger's daily tries
    without first sending them codes (OWASP: a lockout must not be a denial of service)."""
    settings.SMS_DAILY_WRONG_LIMIT = 3
    for _ in range(10):
        assert verify(code="123456").status_code == 400

    code = code_for(send, sms_redis)

    assert verify(code=code).status_code == 200


def test_a_right_code_is_not_counted_as_a_wrong_one(send, verify, sms_redis, settings):
    """The daily count is of wrong codes: verifying successfully takes its attempt back off."""
    settings.SMS_DAILY_WRONG_LIMIT = 1
    for _ in range(3):
        code = code_for(send, sms_redis)
        assert verify(code=code).status_code == 200
        sms_redis.delete(f"interval_{MOBILE}")

    assert sms_redis.get(f"sms_wrong_{MOBILE}") == "0"


def test_a_send_answers_how_long_the_six_digit_code_lives(send, sms_redis):
    """The code is 6 digits; the answer says how long it lives and when another may be asked for."""
    response = send()

    assert response.status_code == 200
    assert response.json() == {
        "message": "短信已经发送，请留意您的手机",
        "expires_in": 300,
        "retry_after": 60,
    }
    assert re.fullmatch(r"\d{6}", sms_redis.get(f"sms_{MOBILE}"))
