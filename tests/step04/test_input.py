"""Step 4, bad input: every malformed request gets a 4xx with a clear JSON error, never a 5xx."""

import ast
import gettext
import re

import polib
import pytest
from django.test import Client

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


@pytest.mark.parametrize("mobile", BAD_MOBILES.values(), ids=BAD_MOBILES.keys())
def test_send_refuses_what_is_not_a_mainland_mobile_number(send, mobile, sms_redis):
    """Anything but 11 ASCII digits starting 13-19: 400 with one clear message, and nothing in Redis."""
    response = send(mobile)

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert "mobile: 请输入11位中国大陆手机号" in response.json()["error"]
    assert sms_redis.keys("*") == []


def test_send_with_no_number_is_a_400(client):
    """A body without "mobile" names the missing field."""
    response = client.post("/users/sms/", {}, content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"].startswith("mobile: ")


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


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_verify_refuses_malformed_bodies(client, body):
    """Missing fields, wrong types, a code as a number: 400 with a message, never a 5xx."""
    response = client.post("/users/sms/verify/", body, content_type="application/json")

    assert response.status_code == 400, response.content
    assert response["Content-Type"] == "application/json"
    assert isinstance(response.json()["error"], str) and response.json()["error"]


RAW_BODIES = {
    "not json": ("{mobile: 138", "application/json", 400),
    "empty": ("", "application/json", 400),
    "form encoded": ("mobile=13800138000&code=123456", "application/x-www-form-urlencoded", 415),
    "text/plain (what a form or no-cors fetch can send)": ('{"mobile": "13800138000"}', "text/plain", 415),
    "nested 5,000 deep": ("[" * 5_000 + "]" * 5_000, "application/json", 400),
    "3 MB": ('{"mobile": "' + "1" * 3_000_000 + '"}', "application/json", 413),
}


@pytest.mark.parametrize(("raw", "content_type", "expected"), RAW_BODIES.values(), ids=RAW_BODIES.keys())
@pytest.mark.parametrize("path", ["/users/sms/", "/users/sms/verify/"])
def test_the_api_refuses_what_is_not_a_json_object(client, path, raw, content_type, expected):
    """Not JSON 400, not declared as JSON 415, too deep 400 (not a crash), too large 413: all JSON."""
    response = client.post(path, raw, content_type=content_type)

    assert response.status_code == expected
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]


def test_verify_only_accepts_post(client):
    """GET on the verify endpoint: a JSON 405."""
    response = client.get("/users/sms/verify/")

    assert response.status_code == 405
    assert response.json()["error"]


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


def test_messages_are_chinese_by_default_and_english_on_request(send):
    """Django's translations: zh-hans unless Accept-Language asks for English."""
    chinese = send("12345")
    english = send("12345", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")

    assert "请输入11位中国大陆手机号" in chinese.json()["error"]
    assert "Enter an 11-digit mainland China mobile number" in english.json()["error"]
    assert english["Content-Language"] == "en"


@pytest.mark.parametrize("debug", [True, False], ids=["DEBUG on", "DEBUG off"])
def test_every_error_under_the_api_is_json(debug, settings, monkeypatch):
    """400, 403, 404, 405, 413, 415, 429, 500, 503: JSON with a message, never Django's HTML page (which,
    with DEBUG on, shows the settings and every URL pattern)."""
    from kombu.exceptions import OperationalError

    from mycelery.sms.tasks import send_sms

    settings.DEBUG = debug
    client = Client(raise_request_exception=False)

    def post(path="/users/sms/", body='{"mobile": "13800138000"}', content_type="application/json", **extra):
        return client.post(path, body, content_type=content_type, **extra)

    answers = {400: post(HTTP_HOST="evil.example"), 403: post(HTTP_ORIGIN="http://evil.example")}
    answers[404] = client.get("/users/sms//")
    answers[405] = client.get("/users/sms/13800138000/")
    answers[413] = post(body="1" * 20_000)
    answers[415] = post(content_type="text/plain")
    post()
    answers[429] = post()

    def fail(*args, **kwargs):
        raise OperationalError("the broker is down")

    monkeypatch.setattr(send_sms, "delay", fail)
    answers[503] = post(body='{"mobile": "13900139000"}')
    monkeypatch.setattr(send_sms, "delay", lambda *args: 1 / 0)  # a bug
    answers[500] = post(body='{"mobile": "13700137000"}')

    for status, response in answers.items():
        assert response.status_code == status
        assert response["Content-Type"] == "application/json", f"{status}: {response.content[:200]!r}"
        assert response.json()["error"], status


def test_every_message_has_its_chinese_in_the_compiled_catalogue(step_path):
    """Each message of the code and the page has its Chinese in locale/zh_Hans/LC_MESSAGES/django.po, compiled.

    Translatable strings are ``_("...")`` in Python and ``{% translate "..." %}`` in the page; django.mo
    must be the .po compiled (after editing it: python manage.py compilemessages, which needs GNU gettext)."""
    folder = step_path / "locale" / "zh_Hans" / "LC_MESSAGES"
    catalogue = {
        entry.msgid: entry.msgstr for entry in polib.pofile(str(folder / "django.po")) if not entry.obsolete
    }
    with open(folder / "django.mo", "rb") as compiled:
        translations = gettext.GNUTranslations(compiled)

    wanted = set()
    for path in step_path.glob("users/**/*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            called = getattr(node, "func", None)
            if isinstance(node, ast.Call) and getattr(called, "id", "") in ("_", "gettext_lazy", "gettext"):
                wanted.add(node.args[0].value)
    for path in step_path.glob("users/templates/**/*.html"):
        wanted |= set(re.findall(r"""\{% translate "(.+?)"[ %]""", path.read_text()))
    known = set(catalogue)

    assert wanted and wanted <= known, f"not in django.po: {sorted(wanted - known)}"
    assert all(catalogue.values()), f"no Chinese for: {[m for m, t in catalogue.items() if not t]}"
    assert {m: translations.gettext(m) for m in catalogue} == catalogue, "django.mo is not django.po compiled"
