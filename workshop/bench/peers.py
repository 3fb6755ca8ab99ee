"""The "peers" scenario of ``make bench``: Celery, RQ, Dramatiq and Huey on the same machine, the same Redis
and the same two jobs, each at its documented best settings (``peer_apps.WORKERS``), and the floor beneath
them all: raw redis-py, LPUSH in one process, BRPOP in another. Then, where the machine has RabbitMQ,
Celery and Dramatiq on it, and Celery's "millions of tasks a minute" settings under the claim's own
conditions. Peers have no target: the rows say what each did, as ratios to Celery's same job on the same
broker.

For each peer and job, one at a time (they share the cores):

- enqueue/s: one producer process, one loop, ``peer_noop`` no-op tasks (or ``peer_sms`` SMS), timed;
- no-op drain/s: the queue preloaded, then one worker started. A ``mark("start")`` job sits before the
  no-op tasks and a ``mark("end")`` job after them; each writes the time the worker ran it into Redis.
  The drain is the no-op tasks ÷ the time between the two: from the first take to the last;
- SMS drain/s: the queue preloaded with SMS to distinct numbers, the gateway answering in 0.2 s, one
  worker started; the SMS ÷ the time from the gateway's first received SMS to its last delivered one.
  Each number is counted in the gateway's inbox: duplicates and missing ones are columns.
"""

from __future__ import annotations

import collections
import importlib.util
import sys
import time
import urllib.error
import urllib.parse

from workshop.processes import Process
from workshop.steps import ROOT

from . import peer_apps
from .producer import nth_mobile
from .run import Run, log

PEERS = ("celery", "rq", "dramatiq", "huey")
ON_RABBITMQ = ("celery", "dramatiq")  # RQ and Huey speak Redis only
# One Redis database a peer, so that flushing one before a measurement touches nobody else's keys.
DB = {"celery": 5, "celery-threads": 5, "celery-tuned": 5, "rq": 6, "dramatiq": 7, "huey": 8, "floor": 9}
MARK_DB = 4
PRIVATE_REDIS = "redis://127.0.0.1:PORT"  # the run's own Redis, in the commands the notes show
LIBRARY = {
    "celery": "celery",
    "celery-threads": "celery",
    "celery-tuned": "celery",
    "rq": "rq",
    "dramatiq": "dramatiq",
    "huey": "huey",
}
SMS_LATENCY = 0.2
SETTLE = 0.5  # after the last expected SMS: time for a duplicate to show itself
# A worker has nothing left to do when it is stopped; an RQ pool of 50 takes over 15 s to shut down warm.
STOP_WAIT = 3
# Where Celery's README says "using RabbitMQ, py-librabbitmq": the C client's last release.
LIBRABBITMQ = ("librabbitmq is not installable here: its last release (2.0.0, May 2018) has wheels for "
               "CPython 2.7 and 3.4-3.6 only, and this is Python {python}; Celery used py-amqp, its default.")  # fmt: skip


class PeerFailed(Exception):
    pass


def peers(run: Run) -> dict:
    return Peers(run).measure()


class Peers:
    def __init__(self, run: Run):
        self.run = run
        self.plan = run.plan
        self.marks = run.redis(MARK_DB)
        self.message_bytes: int | None = None
        self.rabbit = None

    def measure(self) -> dict:
        started = time.monotonic()
        rows: list[dict] = []
        for peer in PEERS:
            rows += self.peer(peer, "redis", f"{self.run.redis_url}/{DB[peer]}")
            if peer == "celery":  # and with the pool step 4 runs
                rows += self.peer(
                    "celery-threads", "redis", f"{self.run.redis_url}/{DB[peer]}", jobs=("sms",)
                )
        rows.append(self.floor())
        if self.plan.rabbitmq:
            self.rabbit = self.start_rabbitmq()
            if self.rabbit is not None:
                for peer in ON_RABBITMQ:
                    rows += self.peer(peer, "rabbitmq", self.rabbit.url)
                rows += self.peer("celery-tuned", "rabbitmq", self.rabbit.url, jobs=("noop",))
        add_ratios(rows)
        return {
            "rows": rows,
            "noop_tasks": self.plan.peer_noop,
            "sms": self.plan.peer_sms,
            "concurrency": self.plan.peer_concurrency,
            "gateway_latency_s": SMS_LATENCY,
            "message_bytes": self.message_bytes,
            "rabbitmq": self.rabbit is not None,
            "librabbitmq": LIBRABBITMQ.format(python=".".join(map(str, sys.version_info[:2]))),
            "seconds": time.monotonic() - started,
        }

    def start_rabbitmq(self):
        log("peers: starting RabbitMQ")
        try:
            return self.run.rabbitmq()
        except Exception as exc:  # a node that does not boot costs its rows, not the bench
            self.run.note(f"peers: RabbitMQ did not start, so its rows are missing: {exc}")
            return None

    # one peer

    def peer(self, peer: str, broker: str, url: str, jobs: tuple[str, ...] = ("noop", "sms")) -> list[dict]:
        rows = []
        for job in jobs:
            command = self.command(peer, job, url)
            command_shown = shown(command).replace(self.run.redis_url, PRIVATE_REDIS)
            row = {"peer": peer, "broker": broker, "job": job, "settings": settings(command),
                   "command": command_shown, "expected": self.count(job), "enqueue_per_s": None,
                   "drain_per_s": None, "delivered": None, "duplicates": None, "missing": None,
                   "failure": None}  # fmt: skip
            missing = self.missing_libraries(peer, broker, job)
            if missing:
                row["failure"] = f"not installed ({', '.join(missing)})"
            else:
                began = time.monotonic()
                try:
                    self.flush(peer, url)
                    env = self.env(peer, url)
                    (self.noop if job == "noop" else self.sms)(row, peer, url, command, env)
                except PeerFailed as exc:
                    row["failure"] = str(exc)
                except Exception as exc:  # one peer's trouble costs its row, not the bench
                    row["failure"] = f"{type(exc).__name__}: {exc}"
                    self.run.note(f"peers: {peer} on {broker}, {job} failed: {row['failure']}")
                row["seconds"] = time.monotonic() - began
            log(f"peers: {peer} on {broker}, {job}: enqueue {fmt(row['enqueue_per_s'])}/s, drain "
                f"{fmt(row['drain_per_s'])}/s" + (f", {row['failure']}" if row["failure"] else ""))  # fmt: skip
            rows.append(row)
        return rows

    def count(self, job: str) -> int:
        return self.plan.peer_noop if job == "noop" else self.plan.peer_sms

    def command(self, peer: str, job: str, url: str) -> list[str]:
        concurrency = str(self.plan.peer_concurrency)
        command = [word.replace(peer_apps.N, concurrency) for word in peer_apps.WORKERS[(peer, job)]]
        if peer == "rq":
            command += ["--url", url, peer_apps.RQ_QUEUE]
        return command

    @staticmethod
    def missing_libraries(peer: str, broker: str, job: str) -> list[str]:
        needed = [LIBRARY[peer]]
        if job == "sms" and peer in ("celery", "dramatiq", "huey"):
            needed.append("gevent")
        if peer == "dramatiq" and broker == "rabbitmq":
            needed.append("pika")
        return [name for name in needed if importlib.util.find_spec(name) is None]

    def env(self, peer: str, url: str) -> dict[str, str]:
        extra = {"PEER_BROKER_URL": url, "CELERY_BROKER_URL": url,
                 "PEER_MARK_URL": f"{self.run.redis_url}/{MARK_DB}"}  # fmt: skip
        if peer == "celery-tuned":
            extra["PEER_CELERY_TUNED"] = "1"
        return self.run.env(**extra)

    def flush(self, peer: str, url: str) -> None:
        """Nothing left by an earlier measurement: this peer's Redis database, or every RabbitMQ queue."""
        self.marks.flushdb()
        if url.startswith("redis"):
            self.run.redis(DB[peer]).flushdb()
            return
        for name in self.rabbit.queues():
            try:
                self.rabbit.api(f"queues/%2F/{urllib.parse.quote(name, safe='')}", method="DELETE")
            except urllib.error.HTTPError as exc:
                if exc.code != 404:  # 404: an auto-delete queue of the worker just stopped, gone by itself
                    raise

    # the measurements

    def noop(self, row: dict, peer: str, url: str, command: list[str], env: dict) -> None:
        count = self.plan.peer_noop
        row["enqueue_per_s"] = self.produce(peer, "noop", count, env)["per_s"]
        if peer == "celery" and url.startswith("redis"):
            # The floor's messages are as big as Celery's (index 0 is the end mark, 1 the last no-op).
            message = self.run.redis(DB[peer]).lindex("celery", 1)
            self.message_bytes = len(message) if message else None
        worker = self.worker(peer, "noop", command, env)
        try:
            started, ended = self.wait_marks(worker, deadline=time.monotonic() + 30 + count / 100)
        finally:
            worker.stop(timeout=STOP_WAIT)
        row["drain_seconds"] = ended - started
        if ended <= started:  # several processes, and so few tasks that the end mark ran first
            raise PeerFailed("too few tasks to time the drain")
        row["drain_per_s"] = count / (ended - started)

    def sms(self, row: dict, peer: str, url: str, command: list[str], env: dict) -> None:
        count = self.plan.peer_sms
        first = self.run.numbers(count)
        expected = {nth_mobile(first + i) for i in range(count)}
        row["enqueue_per_s"] = self.produce(peer, "sms", count, env, "--first", str(first))["per_s"]
        self.run.gateway_at(SMS_LATENCY)
        worker = self.worker(peer, "sms", command, env)
        timeout = 30 + count / 20
        try:
            # The gateway was reset just before: its count is this peer's.
            self.run.wait_delivered(
                0, count, timeout, lambda n: self.alive(worker, f"after {n} of {count} SMS")
            )
            time.sleep(SETTLE)
            inbox = self.run.gateway.inbox()
            gateway = self.run.gateway.control()
        finally:
            worker.stop(timeout=STOP_WAIT)
        sent = collections.Counter(message["to"] for message in inbox)
        row["delivered"] = len(expected & sent.keys())
        row["missing"] = count - row["delivered"]
        row["duplicates"] = sum(n - 1 for n in sent.values()) + len(sent.keys() - expected)
        if len(inbox) > 1:
            span = max(m["delivered_at"] for m in inbox) - min(m["received_at"] for m in inbox)
            row["drain_seconds"] = span
            row["drain_per_s"] = row["delivered"] / span if span > 0 else None
        problems = []
        if row["missing"]:
            problems.append(f"{row['delivered']} of {count} SMS delivered within {timeout:g} s")
        if gateway["rejected"] or gateway["failed"]:
            problems.append(f"the gateway rejected {gateway['rejected']} and failed {gateway['failed']}")
        if problems:
            self.run.note(f"peers: {peer} on {row['broker']}, sms: its worker's log ends:\n{tail(worker)}")
            raise PeerFailed("; ".join(problems))

    def floor(self) -> dict:
        """Raw redis-py between two processes: LPUSH one message at a time, then BRPOP them one at a time."""
        count, url = self.plan.peer_noop, f"{self.run.redis_url}/{DB['floor']}"
        size = self.message_bytes or 1000
        row = {"peer": "floor", "broker": "redis", "job": "noop", "expected": count, "message_bytes": size,
               "settings": f"redis-py LPUSH → BRPOP, {size} B", "command": "python -m workshop.bench.peer_producer "
               f"--peer floor --job noop --count {count} --bytes {size}; python -m workshop.bench.peer_apps "
               f"floor {count}", "enqueue_per_s": None, "drain_per_s": None, "delivered": None,
               "duplicates": None, "missing": None, "failure": None}  # fmt: skip
        if self.message_bytes is None:
            self.run.note("peers: the floor's messages are 1000 B: no Celery message was there to measure.")
        began = time.monotonic()
        try:
            self.flush("floor", url)
            env = self.env("floor", url)
            row["enqueue_per_s"] = self.produce("floor", "noop", count, env, "--bytes", str(size))["per_s"]
            timeout = 30 + count / 100
            args = [sys.executable, "-m", "workshop.bench.peer_apps", "floor", str(count), str(timeout)]
            consumer = self.run.process("peer-floor-consumer", args, ROOT, env)
            answer = self.answer(consumer.start(), time.monotonic() + timeout + 10, "floor consumer")
            if answer["taken"] < count:
                raise PeerFailed(f"the consumer took {answer['taken']} of {count}")
            row["drain_per_s"] = (count - 1) / answer["elapsed"] if answer["elapsed"] else None
        except PeerFailed as exc:
            row["failure"] = str(exc)
        except Exception as exc:
            row["failure"] = f"{type(exc).__name__}: {exc}"
            self.run.note(f"peers: the floor failed: {row['failure']}")
        row["seconds"] = time.monotonic() - began
        log(f"peers: floor: LPUSH {fmt(row['enqueue_per_s'])}/s, BRPOP {fmt(row['drain_per_s'])}/s")
        return row

    # processes

    def produce(self, peer: str, job: str, count: int, env: dict, *extra: str) -> dict:
        args = [sys.executable, "-m", "workshop.bench.peer_producer", "--peer", peer, "--job", job,
                "--count", str(count), *extra]  # fmt: skip
        proc = self.run.process(f"peer-producer-{peer}-{job}", args, ROOT, env)
        return self.answer(proc.start(), time.monotonic() + 30 + count / 100, f"{peer}'s producer")

    def answer(self, proc: Process, deadline: float, what: str) -> dict:
        try:
            return self.run.answer(proc, deadline - time.monotonic(), what)
        except RuntimeError as exc:
            self.run.note(f"peers: {exc}")
            raise PeerFailed(f"{what} failed") from None

    def worker(self, peer: str, job: str, command: list[str], env: dict) -> Process:
        return self.run.process(f"peer-worker-{peer}-{job}", command, ROOT, env).start()

    def alive(self, worker: Process, when: str) -> None:
        if not worker.running():
            self.run.note(
                f"peers: a worker exited {when}: {shown(worker.args)}. Its log ends:\n{tail(worker)}"
            )
            raise PeerFailed(f"the worker exited {when}")

    def wait_marks(self, worker: Process, deadline: float) -> tuple[float, float]:
        keys = [peer_apps.jobs.MARK_PREFIX + "start", peer_apps.jobs.MARK_PREFIX + "end"]
        start = None
        while time.monotonic() < deadline:
            start, end = self.marks.mget(keys)
            if start and end:
                return float(start), float(end)
            self.alive(worker, "before the queue was drained")
            time.sleep(0.02)
        self.run.note(f"peers: {shown(worker.args)} did not drain in time. Its log ends:\n{tail(worker)}")
        raise PeerFailed("did not drain in time" + (" (it never took the first job)" if not start else ""))


def add_ratios(rows: list[dict]) -> None:
    """Each figure ÷ Celery's for the same job on the same broker (the floor and the tuned row: Redis's,
    RabbitMQ's plain Celery)."""
    celery = {(r["broker"], r["job"]): r for r in rows if r["peer"] == "celery"}
    for row in rows:
        ref = celery.get((row["broker"], row["job"]))
        for key in ("enqueue_per_s", "drain_per_s"):
            mine, theirs = row.get(key), ref and ref.get(key)
            row[key.replace("_per_s", "_ratio")] = mine / theirs if mine and theirs else None


def settings(command: list[str]) -> str:
    """The command line without what every run of a peer shares (log levels, chatter, the app's path)."""
    noise = {"--loglevel=warning", "--without-gossip", "--without-mingle", "--without-heartbeat", "-q",
             "--logging-level", "WARNING", "-A", "workshop.bench.peer_apps:celery_app",
             "workshop.bench.peer_apps:dramatiq_broker", "workshop.bench.peer_apps.huey"}  # fmt: skip
    words = shown(command).split()
    if "--url" in words:
        del words[words.index("--url") : words.index("--url") + 2]
    return " ".join(word for word in words if word not in noise)


def shown(command: list[str]) -> str:
    """A command as a reader would type it: ``celery`` for ``python -m celery``, the Huey gevent entry
    point as ``huey_consumer (gevent-patched)``."""
    words = list(command)
    if words[:2] == [sys.executable, "-c"] and "huey" in words[2]:
        words[:3] = ["huey_consumer (gevent-patched)"]
    elif words[:2] == [sys.executable, "-m"]:
        words[:3] = [words[2]]
    elif words and words[0].startswith(str(peer_apps.BIN)):
        words[0] = words[0].rsplit("/", 1)[-1]
    return " ".join(words)


def tail(proc: Process, chars: int = 1500) -> str:
    return proc.output[-chars:].strip() or "(nothing)"


def fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"
