"""The page in a real browser (Debian's Chromium through Playwright), on steps 1 and 4 served for real.

Orders, not timings: the gateway can hold an SMS until released, so "the page answered while the
provider still held the SMS" is a fact, not a stopwatch reading.
"""

import os

import pytest

from workshop.browser import INSTALL_HINT, StepServer, chromium_path, launch

MOBILE = "13800138000"

if not chromium_path():
    # CI installs Chromium (.ci/run): a missing browser there is a failure, not a skip.
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        pytest.fail(f"Chromium is missing in CI. {INSTALL_HINT}", pytrace=False)
    pytest.skip(f"the browser tests need Chromium: {INSTALL_HINT}", allow_module_level=True)

# Playwright is a dev dependency (make setup installs it): missing, it is an error, never a skip.
from playwright import sync_api  # noqa: E402


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module", params=[1, 4], ids=["step1", "step4"])
def server(request):
    with StepServer(request.param) as running:
        yield running


@pytest.fixture
def page(browser, server):
    server.gateway.configure(hold=False, latency=0.3, fail_next=0)
    server.gateway.reset()
    import redis

    redis.Redis.from_url(server.redis.url).flushall()
    context = browser.new_context(locale="zh-CN")
    page = context.new_page()
    page.goto(server.url)
    yield page
    server.gateway.release()
    context.close()


def test_a_send_counts_down_shows_the_time_and_the_message_on_the_phone(page, server):
    server.gateway.configure(hold=True)
    page.fill("#mobile", MOBILE)
    page.click("#send")
    server.gateway.wait_until_held(1, timeout=30)

    answered_while_held = page.locator("#status").inner_text().strip() != ""
    if server.step == 1:
        # Step 1 sends inside the request: the page is still waiting for the provider.
        assert not answered_while_held
        assert page.locator("#send").inner_text() == "发送中…"
        assert page.locator("#send").is_disabled()
    else:
        # Step 4 answered before the worker's SMS was even accepted by the provider.
        page.wait_for_function("document.querySelector('#status').textContent.length > 0", timeout=10_000)
        assert server.gateway.inbox(to=MOBILE) == []
    server.gateway.release()

    page.wait_for_function("document.querySelector('#status').textContent.length > 0", timeout=30_000)
    assert "短信已经发送" in page.locator("#status").inner_text()
    assert page.locator("#send").is_disabled()
    page.wait_for_function("document.querySelector('#send').textContent.includes('秒后重发')", timeout=5_000)
    assert " ms" in page.locator("#elapsed").inner_text()

    page.wait_for_selector("#messages .sms", timeout=30_000)
    assert server.sms_code(MOBILE) in page.locator("#messages .sms").first.inner_text()


def test_a_second_click_inside_the_interval_shows_the_interval_message(page, server):
    page.fill("#mobile", MOBILE)
    page.click("#send")
    page.wait_for_function("document.querySelector('#status').textContent.length > 0", timeout=30_000)

    page.reload()  # a fresh page has the button enabled again; the server still remembers
    page.fill("#mobile", MOBILE)
    page.click("#send")

    page.wait_for_function("document.querySelector('#error').textContent.length > 0", timeout=30_000)
    assert "60秒内已经发送过短信" in page.locator("#error").inner_text()
    assert page.locator("#send").is_enabled()


def test_an_invalid_number_shows_the_apis_message_next_to_the_field(page, server):
    page.fill("#mobile", "12345")
    page.click("#send")

    page.wait_for_function("document.querySelector('#error').textContent.length > 0", timeout=30_000)
    if server.step == 1:
        # Step 1 does not check the number: the provider refuses it, after the user waited for it.
        assert "短信发送失败" in page.locator("#error").inner_text()
        assert server.gateway.control()["rejected"] == 1
    else:
        # Step 4 refuses it before anything is sent.
        assert "请输入11位中国大陆手机号" in page.locator("#error").inner_text()
        assert server.gateway.control()["received"] + server.gateway.control()["rejected"] == 0


def test_make_screenshots_saves_the_page_before_and_after_a_send(tmp_path):
    import subprocess

    from workshop.browser import ROOT

    result = subprocess.run(
        ["make", "--no-print-directory", "screenshots"],
        cwd=ROOT, env={**os.environ, "SCREENSHOTS_OUT": str(tmp_path)}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("step1-before", "step1-after", "step4-before", "step4-after"):
        png = (tmp_path / f"{name}.png").read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 5000, name
