"""The page in a real browser (Debian's Chromium through Playwright), on steps 1, 3 and 4 served for real.

Orders, not timings: the gateway can hold an SMS until released, so "the page answered while the
provider still held the SMS" is a fact, not a stopwatch reading.
"""

import re
import sys

import pytest
import redis

from tests.harness import MOBILE, make, missing
from workshop import rabbitmq, screenshots
from workshop.browser import INSTALL_HINT, TIMELINE_DONE, StepServer, chromium_path
from workshop.processes import Process, free_port
from workshop.steps import ROOT

if not chromium_path():
    missing("Chromium", INSTALL_HINT)  # CI installs it (.ci/run): there a missing browser fails


@pytest.fixture(scope="module", params=[1, 4], ids=["step1", "step4"])
def server(request):
    """A step served for real; a test that needs another step parametrizes it (indirect)."""
    with StepServer(request.param) as running:
        yield running


@pytest.fixture
def page(browser, server):
    server.gateway.configure(hold=False, latency=0.3, fail_next=0)
    server.gateway.reset()
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


STATUS_SHOWN = "document.querySelector('#status').textContent.length > 0"


def timeline(page) -> tuple[dict[str, int], list[str]]:
    """The page's timeline once complete: ms since the click of each event, and the events as listed."""
    page.wait_for_function(TIMELINE_DONE, timeout=30_000)
    items = page.eval_on_selector_all(
        "#timeline li", "items => items.map((i) => [i.dataset.event, Number(i.dataset.ms)])"
    )
    return dict(items), [event for event, _ in items]


@pytest.mark.parametrize("server", [1, 3, 4], indirect=True, ids=["step1", "step3", "step4"])
def test_the_timeline_shows_whether_the_request_waited_for_the_sms(page, server):
    """After a send the page lists, from the click: the request's answer (timed by the page), and the
    gateway's times of the SMS: its call arriving, the SMS reaching the phone. Step 1's request lasts at
    least the provider's latency and answers after the SMS; from step 3 on the provider holds the SMS
    until the page has its answer, and the timeline shows the answer first, the SMS still to come."""
    server.gateway.configure(hold=True)
    page.fill("#mobile", MOBILE)
    page.click("#send")
    server.gateway.wait_until_held(1, timeout=30)
    if server.step >= 3:
        page.wait_for_function(STATUS_SHOWN, timeout=10_000)
        assert page.locator("#timeline .pending[data-event=delivered]").count() == 1
    server.gateway.release()

    times, order = timeline(page)

    assert order[0] == "click" and times["click"] == 0
    assert 0 <= times["called"] <= times["delivered"]
    if server.step == 1:
        assert order == ["click", "called", "delivered", "answered"], "the view waited for the SMS"
        latency = server.gateway.control()["latency"]
        assert times["answered"] >= latency * 1000, "the request took the provider's time"
    else:
        assert order.index("answered") < order.index("delivered")
        assert times["answered"] < times["delivered"]


def verify(page, code: str) -> tuple[int, str]:
    """Type ``code`` in the page's code box and click 验证: the HTTP status and what the page shows."""
    page.fill("#code", code)
    page.click("#verify")
    page.wait_for_selector("#verify-result[data-status]", timeout=30_000)
    result = page.locator("#verify-result")
    return int(result.get_attribute("data-status")), result.inner_text()


@pytest.mark.parametrize("server", [4], indirect=True, ids=["step4"])
def test_the_code_from_the_phone_verifies_once_and_the_page_shows_each_answer(page, server):
    """The loop closed: send, read the code on the simulated phone, type it, 验证: verified. A wrong code,
    and the right one used again, get the API's one answer for both; a number with a day of wrong codes
    behind it gets the 429 that says so."""
    page.fill("#mobile", MOBILE)
    page.click("#send")
    page.wait_for_selector("#messages .sms", timeout=30_000)
    code = re.search(r"\d{6}", page.locator("#messages .sms").first.inner_text()).group()
    wrong_code = f"{(int(code) + 1) % 1_000_000:06d}"

    wrong = verify(page, wrong_code)
    right = verify(page, code)
    used = verify(page, code)
    sms_redis = redis.Redis.from_url(f"{server.redis.url}/1")
    sms_redis.set(f"sms_wrong_{MOBILE}", 10**6)  # as if the number had been guessed at all day
    sms_redis.close()
    today = verify(page, code)

    assert right == (200, "验证成功")
    assert wrong[0] == 400 and "验证码错误或已失效" in wrong[1]
    assert used == wrong, "a used code gets the same answer as a wrong one"
    assert today[0] == 429 and "今天该号码输错验证码的次数过多" in today[1]


def test_make_screenshots_saves_every_image_the_docs_show(tmp_path):
    """`make screenshots` writes every screenshot a docs page shows, and RabbitMQ's Queues tab (where
    rabbitmq-server is installed; without it the command says so and saves the others); the docs keep no
    other."""
    folder = ROOT / "docs" / "assets" / "screenshots"
    shown = {
        name
        for page in (ROOT / "docs").glob("*.md")
        for name in re.findall(r"assets/screenshots/([\w.-]+\.png)", page.read_text())
    }
    server = rabbitmq.find_server()

    result = make("screenshots", SCREENSHOTS_OUT=str(tmp_path))

    assert result.returncode == 0, result.stdout + result.stderr
    assert shown, "the docs show no screenshot"
    assert screenshots.RABBITMQ_QUEUES in shown, "the RabbitMQ page shows the management UI"
    for name in sorted(shown if server else shown - {screenshots.RABBITMQ_QUEUES}):
        png = (tmp_path / name).read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 5000, name
    assert {p.name for p in folder.iterdir()} == shown, (
        "docs/assets/screenshots/ keeps only what a page shows"
    )
    if not server:
        assert f"{screenshots.RABBITMQ_QUEUES} was not taken" in result.stdout, result.stdout
        assert not (tmp_path / screenshots.RABBITMQ_QUEUES).exists()
        missing(f"RabbitMQ (so {screenshots.RABBITMQ_QUEUES} was not checked)", rabbitmq.INSTALL_HINT)


EVIL_PAGE = """<!doctype html><title>waiting</title>
<iframe name="sink"></iframe>
<form id="form" method="post" target="sink" enctype="text/plain" action="{web}/users/sms/">
  <input name='{{"mobile": "13800138001", "x": "' value='"}}'>
</form>
<img id="img">
<script>
  const seen = {{}};
  const img = new Promise((done) => {{
    const image = document.getElementById("img");
    image.onload = image.onerror = done;
    image.src = "{web}/users/sms/13800138002/";
  }});
  const form = new Promise((done) => {{
    document.querySelector("iframe").onload = done;
    document.getElementById("form").submit();
  }});
  const blind = fetch("{web}/users/sms/", {{method: "POST", mode: "no-cors", body: '{{"mobile": "13800138003"}}'}});
  const json = fetch("{web}/users/sms/", {{method: "POST", headers: {{"Content-Type": "application/json"}},
                                           body: '{{"mobile": "13800138004"}}'}})
    .then(() => "read", () => "blocked").then((r) => seen.json = r);
  const inbox = fetch("{gateway}/_inbox").then((r) => r.json()).then(() => "read", () => "blocked")
    .then((r) => seen.inbox = r);
  const control = fetch("{gateway}/_control", {{method: "POST", mode: "no-cors", body: '{{"fail_rate": 1}}'}});
  Promise.allSettled([img, form, blind, json, inbox, control]).then(() => {{
    window.seen = seen;
    document.title = "done";
  }});
</script>
"""


@pytest.mark.parametrize("server", [4], indirect=True, ids=["step4"])
def test_a_page_of_another_site_cannot_make_the_browser_send_or_read_the_phone(browser, server, tmp_path):
    """A page served from another origin (another port) tries what a hostile page can: an <img> on the
    chapter's GET, a text/plain <form> post, a no-cors fetch, a JSON fetch, reading the simulated phone
    and switching the gateway's faults on. Nothing is sent, read or changed."""
    server.gateway.configure(hold=False, fail_rate=0.0, fail_next=0)
    server.gateway.reset()
    (tmp_path / "index.html").write_text(
        EVIL_PAGE.format(web=server.url.rstrip("/"), gateway=server.gateway_url)
    )
    port = free_port()
    evil = Process([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"], cwd=tmp_path)
    with evil.start(port=port):
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{port}/index.html")
        page.wait_for_function("document.title === 'done'", timeout=30_000)
        seen = page.evaluate("window.seen")
        context.close()

    assert seen == {"json": "blocked", "inbox": "blocked"}, "the browser kept the answers from the page"
    assert [server.sms_code(f"1380013800{i}") for i in range(1, 5)] == [None] * 4, "nothing was sent"
    assert server.gateway.control()["received"] == 0
    assert server.gateway.control()["fail_rate"] == 0, "the gateway's settings did not change"


def test_the_page_speaks_the_visitors_language(browser, server):
    """With an English browser, step 4's page and its messages are English; the chapter's steps are Chinese."""
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    page.goto(server.url)
    page.fill("#mobile", "12345")
    page.click("#send")
    page.wait_for_function("document.querySelector('#error').textContent.length > 0", timeout=30_000)
    title, error = page.title(), page.locator("#error").inner_text()
    context.close()

    if server.step == 4:
        assert title.startswith("Get a code") and "Enter an 11-digit mainland China mobile number" in error
    else:
        assert title.startswith("获取验证码")
