"""Validate the mobile number.

Part 3 of step 4: the page's section step4.md#validation."""

import pytest

from tests.harness import says

# Stands on part 0: without it, these tests fail at once (tests/step04/conftest.py).
NEEDS = [0]

BAD_MOBILES = {
    "short": "1380013800",
    "long": "138001380000",
    "letters": "1380013800a",
    "12 prefix": "12800138000",
    "10 prefix": "10800138000",
    "full-width digits": "１３８００１３８０００",
    "+86": "+8613800138000",
    "86 prefix": "8613800138000",
    "spaces": "138 0013 8000",
    "10,000 characters": "1" * 10_000,
    "null byte": "1380013800\x00",
    "trailing newline": "13800138000\n",
    "sql": "13800138000' OR '1'='1",
    "a number": 13800138000,
    "null": None,
    "a list": ["13800138000"],
}


GOOD = {"mobile": "13800138000", "code": "123456"}


BAD_BODIES = {
    "empty object": {},
    "no code": {"mobile": "13800138000"},
    "no mobile": {"code": "123456"},
    "bad mobile": {**GOOD, "mobile": "12800138000"},
    "short code": {**GOOD, "code": "12345"},
    "long code": {**GOOD, "code": "1234567"},
    "letters in code": {**GOOD, "code": "12345a"},
    "full-width code": {**GOOD, "code": "１２３４５６"},
    "code as a number": {**GOOD, "code": 123456},
    "mobile as a number": {**GOOD, "mobile": 13800138000},
    "code null": {**GOOD, "code": None},
    "code a list": {**GOOD, "code": ["123456"]},
    "code an object": {**GOOD, "code": {"a": 1}},
    "code with a null byte": {**GOOD, "code": "12345\x00"},
    "code with a trailing newline": {**GOOD, "code": "123456\n"},
    "huge code": {**GOOD, "code": "1" * 10_000},
    "a list": [GOOD],
    "a string": "13800138000",
}


RAW_BODIES = {
    "not json": ("{mobile: 138", "application/json", 400),
    "empty": ("", "application/json", 400),
    "form encoded": ("mobile=13800138000&code=123456", "application/x-www-form-urlencoded", 415),
    "text/plain (what a form or no-cors fetch can send)": ('{"mobile": "13800138000"}', "text/plain", 415),
    "nested 5,000 deep": ("[" * 5_000 + "]" * 5_000, "application/json", 400),
}


@pytest.mark.parametrize("mobile", BAD_MOBILES.values(), ids=BAD_MOBILES.keys())
def test_send_refuses_what_is_not_a_mainland_mobile_number(send, mobile, sms_redis):
    """Anything but 11 ASCII digits starting 13-19: 400 with one clear message, and nothing in Redis."""
    response = send(mobile)

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"].startswith("mobile: ") and says(response, "请输入11位中国大陆手机号")
    assert sms_redis.keys("*") == []


def test_send_with_no_number_is_a_400(client):
    """A body without "mobile" names the missing field."""
    response = client.post("/users/sms/", {}, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"].startswith("mobile: ")


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_verify_refuses_malformed_bodies(client, body):
    """Missing fields, wrong types, a code as a number: 400 with a message, never a 5xx."""
    response = client.post("/users/sms/verify/", body, content_type="application/json")

    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"
    assert isinstance(response.json()["error"], str) and response.json()["error"]


@pytest.mark.parametrize(("raw", "content_type", "expected"), RAW_BODIES.values(), ids=RAW_BODIES.keys())
@pytest.mark.parametrize("path", ["/users/sms/", "/users/sms/verify/"])
def test_the_api_refuses_what_is_not_a_json_object(client, path, raw, content_type, expected):
    """Not JSON 400, not declared as JSON 415, too deep 400 (not a crash): all JSON (too large: part 11)."""
    response = client.post(path, raw, content_type=content_type)

    assert response.status_code == expected
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]


def test_verify_only_accepts_post(client):
    """GET on the verify endpoint: a JSON 405."""
    response = client.get("/users/sms/verify/")

    assert response.status_code == 405
    assert response.json()["error"]
