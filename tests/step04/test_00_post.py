"""No SMS behind a GET.

Part 0 of step 4: the page's section step4.md#post-not-get."""

import re

import pytest

from tests.harness import MOBILE


@pytest.mark.parametrize("method", ["get", "head"])
def test_the_chapters_get_sends_nothing_and_names_the_new_method(client, method, sms_redis):
    """GET and HEAD must be safe (RFC 9110): the chapter's GET users/sms/<mobile>/ answers 405 and sends
    nothing, so no <img src>, link or prefetch on any page can send a code."""
    response = getattr(client, method)("/users/sms/13800138000/")

    assert response.status_code == 405
    if method == "get":
        assert "POST /users/sms/" in response.json()["error"]
    assert sms_redis.keys("*") == []


def test_a_page_of_another_site_cannot_send(send, sms_redis):
    """A browser names the page's origin: a request from another site's page is refused (CSRF)."""
    response = send(HTTP_ORIGIN="http://evil.example")

    assert response.status_code == 403
    assert "其他网站" in response.json()["error"]
    assert send(HTTP_ORIGIN="http://testserver").status_code == 200, "the page's own origin is fine"


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
