"""What every step's tests stand on: a real Redis, the real SMS gateway, real worker processes.

Each step runs in its own pytest process (the steps share module names such as ``renranapi``).
A step's conftest calls :func:`configure_step` from ``pytest_configure``: the services start and
their URLs go into the environment *before* Django reads its settings, exactly as a student's shell
would set them.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import django
import polib
import psutil
import pytest

from tests.brokers import RabbitQueues, RedisQueues
from workshop import rabbitmq
from workshop.gateway import command as gateway_command
from workshop.processes import Process, free_port, wait_until
from workshop.rabbitmq import RabbitMQServer
from workshop.redis_server import RedisServer, ping
from workshop.steps import ROOT, step_environment, step_folder

# Short but real: the view still waits for it in step 1, and the tests stay quick.
TEST_GATEWAY_LATENCY = 0.3
# The number the tests ask codes for, unless a test needs others.
MOBILE = "13800138000"
# A student's copy: a worker quiet this long (s) with no task in hand will not log what a test waits for.
IDLE = 2.0
# Not a speed figure: a bound that only a hang breaks (the step 4 view gives up after about 0.5 s).
NO_HANG = 2.0


class Services:
    """Redis, the broker and the SMS gateway for one pytest process.

    The broker is Redis unless BROKER=rabbitmq (or CELERY_BROKER_URL is an amqp:// URL), as for every
    make target; then it is a RabbitMQ node of the tests' own (``missing`` says why there is none).
    ``separate_broker``: a Redis broker gets a server of its own, so a test can stop it while the cache
    stays up. ``appendonly``: the Redis servers keep their data across a SIGKILL (RedisServer.kill), and
    REDIS_URL is not used, because such tests kill their Redis.
    """

    def __init__(self, separate_broker: bool = False, appendonly: bool = False):
        self.kind = rabbitmq.chosen()
        self.separate_broker = separate_broker
        self.appendonly = appendonly
        self.redis: RedisServer | None = None
        self.broker: RedisServer | RabbitMQServer | None = None
        self.gateway_process: Process | None = None
        self.redis_url = ""
        self.broker_url = ""
        self.gateway_url = ""
        self.missing = ""

    def start(self) -> Services:
        """Start them all; if one cannot start, stop those that did (a failed start leaves nothing)."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        external = None if self.appendonly else os.environ.get("REDIS_URL")
        if external:
            if not ping(external):
                raise pytest.UsageError(f"REDIS_URL={external} does not answer PING.")
            self.redis_url = external.rstrip("/")
        else:
            self.redis = RedisServer(appendonly=self.appendonly).start()
            self.redis_url = self.redis.url
        self.broker_url = f"{self.redis_url}/15"
        if self.kind == "rabbitmq":
            # A node of our own, whatever answers on 5672: tests stop it, and nothing they leave matters.
            if rabbitmq.find_server():
                self.broker = start_rabbitmq()
                self.broker_url = self.broker.url
            else:
                self.missing = "RabbitMQ (no rabbitmq-server on this machine)"
                self.broker_url = rabbitmq.AMQP_URL
        elif self.separate_broker:
            self.broker = RedisServer(appendonly=self.appendonly).start()
            self.broker_url = f"{self.broker.url}/15"
        port = free_port()
        self.gateway_url = f"http://127.0.0.1:{port}"
        self.gateway_process = Process(gateway_command(port, TEST_GATEWAY_LATENCY), cwd=ROOT).start(
            port=port, timeout=15
        )

    def environ(self) -> dict[str, str]:
        """The variables the steps read, pointing at these services."""
        return step_environment(self.redis_url, self.gateway_url, self.broker_url)

    def queues(self) -> RedisQueues | RabbitQueues:
        """What the broker holds (tests/brokers.py); close() it after use."""
        if isinstance(self.broker, RabbitMQServer):
            return RabbitQueues(
                self.broker, held=lambda: sum(w.tasks_in_hand(w.output) for w in list(WORKERS))
            )
        return RedisQueues(self.broker_url)

    def stop(self) -> None:
        if self.gateway_process:
            self.gateway_process.stop(timeout=5)
        for server in (self.redis, self.broker):
            if server:
                server.stop()


def start_rabbitmq() -> RabbitMQServer:
    """A RabbitMQ node of the tests' own (it tries other ports once if one was taken meanwhile)."""
    try:
        return RabbitMQServer().start()
    except RuntimeError as exc:
        raise pytest.UsageError(str(exc)) from None


def step_dir(default: str) -> Path:
    """The step under test: ``STEP_DIR`` (a student's copy) or the reference folder."""
    path = Path(os.environ.get("STEP_DIR") or ROOT / default).resolve()
    if not (path / "manage.py").exists():
        raise pytest.UsageError(
            f"STEP_DIR={path} is not a step folder: it has no manage.py. "
            f"Point STEP_DIR at a copy of {default}/ (for example workspace/{default[:6]})."
        )
    return path


def configure_step(
    config: pytest.Config, default_dir: str, separate_broker: bool = False, appendonly: bool = False
) -> Path:
    """Start the services, export their URLs and load the step's Django project."""
    path = step_dir(default_dir)
    services = Services(separate_broker, appendonly).start()
    config.stash[SERVICES] = services
    os.environ.update(services.environ())
    os.environ["DJANGO_SETTINGS_MODULE"] = "renranapi.settings"
    sys.path.insert(0, str(path))
    config.stash[STEP_PATH] = path

    django.setup()
    return path


SERVICES = pytest.StashKey[Services]()
STEP_PATH = pytest.StashKey[Path]()


def run(args, cwd=ROOT, env=None, without=(), timeout: float = 300) -> subprocess.CompletedProcess:
    """A command run to its end, as a student types it, its output captured as text. ``env`` adds to
    this environment; ``without`` drops the variables that start with any of these prefixes."""
    environ = (
        {k: v for k, v in os.environ.items() if not k.startswith(tuple(without))}
        if without
        else dict(os.environ)
    )
    environ.update(env or {})
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=environ, capture_output=True, text=True, timeout=timeout
    )


def make(*args: str, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    """`make <args>` in the repository, as typed, with these variables set."""
    return run(["make", "--no-print-directory", *args], env=env, timeout=timeout)


def python(code: str, cwd, env=None, without=()) -> subprocess.CompletedProcess:
    """``python -c code`` in a folder (a step's): what a fresh process there sees."""
    return run([sys.executable, "-c", code], cwd=cwd, env=env, without=without, timeout=60)


def missing(what: str, hint: str):
    """A test needs something this machine lacks: in CI (CI=true) that fails, elsewhere it skips, and
    both say how to get it."""
    if os.environ.get("CI", "").lower() not in ("", "0", "false"):
        pytest.fail(f"{what} is missing in CI. {hint}", pytrace=False)
    pytest.skip(f"{what} is missing: {hint}", allow_module_level=True)


def error_text(response) -> str:
    """An error answer's message: {"error": ...} in step 4; before its part 11, DRF's {"detail": ...} or the
    chapter's {"message": ...} will do."""
    body = response.json()
    return body.get("error") or body.get("detail") or body.get("message") or ""


@functools.cache
def catalogue() -> list:
    """The reference step 4's Chinese messages (polib entries)."""
    return list(polib.pofile(str(step_folder(4) / "locale/zh_Hans/LC_MESSAGES/django.po")))


def says(response, chinese: str) -> bool:
    """Whether an error answer says this: in Chinese, or, before step 4's part 11 (translations), in the
    English of the message whose Chinese it is (the reference step's catalogue)."""
    text = error_text(response)
    if chinese in text:
        return True
    english = [re.split(r"%\(|\{", e.msgid)[0].strip() for e in catalogue() if chinese in e.msgstr]
    return any(words and words in text for words in english)


def timed(call):
    """What ``call()`` returned, and how long it took (s)."""
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


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


def wait_until_settled(broker, gateway=None, timeout: float = 30.0) -> None:
    """Until no message is queued or delivered-but-unacknowledged, and the gateway handles no request:
    no more SMS can come.

    acks_late: a message stays unacknowledged until its task has finished (succeeded, failed for good, or
    retried as a new message, which then shows up in a queue). The state must hold for the broker's
    ``settled`` seconds (tests/brokers.py), longer than any moment a message shows nowhere.
    """
    since = []

    def settled() -> bool:
        if broker.pending() or (gateway is not None and gateway.control()["in_flight"]):
            since.clear()
            return False
        since[:] = since or [time.monotonic()]
        return time.monotonic() - since[0] >= broker.settled

    wait_while_working(
        settled,
        lambda: f"{broker.pending()} messages still pending; gateway: {gateway and gateway.control()}",
        timeout,
    )


# The workers the running test started (a student's copy is judged by them: see stop_if_idle).
WORKERS: set = set()


def stop_if_idle(what) -> bool:
    """On a student's copy (STEP_DIR), a wait for what a worker would do ends once every worker the test
    started is idle: nothing more is coming, and the check should say so now rather than after its
    timeout. The reference step waits in full. Returns False (keep waiting) or raises. ``what`` (a string,
    or a function making one) is only read when it raises."""
    if not os.environ.get("STEP_DIR"):
        return False
    workers = [worker for worker in WORKERS if worker.running()]
    if not workers or not all(worker.idle() for worker in workers):
        return False
    tail = "\n".join(workers[0].output.splitlines()[-25:])
    raise AssertionError(
        f"waited for: {what() if callable(what) else what}; but the worker finished every task it received "
        f"without it. The end of its log:\n{tail}"
    )


def wait_while_working(done, failure, timeout: float = 30.0) -> None:
    """wait_until, except that on a student's copy it ends once the workers are idle (stop_if_idle)."""
    wait_until(lambda: done() or stop_if_idle(failure), failure, timeout)


def left_running(processes, timeout: float = 10.0) -> list:
    """Of ``processes`` (psutil), those still running after ``timeout`` s to exit: zombies are not."""
    _, alive = psutil.wait_procs(processes, timeout=timeout)
    running = []
    for process in alive:
        try:
            if process.status() != psutil.STATUS_ZOMBIE:
                running.append(process)
        except psutil.Error:
            pass  # it exited after all
    return running


class Worker(Process):
    """A real ``celery worker`` process started in the step folder, as a student starts it."""

    def __init__(self, cwd: Path, app: str, *extra: str, env: dict[str, str] | None = None, inherit=True):
        args = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            app,
            "worker",
            "--loglevel=info",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-n",
            f"test-{os.getpid()}-{time.monotonic_ns()}@%h",
            *extra,
        ]
        super().__init__(args, cwd=cwd, env=env, inherit=inherit)
        self._seen, self._since = -1, time.monotonic()

    @property
    def log(self) -> str:
        return self.output

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        """Wait until the log contains ``text`` (on a student's copy, only while a worker is busy)."""
        self.wait_until(
            lambda: text in self.output or stop_if_idle(lambda: f"the worker logged {text!r}"),
            repr(text),
            timeout,
        )
        return self.output

    def idle(self) -> bool:
        """Every task it received has ended, and it has logged nothing for IDLE seconds."""
        log, now = self.output, time.monotonic()
        if len(log) != self._seen:
            self._seen, self._since = len(log), now
        return now - self._since > IDLE and self.tasks_in_hand(log) == 0

    @staticmethod
    def tasks_in_hand(log: str) -> int:
        """Tasks received and not yet ended (succeeded, retried, failed), by the worker's own log lines."""
        received = len(re.findall(r"\] received$", log, re.M))
        ended = len(re.findall(r"\] (succeeded in|retry: |raised unexpected)", log))
        return received - ended

    def start(self, timeout: float = 60.0) -> Worker:
        super().start(ready=" ready.", timeout=timeout)
        WORKERS.add(self)
        return self

    def _finish(self) -> None:
        WORKERS.discard(self)
        super()._finish()

    def stop(self, timeout: float = 15.0, group: bool = False) -> None:
        """Warm shutdown by default: SIGTERM to the main process, which lets the task in flight finish;
        ``group=True`` stops an idle worker at once."""
        super().stop(timeout=timeout, group=group)
