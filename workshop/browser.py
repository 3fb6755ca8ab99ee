"""Serve a step's page for real (Redis, gateway, worker, Django) and open it in Debian's Chromium.

Used by the browser tests and by `make screenshots`. Playwright drives the system Chromium through
``executable_path``: nothing is downloaded.
"""

from __future__ import annotations

import os
import shutil
import sys

from workshop.gateway import GatewayClient
from workshop.gateway import command as gateway_command
from workshop.processes import Process, free_port
from workshop.redis_server import RedisServer
from workshop.steps import current_code, step_environment, step_folder, worker_options

# The page's timeline is complete once the gateway's times of the SMS are on it.
TIMELINE_DONE = "document.querySelector('#timeline [data-event=delivered][data-ms]')"

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INSTALL_HINT = "sudo apt-get install chromium (Debian/Ubuntu), or set CHROMIUM=/path/to/chrome"


def chromium_path() -> str | None:
    for candidate in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        found = candidate and shutil.which(candidate)
        if found:
            return found
    return None


def launch(playwright):
    path = chromium_path()
    if not path:
        raise RuntimeError(f"No Chromium found. {INSTALL_HINT}")
    return playwright.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)


class StepServer:
    """One step served on free ports: its own Redis, the gateway, a worker from step 3 on, runserver."""

    def __init__(self, step: int, latency: float = 0.3):
        self.step = step
        self.folder = step_folder(step)
        self.latency = latency
        self.redis: RedisServer | None = None
        self.processes: list[Process] = []
        self.port = free_port()
        self.gateway_port = free_port()
        self.gateway_url = f"http://127.0.0.1:{self.gateway_port}"
        self.gateway = GatewayClient(self.gateway_url)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def _start(self, args: list[str], env: dict[str, str], **wait) -> Process:
        process = Process(args, cwd=self.folder, env=env)
        self.processes.append(process)
        return process.start(timeout=60, **wait)

    def start(self) -> StepServer:
        self.redis = RedisServer().start()
        # WEB_PORT: the gateway lets this page, and only it, read the inbox.
        env = {**step_environment(self.redis.url, self.gateway_url), "WEB_PORT": str(self.port)}
        self._start(gateway_command(self.gateway_port, self.latency), env, port=self.gateway_port)
        if self.step >= 3:
            options = [
                "--loglevel=info",
                "--without-gossip",
                "--without-mingle",
                *worker_options(self.folder),
            ]
            self._start(
                [sys.executable, "-m", "celery", "-A", "mycelery.main", "worker", *options],
                env,
                ready=" ready.",
            )
        self._start(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{self.port}", "--noreload"],
            env,
            port=self.port,
        )
        return self

    def sms_code(self, mobile: str) -> str | None:
        return current_code(self.redis.url, mobile)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        if self.redis:
            self.redis.stop()

    def __enter__(self) -> StepServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
