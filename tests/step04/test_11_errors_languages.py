"""Error pages and languages.

Part 11 of step 4: the page's section step4.md#json-errors-and-languages."""

import ast
import gettext
import re

import polib
import pytest
from django.test import Client

# Stands on part 0: without it, these tests fail at once (tests/step04/conftest.py).
NEEDS = [0]


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


def test_messages_are_chinese_by_default_and_english_on_request(send):
    """Django's translations: zh-hans unless Accept-Language asks for English."""
    chinese = send("12345")
    english = send("12345", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")

    assert "请输入11位中国大陆手机号" in chinese.json()["error"]
    assert "Enter an 11-digit mainland China mobile number" in english.json()["error"]
    assert english["Content-Language"] == "en"


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
