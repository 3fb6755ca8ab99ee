"""What every step's tests stand on: a real Redis, the real SMS gateway, real worker processes.

Each step runs in its own pytest process (the steps share module names such as ``renranapi``).
A step's conftest calls :func:`configure_step` from ``pytest_configure``: the services start and
their URLs go into the environment *before* Django reads its settings, exactly as a student's shell
would set them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from workshop.gateway import GatewayClient
from workshop.redis_server import RedisServer, free_port, ping

ROOT = Path(__file__).resolve().parent.parent
# Short but real: the view still waits for it in step 1, and the tests stay quick.
TEST_GATEWAY_LATENCY = 0.3


class Services:
    """Redis and the SMS gateway for one pytest process."""

    def __init__(self, separate_broker: bool = False):
        self.separate_broker = separate_broker
        self.redis: RedisServer | None = None
        self.broker: RedisServer | None = None
        self.gateway_process: subprocess.Popen | None = None
        self.redis_url = ""
        self.broker_redis_url = ""
        self.gateway_url = ""

    def start(self) -> Services:
        external = os.environ.get("REDIS_URL")
        if external:
            if not ping(external):
                raise pytest.UsageError(f"REDIS_URL={external} does not answer PING.")
            self.redis_url = external.rstrip("/")
        else:
            self.redis = RedisServer().start()
            self.redis_url = self.redis.url
        self.broker_redis_url = self.redis_url
        if self.separate_broker:
            # Its own server, so a test can stop the broker while the cache stays up.
            self.broker = RedisServer().start()
            self.broker_redis_url = self.broker.url
        port = free_port()
        self.gateway_url = f"http://127.0.0.1:{port}"
        self.gateway_process = subprocess.Popen(
            [sys.executable, "-m", "workshop.gateway", "--port", str(port),
             "--latency", str(TEST_GATEWAY_LATENCY)],
            cwd=ROOT, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        GatewayClient(self.gateway_url).wait_ready(timeout=15)
        return self

    def environ(self) -> dict[str, str]:
        """The variables the steps read, pointing at these services."""
        return {
            "REDIS_URL": self.redis_url,
            "CELERY_BROKER_URL": f"{self.broker_redis_url}/15",
            "CELERY_RESULT_BACKEND": f"{self.redis_url}/14",
            "RONGLIAN_BASE_URL": self.gateway_url,
            "SMS_GATEWAY_INBOX_URL": f"{self.gateway_url}/_inbox",
        }

    def stop(self) -> None:
        if self.gateway_process and self.gateway_process.poll() is None:
            self.gateway_process.terminate()
            try:
                self.gateway_process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.gateway_process.kill()
                self.gateway_process.wait()
        for server in (self.redis, self.broker):
            if server:
                server.stop()


def step_dir(default: str) -> Path:
    """The step under test: ``STEP_DIR`` (a student's copy) or the reference folder."""
    path = Path(os.environ.get("STEP_DIR") or ROOT / default).resolve()
    if not (path / "manage.py").exists():
        raise pytest.UsageError(
            f"STEP_DIR={path} is not a step folder: it has no manage.py. "
            f"Point STEP_DIR at a copy of {default}/ (for example workspace/{default[:6]})."
        )
    return path


def configure_step(config: pytest.Config, default_dir: str, separate_broker: bool = False) -> Path:
    """Start the services, export their URLs and load the step's Django project."""
    path = step_dir(default_dir)
    services = Services(separate_broker).start()
    config.stash[SERVICES] = services
    os.environ.update(services.environ())
    os.environ["DJANGO_SETTINGS_MODULE"] = "renranapi.settings"
    sys.path.insert(0, str(path))
    config.stash[STEP_PATH] = path

    import django

    django.setup()
    return path


SERVICES = pytest.StashKey[Services]()
STEP_PATH = pytest.StashKey[Path]()


def concurrently(count: int, one) -> list:
    """Call ``one(i)`` for i in range(count), each in its own thread, all released at the same moment;
    return what each call returned, in order."""
    results: list = [None] * count
    barrier = threading.Barrier(count)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = one(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def left_running(processes, timeout: float = 10.0) -> list:
    """Of ``processes`` (psutil), those still running after ``timeout`` s to exit: zombies are not."""
    import psutil

    _, alive = psutil.wait_procs(processes, timeout=timeout)
    running = []
    for process in alive:
        try:
            if process.status() != psutil.STATUS_ZOMBIE:
                running.append(process)
        except psutil.Error:
            pass  # it exited after all
    return running


class Worker:
    """A real ``celery worker`` process started in the step folder, as a student starts it."""

    def __init__(self, cwd: Path, app: str, *extra: str, env: dict[str, str] | None = None):
        self.cwd = cwd
        self.args = [sys.executable, "-m", "celery", "-A", app, "worker", "--loglevel=info",
                     "--without-gossip", "--without-mingle", "--without-heartbeat",
                     "-n", f"test-{os.getpid()}-{time.monotonic_ns()}@%h", *extra]  # fmt: skip
        # Its own temp dir: a worker killed with SIGKILL cannot clean up after itself; stop() does.
        self.tmpdir = tempfile.mkdtemp(prefix="workshop-worker-")
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", "TMPDIR": self.tmpdir, **(env or {})}
        self.process: subprocess.Popen | None = None
        self.lines: list[str] = []
        self._reader: threading.Thread | None = None

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def start(self, timeout: float = 60.0) -> Worker:
        self.process = subprocess.Popen(
            self.args, cwd=self.cwd, env=self.env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.wait_for(" ready.", timeout=timeout)
        return self

    def _read(self) -> None:
        assert self.process and self.process.stdout
        for line in self.process.stdout:
            self.lines.append(line)

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        """Wait until the worker's output contains ``text``; fail with the output if it does not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log:
                return self.log
            if self.process and self.process.poll() is not None and self._reader:
                self._reader.join(timeout=2)
                if text in self.log:
                    return self.log
                raise AssertionError(
                    f"The worker exited (code {self.process.returncode}) before printing "
                    f"{text!r}. Its output:\n{self.log}"
                )
            time.sleep(0.05)
        raise AssertionError(f"The worker did not print {text!r} within {timeout} s. Its output:\n{self.log}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()  # warm shutdown: finish the current task, then exit
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait()
        if self._reader:
            self._reader.join(timeout=5)
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children), as a crash would."""
        assert self.process
        os.killpg(self.process.pid, 9)
        self.process.wait()
