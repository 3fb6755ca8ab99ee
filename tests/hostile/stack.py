"""Step 4 as it runs in production, for the hostile matrix: gunicorn with threads (production mode), a
Celery worker sending events, Flower, two Redis servers (cache, broker; or RabbitMQ as the broker with
BROKER=rabbitmq) that keep their data across a SIGKILL, and the gateway. Plus the loads the matrix sends and what it reads back to check."""

from __future__ import annotations

import http.client
import json
import secrets
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import redis
import requests

from tests.harness import Worker, wait_until_settled
from workshop.gateway import GatewayClient
from workshop.processes import Process, free_port, wait_until
from workshop.steps import step_folder, worker_options

# Every request must be answered within NO_HANG (no hang, whatever fails); the client waits longer.
CLIENT_TIMEOUT = 10.0
# The matrix's provider is quick, so that what is measured is the fault, not the latency.
LATENCY = 0.05
READ_TIMEOUT = 0.5
GLOBAL_RATE = "30/minute"
WORKER_CONCURRENCY = 4


@dataclass
class Answer:
    path: str
    mobile: str | None
    status: int  # 0: no HTTP answer at all (refused, reset, timed out)
    elapsed: float
    body: dict
    headers: dict = field(default_factory=dict)


def request(port, method, path, body=None, source="127.0.0.1", headers=None) -> Answer:
    """One HTTP request on a new connection from ``source`` (any 127.x.y.z is this machine): the
    server sees a different client address per source, as it would for different users."""
    connection = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=CLIENT_TIMEOUT, source_address=(source, 0)
    )
    payload = None if body is None else json.dumps(body)
    headers = {"Content-Type": "application/json", **(headers or {})}
    started = time.monotonic()
    try:
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        raw = response.read()
        status, answer_headers = response.status, dict(response.getheaders())
    except (OSError, http.client.HTTPException) as exc:
        raw, status, answer_headers = json.dumps({"error": repr(exc)}).encode(), 0, {}
    finally:
        connection.close()
    elapsed = time.monotonic() - started
    try:
        parsed = json.loads(raw) if raw else {}
    except ValueError:
        parsed = {"not json": raw[:200].decode(errors="replace")}
    mobile = body.get("mobile") if isinstance(body, dict) else None
    return Answer(path, mobile, status, elapsed, parsed, answer_headers)


class Stack:
    def __init__(self, services, step_path):
        self.services = services
        self.step_path = step_path
        self.gateway = GatewayClient(services.gateway_url)
        self.web_port, self.flower_port = free_port(), free_port()
        self.env = {
            **services.environ(),
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost,[::1]",
            "DJANGO_SECURE_SSL_REDIRECT": "0",  # no TLS proxy in front of it here
            "GUNICORN_BIND": f"127.0.0.1:{self.web_port}",
            "SMS_GLOBAL_RATE": GLOBAL_RATE,
            "RONGLIAN_CONNECT_TIMEOUT": "0.5",
            "FLOWER_UNAUTHENTICATED_API": "true",  # Flower's HTTP API, read by the checks
        }
        self.processes: list[Process] = []  # every one ever started: their logs are all checked
        self.worker: Worker | None = None
        self.events: list[dict] = []
        self._stop = threading.Event()

    def _start(self, args, ready=None, port=None, **env) -> Process:
        process = Process(args, cwd=self.step_path, env={**self.env, **env})
        self.processes.append(process)
        return process.start(ready=ready, port=port, timeout=60)

    def start(self) -> Stack:
        celery = [sys.executable, "-m", "celery", "-A", "mycelery.main"]
        self.web = self._start(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "renranapi.wsgi"], port=self.web_port
        )
        self.start_worker()
        self._start(
            [*celery, "flower", "--address=127.0.0.1", f"--port={self.flower_port}"], port=self.flower_port
        )
        threading.Thread(target=self._listen, daemon=True).start()
        return self

    def start_worker(self, read_timeout: float = READ_TIMEOUT) -> Process:
        """The Procfile's worker, sending task events (-E) so that what events carry can be checked, and
        giving up on the provider after ``read_timeout``. A worker still running is replaced."""
        if self.worker and self.worker.running():
            self.worker.stop(group=True)  # idle between cells: no need to wait for a warm shutdown
        options = [*worker_options(step_folder(4)), "-E", "-c", str(WORKER_CONCURRENCY)]
        env = {**self.env, "RONGLIAN_READ_TIMEOUT": str(read_timeout)}
        self.worker = Worker(self.step_path, "mycelery.main", *options, env=env)
        self.processes.append(self.worker)
        self.worker.start()
        self.worker_read_timeout = read_timeout
        return self.worker

    def use_worker(self, read_timeout: float) -> None:
        """A running worker with this read timeout: the one there is, or a new one."""
        if not (self.worker and self.worker.running() and self.worker_read_timeout == read_timeout):
            self.start_worker(read_timeout)

    def _listen(self):
        """Every event the workers send (what `celery events` and Flower receive), kept for the checks."""
        from mycelery.main import app

        while not self._stop.is_set():
            try:
                with app.connection_for_read() as connection:
                    receiver = app.events.Receiver(connection, handlers={"*": self.events.append})
                    while not self._stop.is_set():
                        try:
                            receiver.capture(limit=None, timeout=0.5, wakeup=False)
                        except TimeoutError:
                            pass
            except Exception:  # the broker is down in some cells: connect again when it is back
                time.sleep(0.2)

    def stop(self) -> None:
        self._stop.set()
        for process in reversed(self.processes):
            process.stop(timeout=10, group=process is not self.worker)

    # What a cell starts from, and waits for.

    def reset(self) -> None:
        """Empty codes, intervals, counters and queues; the gateway back to quick, faultless and empty."""
        try:
            self.settle(timeout=20)  # what the last test left running writes nothing after this
        except AssertionError:
            pass  # a failed test left messages behind: they are flushed below
        for url in (f"{self.services.redis_url}/0", f"{self.services.redis_url}/1"):
            client = redis.Redis.from_url(url)
            client.flushdb()
            client.close()
        queues = self.services.queues()
        queues.clear()
        queues.close()
        self.gateway.configure(latency=LATENCY, fail_rate=0.0, fail_next=0, hold=False)
        self.gateway.release()
        self.gateway.reset()
        self.events.clear()

    def hand_out_again(self) -> None:
        """What the broker does with a dead worker's unacknowledged messages: RabbitMQ has put them back in
        their queue when the worker's connection dropped; Redis does once the visibility timeout has
        passed (kombu's own restore, now instead of after the visibility timeout)."""
        from mycelery.main import app

        queues = self.services.queues()
        try:
            if queues.kind == "rabbitmq":
                wait_until(lambda: queues.ready("sms") >= 1, "the messages back in the sms queue", 10)
                return
            assert queues.unacked() >= 1, "the crash should leave messages unacknowledged"
        finally:
            queues.close()
        options = {**app.conf.broker_transport_options, "visibility_timeout": 0}
        with app.connection_for_write(transport_options=options) as connection:
            connection.default_channel.qos.restore_visible(num=1000, interval=1)

    def cache_client(self) -> redis.Redis:
        return redis.Redis.from_url(f"{self.services.redis_url}/1", decode_responses=True)

    def settle(self, timeout: float = 40.0) -> None:
        """Until nothing is queued, held by a worker or being handled by the gateway: no more SMS can come."""
        broker = self.services.queues()
        try:
            wait_until_settled(broker, self.gateway, timeout)
        finally:
            broker.close()

    # The loads: each returns every answer.

    def send(self, mobile, source="127.0.0.1") -> Answer:
        return request(self.web_port, "POST", "/users/sms/", {"mobile": mobile}, source=source)

    def health(self, source="127.0.0.1") -> Answer:
        return request(self.web_port, "GET", "/healthz", source=source)

    def run(self, calls, threads) -> list[Answer]:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            return list(pool.map(lambda call: call(), calls))


def burst(stack: Stack) -> list[Answer]:
    """50 requests for one number at the same moment, from 50 addresses (a double click times fifty)."""
    return stack.run(
        [lambda i=i: stack.send("13800138000", source=f"127.0.1.{i + 1}") for i in range(50)], 50
    )


def spread(stack: Stack) -> list[Answer]:
    """200 numbers from 50 addresses (SMS pumping): 40 share one prefix, 160 have a prefix each."""
    numbers = [f"1390013{i:04d}" for i in range(40)] + [f"13{i:05d}0000" for i in range(160)]
    calls = [lambda i=i, n=n: stack.send(n, source=f"127.0.2.{i % 50 + 1}") for i, n in enumerate(numbers)]
    return stack.run(calls, 20)


def health_flood(stack: Stack) -> list[Answer]:
    """100 health checks at once (a load balancer gone wild) with 20 sends among them."""
    calls = [lambda i=i: stack.health(source=f"127.0.3.{i % 50 + 1}") for i in range(100)]
    for i in range(20):
        calls.insert(i * 5, lambda i=i: stack.send(f"13700{i:02d}0000", source=f"127.0.4.{i + 1}"))
    return stack.run(calls, 50)


LOADS = {"burst on one number": burst, "200 numbers from 50 addresses": spread, "health flood": health_flood}


# What the checks read back: every place a code or a number could leak to.


def flower_api(stack: Stack) -> str:
    """Flower's HTTP API: the workers (it asks them with inspect) and the tasks (from events)."""
    base = f"http://127.0.0.1:{stack.flower_port}/api"
    texts = []
    for path in ("/workers?refresh=1", "/tasks"):
        response = requests.get(base + path, timeout=10)
        assert response.status_code == 200, f"Flower {path}: {response.status_code} {response.text[:200]}"
        texts.append(response.text)
    for task_id in list(json.loads(texts[-1]))[:5]:
        texts.append(requests.get(f"{base}/task/info/{task_id}", timeout=10).text)
    return "\n".join(texts)


def inspect_replies() -> str:
    """What `celery inspect active / reserved / scheduled / revoked` prints."""
    from mycelery.main import app

    inspect = app.control.inspect(timeout=1.0, limit=1)  # the stack runs one worker: no need to wait longer
    return repr([inspect.active(), inspect.reserved(), inspect.scheduled(), inspect.revoked()])
