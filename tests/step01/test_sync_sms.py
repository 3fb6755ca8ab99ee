"""Step 1: the SMS is sent inside the request, so the user waits for the provider."""

import threading

from django.test import Client

from tests.harness import MOBILE


def send(client, mobile=MOBILE):
    return client.get(f"/users/sms/{mobile}/")


def test_sms_reaches_the_gateway_with_the_code_stored_in_redis(client, gateway, sms_redis):
    """The view sends the SMS itself: the gateway receives the 4-digit code that Redis stores."""
    response = send(client)

    assert response.status_code == 200, response.content
    assert response.json() == {"message": "短信已经发送,请留意您的手机"}
    stored = sms_redis.get(f"sms_{MOBILE}")
    assert stored is not None and len(stored) == 4 and stored.isdigit()
    [message] = gateway.inbox(to=MOBILE)
    # The template's data: the code, then its lifetime in minutes.
    assert message["datas"] == [stored, "5"] or message["datas"] == [stored, 5]
    assert message["templateId"] == "1"


def test_code_expires_after_sms_expire_time_and_interval_after_sms_interval_time(client, gateway, sms_redis):
    """The code lives SMS_EXPIRE_TIME, the interval SMS_INTERVAL_TIME (a Redis pipeline sets both)."""
    from users import constants

    send(client)

    assert 0 < sms_redis.ttl(f"sms_{MOBILE}") <= constants.SMS_EXPIRE_TIME
    assert sms_redis.ttl(f"sms_{MOBILE}") > constants.SMS_INTERVAL_TIME
    assert 0 < sms_redis.ttl(f"interval_{MOBILE}") <= constants.SMS_INTERVAL_TIME


def test_interval_refuses_a_second_request(client, gateway, sms_redis):
    """A second request within the interval gets the chapter's 400 and sends nothing."""
    assert send(client).status_code == 200
    first_code = sms_redis.get(f"sms_{MOBILE}")

    second = send(client)

    assert second.status_code == 400
    assert "60秒内已经发送过短信" in second.json()["message"]
    assert len(gateway.inbox(to=MOBILE)) == 1
    assert sms_redis.get(f"sms_{MOBILE}") == first_code


def test_another_number_is_not_held_back_by_the_interval(client, gateway):
    """The interval is per number: another number gets its SMS."""
    assert send(client, "13800138000").status_code == 200
    assert send(client, "13900139000").status_code == 200
    assert len(gateway.inbox(to="13900139000")) == 1


def test_the_request_waits_for_the_gateway(client, gateway):
    """The problem this workshop solves: the response cannot come before the SMS provider's."""
    gateway.configure(hold=True)  # the provider keeps the SMS until the test releases it
    answered = []
    request = threading.Thread(target=lambda: answered.append(send(Client())))
    request.start()
    gateway.wait_until_held(1, timeout=30)

    request.join(timeout=1.0)
    waiting = request.is_alive()
    gateway.release()
    request.join(timeout=30)

    assert waiting, "the view answered while the provider still held the SMS: it did not wait for it"
    assert answered and answered[0].status_code == 200
    # By the time the user got an answer, the gateway had delivered the SMS.
    assert len(gateway.inbox(to=MOBILE)) == 1


def test_a_failing_gateway_gives_a_json_error_and_stores_nothing(client, gateway, sms_redis):
    """The provider refuses: a JSON 502, and no interval left to wait out."""
    gateway.configure(fail_next=1)

    response = send(client)

    assert response.status_code == 502
    assert response["Content-Type"] == "application/json"
    assert "短信发送失败" in response.json()["message"]
    assert sms_redis.get(f"interval_{MOBILE}") is None
    assert send(client).status_code == 200


def test_the_page_has_the_button_and_the_phone(client):
    """The page at / has the 获取验证码 button and the simulated phone."""
    response = client.get("/")

    html = response.content.decode()
    assert response.status_code == 200
    assert "获取验证码" in html
    assert 'id="phone"' in html
    assert "/_inbox" in html
