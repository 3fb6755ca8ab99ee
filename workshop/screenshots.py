"""`make screenshots`: the pages the docs' home page shows, served for real with the demo's 2 s provider,
and RabbitMQ's management UI with step 4's queues.

Writes docs/assets/screenshots/: step1-sent.png (the request took the 2 s), step4-sent.png (it answered at
once, the SMS came later), step4-verified.png (the code from the phone, typed and verified), flower-tasks.png
(Flower's page of that send's task: its only argument the ref, never the number or the code) and
rabbitmq-queues.png (the Queues tab: sms and celery, SMS messages waiting in sms). That last one needs
rabbitmq-server; without it, it is left out with a note. It runs a RabbitMQ node of its own, on free
ports: the one on 5672 is not touched.
"""

from __future__ import annotations

import os
import re
import runpy
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import requests

from workshop import rabbitmq
from workshop.browser import TIMELINE_DONE, StepServer, launch
from workshop.gateway import leaks
from workshop.processes import Process, free_port, wait_until
from workshop.steps import ROOT, step_environment, step_folder

OUT = Path(os.environ.get("SCREENSHOTS_OUT") or ROOT / "docs" / "assets" / "screenshots")
MOBILE = "13800138000"
# Just wide enough for the card and the phone side by side.
VIEWPORT = {"width": 800, "height": 680}

FLOWER_TASK = "flower-tasks.png"
# Flower's task page from its name down to when it started: the arguments are the point.
FLOWER_VIEWPORT = {"width": 1000, "height": 560}

RABBITMQ_QUEUES = "rabbitmq-queues.png"
# Wide enough for the management UI's tabs on one line; high enough for the queue table.
RABBITMQ_VIEWPORT = {"width": 1100, "height": 600}
# SMS messages left waiting in the sms queue: no worker takes them.
WAITING = 2
# The Queues tab once the sms row's Ready cell shows every message (the UI refreshes every 5 s).
READY_SHOWN = """(count) => {
  const headers = [...document.querySelectorAll("table.list thead tr:last-child th")];
  const ready = headers.findIndex((th) => th.textContent.trim() === "Ready");
  const rows = [...document.querySelectorAll("table.list tbody tr")];
  const row = (name) => rows.find((r) => r.querySelector("a")?.textContent.trim() === name);
  return ready >= 0 && row("celery") && row("sms")?.querySelectorAll("td")[ready]?.textContent.trim() === String(count);
}"""


def has_chinese_font() -> bool | None:
    """Whether fontconfig knows a font with Chinese glyphs (None: cannot tell, no fc-list)."""
    if not shutil.which("fc-list"):
        return None
    listed = subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True, timeout=30)
    return bool(listed.stdout.strip())


def save(page, name: str) -> None:
    page.screenshot(path=OUT / name)
    print(f"wrote {OUT / name}")


def send(page, server) -> None:
    page.goto(server.url)
    page.fill("#mobile", MOBILE)
    page.click("#send")
    page.wait_for_function(TIMELINE_DONE, timeout=60_000)
    page.wait_for_selector("#messages .sms", timeout=60_000)


def queue_sms(url: str, count: int) -> None:
    """Step 4's queues, declared as its settings declare them (durable, classic), and ``count`` messages
    in sms shaped like those its view's ``send_sms.delay(ref)`` publishes, with no worker to take them."""
    from celery import Celery

    settings = runpy.run_path(str(step_folder(4) / "renranapi" / "settings.py"))
    app = Celery("renran", broker=url, set_as_current=False)
    app.conf.task_queues = settings["CELERY_TASK_QUEUES"]
    app.conf.task_routes = settings["CELERY_TASK_ROUTES"]
    try:
        with app.connection_for_write() as connection:
            for queue in app.amqp.queues.values():
                queue(connection.default_channel).declare()
            for _ in range(count):
                ref = secrets.token_urlsafe(16)
                app.send_task("mycelery.sms.tasks.send_sms", args=[ref], connection=connection)
    finally:
        app.close()


def rabbitmq_queues(browser) -> None:
    """RabbitMQ's Queues tab on a node of its own, SMS messages waiting in sms."""
    with rabbitmq.RabbitMQServer() as node:
        queue_sms(node.url, WAITING)
        page = browser.new_page(viewport=RABBITMQ_VIEWPORT)
        page.goto(f"{node.management_url}/")
        page.fill("input[name=username]", "guest")
        page.fill("input[name=password]", "guest")
        page.click("input[type=submit]")
        page.click("#tabs a[href='#/queues']")
        page.wait_for_function(READY_SHOWN, arg=WAITING, timeout=60_000)
        save(page, RABBITMQ_QUEUES)
        page.close()


def start_flower(server: StepServer) -> tuple[Process, str]:
    """Flower beside this step 4, as its Procfile starts it (on a free port), once it hears the worker; and
    the worker's task events on now, where Flower itself would turn them on only after 5 s."""
    from celery import Celery

    port = free_port()
    environment = step_environment(server.redis.url, server.gateway_url)
    command = [sys.executable, "-m", "celery", "-A", "mycelery.main", "flower", "--address=127.0.0.1"]
    flower = Process([*command, f"--port={port}"], cwd=server.folder, env=environment).start(port=port)
    url = f"http://127.0.0.1:{port}"

    def heard() -> bool:  # a worker event reached Flower: its receiver is listening
        return bool(requests.get(f"{url}/workers?json=1", timeout=5).json()["data"])

    wait_until(heard, "Flower to hear from the worker", timeout=30)
    app = Celery(broker=environment["CELERY_BROKER_URL"], set_as_current=False)
    try:
        replies = app.control.enable_events(reply=True, limit=1, timeout=5)
    finally:
        app.close()
    if not replies:
        flower.stop()
        raise SystemExit("The worker did not answer enable_events: Flower would show no task.")
    return flower, url


def flower_task(browser, url: str, code: str) -> None:
    """Flower's Tasks tab, then the send's task page once it says SUCCESS; it must show neither the number
    nor the code."""
    page = browser.new_page(viewport=FLOWER_VIEWPORT)
    page.goto(f"{url}/tasks")
    page.click("a[href^='/task/']")  # the only task: the SMS just sent

    def succeeded() -> bool:
        page.reload()
        return "SUCCESS" in page.inner_text("body")

    wait_until(succeeded, "Flower to show the task's SUCCESS", timeout=20)
    text = page.inner_text("body")
    if "mycelery.sms.tasks.send_sms" not in text:
        raise SystemExit(f"Flower's task page does not show send_sms:\n{text}")
    leaked = leaks(text, {code}, {MOBILE})
    if leaked:
        raise SystemExit(f"Flower's task page shows {leaked}: the message must carry only a ref.")
    save(page, FLOWER_TASK)
    page.close()


def main() -> int:
    from playwright.sync_api import sync_playwright

    if has_chinese_font() is False:
        print(
            "warning: no Chinese font is installed, so the page's Chinese text will show as boxes.\n"
            "         Install one first: sudo apt-get install fonts-noto-cjk",
            file=sys.stderr,
        )
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            # The demo's 2 s provider: step 1's request takes it, step 4's does not.
            with StepServer(1, latency=2.0) as server:
                page = browser.new_page(viewport=VIEWPORT, locale="zh-CN")
                send(page, server)
                save(page, "step1-sent.png")
                page.close()
            with StepServer(4, latency=2.0) as server:
                flower, flower_url = start_flower(server)
                with flower:
                    page = browser.new_page(viewport=VIEWPORT, locale="zh-CN")
                    send(page, server)
                    save(page, "step4-sent.png")
                    # The code as a person reads it: from the SMS on the phone.
                    sms = page.locator("#messages .sms").first.inner_text()
                    code = re.search(r"\d{6}", sms).group()
                    page.fill("#code", code)
                    page.click("#verify")
                    page.wait_for_selector("#verify-result.ok", timeout=30_000)
                    save(page, "step4-verified.png")
                    page.close()
                    flower_task(browser, flower_url, code)
            if rabbitmq.find_server():
                rabbitmq_queues(browser)
            else:
                print(
                    f"note: no rabbitmq-server on this machine, so {RABBITMQ_QUEUES} was not taken "
                    "(sudo apt install rabbitmq-server)"
                )
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
