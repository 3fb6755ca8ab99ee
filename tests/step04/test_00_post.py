"""No SMS behind a GET.

Part 0 of step 4: the page's section step4.md#post-not-get."""

import pytest

from tests.harness import MOBILE, error_text


@pytest.mark.parametrize("method", ["get", "head"])
def test_the_chapters_get_sends_nothing_and_names_the_new_method(client, method, sms_redis):
    """GET and HEAD must be safe (RFC 9110): the chapter's GET users/sms/<mobile>/ answers 405 and sends
    nothing, so no <img src>, link or prefetch on any page can send a code."""
    response = getattr(client, method)("/users/sms/13800138000/")

    assert response.status_code == 405
    if method == "get":
        assert "POST /users/sms/" in error_text(response)
    assert sms_redis.keys("*") == []


def test_a_page_of_another_site_cannot_send(send, sms_redis):
    """A browser names the page's origin: a request from another site's page is refused (CSRF)."""
    response = send(HTTP_ORIGIN="http://evil.example")

    assert response.status_code == 403
    assert error_text(response), "a message that says why"
    assert send(HTTP_ORIGIN="http://testserver").status_code == 200, "the page's own origin is fine"


def test_a_post_sends_and_the_worker_delivers_the_code(send, gateway, sms_redis, sms_worker):
    """POST users/sms/ answers 200 at once; a real worker then hands the provider the code Redis holds."""
    sms_worker()

    response = send()

    assert response.status_code == 200
    stored = sms_redis.get(f"sms_{MOBILE}")
    [message] = gateway.wait_for_messages(MOBILE, count=1, timeout=30)
    assert [str(d) for d in message["datas"]] == [stored, "5"], "the code and its lifetime in minutes"
