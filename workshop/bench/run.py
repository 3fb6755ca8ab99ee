"""One run of ``make bench``: the services it starts, the processes it runs, and what it notes.

Everything listens on 127.0.0.1, is started with the shared process runner (``workshop.processes``),
and is stopped by :meth:`Run.close`, also after a failure or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

from workshop.gateway import GatewayClient
from workshop.gateway import command as gateway_command
from workshop.processes import Process, can_use_many_addresses, free_port
from workshop.rabbitmq import RabbitMQServer, find_server
from workshop.redis_server import RedisServer
from workshop.steps import ROOT, step_environment, step_folder

from .plan import Plan

STEPS = {n: step_folder(n) for n in (1, 3, 4)}
# How the producer marks its answers among the lines its libraries may print.
ANSWER = "ANSWER "
# Only when every request must come from 127.0.0.1 (see can_use_many_addresses).
LIFTED_LIMITS = {"SMS_THROTTLE_RATE": "1000000/hour", "SMS_DAILY_LIMIT": "1000000"}
# The bench's numbers share prefixes, and it sends far more than step 4's caps against SMS pumping allow.
LIFTED_CAPS = {"SMS_PREFIX_RATE": "1000000/hour", "SMS_GLOBAL_RATE": "1000000/minute"}


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def wait_http(port: int, path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            status = conn.getresponse().status
            conn.close()
            if status < 500:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing answered on 127.0.0.1:{port}{path} within {timeout} s")


class Run:
    def __init__(self, plan: Plan):
        self.plan = plan
        self.logdir = Path(tempfile.mkdtemp(prefix="workshop-bench-"))
        self.started: list = []  # processes and servers, stopped in reverse order
        self.next_number = 0
        self.many_addresses = can_use_many_addresses()
        self.notes: list[str] = []
        self._rabbitmq: RabbitMQServer | None | bool = False  # False: not tried yet
        try:
            self.redis_server = self.own(RedisServer()).start()
            self.redis_url = self.redis_server.url
            port = free_port()
            self.gateway_url = f"http://127.0.0.1:{port}"
            self.process("gateway", gateway_command(port, 0.2), ROOT, self.env()).start(port=port)
            self.gateway = GatewayClient(self.gateway_url)
            self.gateway.wait_ready(timeout=20)
        except BaseException:  # Ctrl-C included: what did start is stopped
            self.close(keep_logs=True)
            raise

    def own(self, server):
        self.started.append(server)
        return server

    def close(self, keep_logs: bool = False) -> None:
        for thing in reversed(self.started):
            with contextlib.suppress(Exception):
                thing.stop(timeout=10) if isinstance(thing, Process) else thing.stop()
        if not keep_logs:
            shutil.rmtree(self.logdir, ignore_errors=True)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def new_redis(self) -> RedisServer:
        """Another Redis of this run: steps measured side by side each get their own broker."""
        return self.own(RedisServer()).start()

    def rabbitmq(self) -> RabbitMQServer | None:
        """A RabbitMQ node of this run, started on first use; None where the machine has none."""
        if self._rabbitmq is False:
            self._rabbitmq = None
            if find_server():
                self._rabbitmq = self.own(RabbitMQServer()).start()
            else:
                self.note("rabbitmq-server was not found: the RabbitMQ rows are missing.")
        return self._rabbitmq

    def env(self, redis_url: str | None = None, **extra: str) -> dict[str, str]:
        """What the steps read, pointing at this run's Redis and gateway; real credentials left out.

        No DJANGO_SETTINGS_MODULE: each step sets its own, and the peers must not load Django.
        """
        skip = ("RONGLIAN_", "CELERY_", "DJANGO_", "SMS_", "TRUSTED_PROXIES", "WEB_THREADS", "BROKER")
        env = {k: v for k, v in os.environ.items() if not k.startswith(skip)}
        env.update(step_environment(redis_url or self.redis_url, self.gateway_url))
        env.update(PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1", **LIFTED_CAPS)
        if not self.many_addresses:
            # Every request from 127.0.0.1: step 4's per-IP throttle would refuse the benchmark.
            env.update(LIFTED_LIMITS)
        env.update(extra)
        return env

    def redis(self, db: int = 0, url: str | None = None) -> redis.Redis:
        return redis.Redis.from_url(f"{url or self.redis_url}/{db}")

    def numbers(self, count: int) -> int:
        """The first of ``count`` mobile numbers nobody has used in this run."""
        first, self.next_number = self.next_number, self.next_number + count
        return first

    def gateway_at(self, latency: float) -> None:
        self.gateway.reset()
        self.gateway.configure(latency=latency)

    def wait_delivered(self, baseline: int, expected: int, timeout: float, meanwhile=None) -> int:
        """Until the gateway has delivered ``expected`` more than ``baseline``, or the timeout; how many it
        delivered. ``meanwhile(delivered)`` runs at every look (to stop early when a worker died)."""
        deadline = time.monotonic() + timeout
        delivered = 0
        while time.monotonic() < deadline:
            delivered = self.gateway.control()["delivered"] - baseline
            if delivered >= expected:
                break
            if meanwhile:
                meanwhile(delivered)
            time.sleep(0.05)
        return delivered

    def process(self, name: str, args: list[str], cwd: Path, env: dict[str, str], **options) -> Process:
        """A process of this run (not started yet), its output also kept in the run's log folder."""
        path = self.logdir / f"{name}-{time.monotonic_ns()}.log"
        return self.own(Process(args, cwd=cwd, env=env, log=path, **options))

    def gunicorn(
        self, step: int, options: tuple[str, ...], redis_url: str | None = None
    ) -> tuple[Process, int]:
        port = free_port()
        args = [sys.executable, "-m", "gunicorn", "renranapi.wsgi", "-b", f"127.0.0.1:{port}", *options,
                "--log-level", "warning"]  # fmt: skip
        return self.process(f"gunicorn-step{step}", args, STEPS[step], self.env(redis_url)).start(), port

    def worker(self, cwd: Path, app: str, *args: str, loglevel: str = "info", redis_url: str | None = None,
               **env: str) -> Process:  # fmt: skip
        # Gossip, mingle and heartbeat are chatter between workers; each measurement has one worker.
        command = [sys.executable, "-m", "celery", "-A", app, "worker", f"--loglevel={loglevel}",
                   "--without-gossip", "--without-mingle", "--without-heartbeat",
                   "-n", f"bench-{time.monotonic_ns()}@%h", *args]  # fmt: skip
        return self.process(f"worker-{app}", command, cwd, self.env(redis_url, **env)).start()

    @staticmethod
    def answer(proc: Process, timeout: float, what: str) -> dict:
        """The one ANSWER line of a process that prints it and exits; the process is stopped either way."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                exited = not proc.running()
                if exited:
                    proc.stop()  # waits for the reader: the last lines are in
                answers = [line for line in proc.lines if line.startswith(ANSWER)]
                if answers:
                    return json.loads(answers[0][len(ANSWER) :])
                if exited:
                    raise RuntimeError(
                        f"{what} exited without an answer; its log ends:\n{proc.output[-1500:]}"
                    )
                time.sleep(0.02)
            raise RuntimeError(
                f"{what} did not answer within {timeout:g} s; its log ends:\n{proc.output[-1500:]}"
            )
        finally:
            proc.stop(timeout=10)

    def producer(self, cwd: Path, redis_url: str | None = None) -> Producer:
        return Producer(self, cwd, self.env(redis_url)).start()


class Producer:
    """``workshop.bench.producer`` in a step folder: one JSON command a line on its input, one answer line
    (``ANSWER`` and JSON) in its output."""

    def __init__(self, run: Run, cwd: Path, env: dict[str, str]):
        command = [sys.executable, "-m", "workshop.bench.producer"]
        self.proc = run.process("producer", command, cwd, env, stdin=True)

    def start(self) -> Producer:
        self.proc.start()
        self.ask({"op": "ping"}, timeout=60)
        return self

    def ask(self, command: dict, timeout: float = 300) -> dict:
        seen = len(self.proc.lines)
        self.proc.send(json.dumps(command))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answers = [line for line in self.proc.lines[seen:] if line.startswith(ANSWER)]
            if answers:
                return json.loads(answers[0][len(ANSWER) :])
            if not self.proc.running():
                break
            time.sleep(0.01)
        raise RuntimeError(f"the producer did not answer {command['op']!r}:\n{self.proc.output[-3000:]}")

    def stop(self) -> None:
        self.proc.close_input()  # end of input: the producer exits by itself
        self.proc.stop(timeout=10)


def commit(out: Path) -> str:
    """The commit measured, and whether the work tree differed from it (the bench's own outputs aside)."""
    git, out = ["git", "-C", str(ROOT)], out.resolve()
    try:
        head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout
        exclude = f":!{out.relative_to(ROOT)}" if out.is_relative_to(ROOT) else ":!bench-results"
        changed = subprocess.run([*git, "status", "--porcelain", "--", ".", exclude],
                                 capture_output=True, text=True, check=True).stdout  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return head.strip()[:12] + (" + uncommitted changes" if changed.strip() else "")
