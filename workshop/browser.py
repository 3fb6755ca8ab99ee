"""Serve a step's page for real (Redis, gateway, worker, Django) and open it in Debian's Chromium.

Used by the browser tests and by `make screenshots`. Playwright drives the system Chromium through
``executable_path``: nothing is downloaded.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from workshop.gateway import GatewayClient
from workshop.processes import free_port
from workshop.redis_server import RedisServer

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip
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
        self.folder = next(ROOT.glob(f"step{step:02d}_*"))
        self.latency = latency
        self.redis: RedisServer | None = None
        self.processes: list[subprocess.Popen] = []
        self.logdir = Path(tempfile.mkdtemp(prefix=f"workshop-page{step}-"))
        self.port = free_port()
        self.gateway_url = f"http://127.0.0.1:{free_port()}"
        self.gateway = GatewayClient(self.gateway_url)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = open(self.logdir / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(args, cwd=self.folder, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # fmt: skip
        self.processes.append(process)
        return process

    def start(self) -> StepServer:
        self.redis = RedisServer().start()
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "REDIS_URL": self.redis.url,
            "CELERY_BROKER_URL": f"{self.redis.url}/15",
            "CELERY_RESULT_BACKEND": f"{self.redis.url}/14",
            "RONGLIAN_BASE_URL": self.gateway_url,
            "SMS_GATEWAY_INBOX_URL": f"{self.gateway_url}/_inbox",
        }
        port = self.gateway_url.rsplit(":", 1)[1]
        self._spawn("gateway", [sys.executable, "-m", "workshop.gateway", "--port", port,
                                "--latency", str(self.latency)], env)  # fmt: skip
        self.gateway.wait_ready(timeout=15)
        if self.step >= 3:
            queues = ["-Q", "sms,celery"] if self.step >= 4 else []
            self._spawn("worker", [sys.executable, "-m", "celery", "-A", "mycelery.main", "worker",
                                   "--loglevel=info", "--without-gossip", "--without-mingle", *queues], env)  # fmt: skip
            self._wait_for_log("worker", " ready.")
        self._spawn(
            "web", [sys.executable, "manage.py", "runserver", f"127.0.0.1:{self.port}", "--noreload"], env
        )
        self._wait_for_log("web", "Quit the server with")
        return self

    def _wait_for_log(self, name: str, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        path = self.logdir / f"{name}.log"
        while text not in path.read_text():
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.processes):
                raise RuntimeError(f"{name} did not start; its log:\n{path.read_text()}")
            time.sleep(0.1)

    def sms_code(self, mobile: str) -> str | None:
        import redis

        client = redis.Redis.from_url(f"{self.redis.url}/1", decode_responses=True)
        try:
            return client.get(f"sms_{mobile}")
        finally:
            client.close()

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if self.redis:
            self.redis.stop()
        shutil.rmtree(self.logdir, ignore_errors=True)

    def __enter__(self) -> StepServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
