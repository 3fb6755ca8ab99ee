"""Something to watch: Flower and a health check.

Part 10 of step 4: the page's section step4.md#monitoring."""

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.harness import MOBILE, NO_HANG, run, timed
from workshop.gateway import leaks
from workshop.processes import Process, wait_until
from workshop.steps import worker_options

# Stands on part 0 and part 5: without them, these tests fail at once (tests/step04/conftest.py).
NEEDS = [0, 5]


# `celery` is the console script of the same package as `python -m celery`.
CELERY = [sys.executable, "-m", "celery", "-A", "mycelery.main"]


def celery(step_path, *args):
    return run([*CELERY, *args], cwd=step_path, timeout=60)


def inspect(step_path, command):
    """`celery -A mycelery.main inspect <command>` as typed. A worker that has just started may miss its
    1 s wait on a busy machine ("No nodes replied"): asked again until it answers, as the health test does."""
    results = []
    wait_until(
        lambda: results.append(celery(step_path, "inspect", command)) or results[-1].returncode == 0,
        lambda: f"an answer to inspect {command}: {results[-1].stderr if results else ''}",
        timeout=20,
    )
    return results[-1]


def test_health_reports_redis_broker_and_workers(
    client, services, stopped, start_worker, sms_worker, settings
):
    """/healthz: 503 naming what is wrong (no worker on the sms queue, broker or Redis down), else 200."""
    settings.HEALTH_CHECK_CACHE = 0  # a fresh answer each time here: the cache has its own test
    unhealthy = client.get("/healthz")
    assert unhealthy.status_code == 503
    assert "workers: no worker consumes the sms queue" in unhealthy.json()["problems"]

    # A worker that consumes only the default queue answers, but would never send a code.
    default_queue_only = start_worker("mycelery.main", "-Q", "celery")
    from mycelery.main import app

    wait_until(
        lambda: app.control.inspect(timeout=2.0).active_queues(), "an answer from the worker", timeout=20
    )
    assert client.get("/healthz").status_code == 503
    default_queue_only.stop()

    worker = sms_worker()
    # A worker that has just started may miss the health check's short inspect: ask until it answers.
    wait_until(lambda: client.get("/healthz").status_code == 200, "a healthy /healthz", timeout=20)
    healthy = client.get("/healthz")
    assert healthy.status_code == 200, healthy.json()
    assert healthy.json()["redis"] == healthy.json()["broker"] == "ok"
    assert any(name.startswith("test-") for name in healthy.json()["workers"])
    worker.stop()

    stopped(services.broker)
    broken, elapsed = timed(lambda: client.get("/healthz"))
    assert elapsed < NO_HANG
    assert broken.status_code == 503
    assert broken.json()["broker"].startswith("unreachable")
    assert broken.json()["redis"] == "ok"

    stopped(services.redis)
    both = client.get("/healthz")
    assert both.status_code == 503
    assert both.json()["redis"].startswith("unreachable")


def test_a_worker_without_q_consumes_every_queue_the_settings_declare(start_worker, client, settings):
    """Troubleshooting's "SMS never arrives": without -Q, step 4's worker consumes every queue in
    CELERY_TASK_QUEUES, sms included; only -Q celery (or routes without CELERY_TASK_QUEUES) leaves sms out."""
    from mycelery.main import app

    settings.HEALTH_CHECK_CACHE = 0
    start_worker("mycelery.main")
    replies = {}

    def ask():
        # A connection of its own: the app's pooled ones may predate a broker restart in an earlier test.
        with app.connection_for_write() as connection:
            replies.update(app.control.inspect(timeout=2.0, connection=connection).active_queues() or {})
        return replies

    wait_until(ask, "an answer from the worker")
    assert {q["name"] for queues in replies.values() for q in queues} == {"celery", "sms"}
    wait_until(lambda: client.get("/healthz").status_code == 200, "a healthy /healthz", timeout=20)


def test_health_answers_while_every_pooled_connection_is_taken(client, sms_worker, settings):
    """/healthz answers in time even when every connection of .delay()'s pool is busy: it takes none.

    kombu's pool waits for a free connection without a timeout; a health check that borrowed from it
    would hang behind a burst of publishes, or deadlock with other health checks."""
    from mycelery.main import app

    settings.HEALTH_CHECK_CACHE = 0
    sms_worker()
    pool = app.amqp.producer_pool
    held = [pool.acquire(block=True) for _ in range(app.conf.broker_pool_limit)]
    try:
        answers = []
        check = threading.Thread(target=lambda: answers.append(client.get("/healthz")), daemon=True)
        check.start()
        check.join(timeout=NO_HANG)
        assert not check.is_alive(), "the health check waited for a pooled connection"
    finally:
        for producer in held:
            producer.release()

    assert answers[0].status_code in (200, 503) and answers[0].json()["broker"] == "ok"


@pytest.mark.parametrize(
    ("command", "shows"),
    [("registered", "mycelery.sms.tasks.send_sms"), ("active_queues", "'name': 'sms'")],
    ids=["registered", "active_queues"],
)
def test_inspect_shows_the_sms_task_and_its_queue(step_path, sms_worker, command, shows):
    """`celery -A mycelery.main inspect registered` names the SMS task; `inspect active_queues` the sms queue."""
    sms_worker()

    result = inspect(step_path, command)

    assert result.returncode == 0, result.stderr
    assert shows in result.stdout


# A second number, with a prefix of its own (the prefix cap counts numbers that share one).
OTHER = "13900139000"


def secrets_in(sms_redis, *mobiles):
    """The codes Redis holds for these numbers: what no monitoring output may show, with the numbers."""
    return {sms_redis.get(f"sms_{mobile}") for mobile in mobiles} - {None}


def test_inspect_active_reserved_stats_and_scheduled(step_path, sms_worker, send, gateway, broker, sms_redis):
    """`inspect active`, `reserved`, `stats` and `scheduled` show what the worker holds, each task with only
    its ref: never a number or a code.

    monitoring.md#inspect: `active` shows the send the provider holds; `reserved` is empty while the next
    message waits in the broker (prefetch 1, acks_late); `stats` shows the thread pool and a prefetch count
    equal to its threads; `scheduled` a message with an eta, as a retry waiting out its backoff is."""
    from mycelery.sms.tasks import send_sms

    gateway.configure(hold=True)
    # The Procfile's worker with one thread instead of 50: two sends fill it, where fifty-one would.
    sms_worker("--concurrency=1")
    assert send().status_code == send(OTHER).status_code == 200
    gateway.wait_until_held()
    refs = {sms_redis.get(key): key.removeprefix("sms_send_") for key in sms_redis.keys("sms_send_*")}
    secrets = secrets_in(sms_redis, MOBILE, OTHER)

    with ThreadPoolExecutor() as pool:  # the worker's state holds still while the gateway holds the SMS
        active, reserved, stats = pool.map(
            lambda command: inspect(step_path, command), ["active", "reserved", "stats"]
        )

    for result in (active, reserved, stats):
        assert result.returncode == 0, result.stderr
        assert not leaks(result.stdout, secrets, {MOBILE, OTHER}), result.stdout
    assert "'name': 'mycelery.sms.tasks.send_sms'" in active.stdout
    shown = [ref for ref in refs.values() if f"'args': ['{ref}']" in active.stdout]
    assert len(shown) == 1, f"one send in hand, its ref its only argument ({refs}):\n{active.stdout}"
    assert "'acknowledged': False" in active.stdout, "acks_late: acknowledged once the task has run"
    assert "- empty -" in reserved.stdout, reserved.stdout
    assert broker.ready("sms") == 1, "the second message should wait in the broker, not in the worker"
    assert '"implementation": "celery.concurrency.thread:TaskPool"' in stats.stdout
    assert '"max-concurrency": 1' in stats.stdout and '"prefetch_count": 1,' in stats.stdout, stats.stdout

    gateway.release()
    gateway.wait_for_messages(OTHER)
    # What a retry publishes: the same ref, with an eta. The worker holds it until then.
    send_sms.apply_async((refs[MOBILE],), countdown=60)
    scheduled = inspect(step_path, "scheduled")

    assert scheduled.returncode == 0, scheduled.stderr
    assert "'eta':" in scheduled.stdout, scheduled.stdout
    assert f"'args': ['{refs[MOBILE]}']" in scheduled.stdout
    assert not leaks(scheduled.stdout, secrets, {MOBILE, OTHER}), scheduled.stdout


class Terminal:
    """A full-screen program (`celery events`) on a pseudo-terminal of its own, as in a student's terminal;
    ``screen`` is all it has drawn, escape sequences left out."""

    def __init__(self, args, cwd, rows=30, columns=150):
        self.master, terminal = pty.openpty()
        fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        self.process = subprocess.Popen(
            args,
            cwd=cwd,
            env={**os.environ, "TERM": "xterm"},
            stdin=terminal,
            stdout=terminal,
            stderr=terminal,
            start_new_session=True,
        )
        os.close(terminal)
        self.chunks = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # the program has exited
                return
            if not data:
                return
            self.chunks.append(data)

    @property
    def screen(self) -> str:
        drawn = b"".join(self.chunks).decode(errors="replace")
        return re.sub(r"\x1b(\[[0-9;?]*[A-Za-z]|[()][A-Z0-9]|[=>])", "", drawn)

    def stop(self):
        self.process.kill()
        self.process.wait()
        os.close(self.master)


def test_events_and_events_dump_show_the_task_with_only_its_ref(
    step_path, sms_worker, send, gateway, sms_redis
):
    """`control enable_events`, then `events` and `events --dump`: the send's task, received and succeeded,
    with only its ref, never the number or the code.

    monitoring.md#events. And AsyncResult of that task id stays PENDING: send_sms stores no result
    (ignore_result)."""
    from celery.result import AsyncResult

    from mycelery.main import app

    # The Procfile's worker line as it is (sms_worker has checked it): the tests' workers run without
    # heartbeats, and so without the event dispatcher that enable_events turns task events on in.
    worker = Process([*CELERY, "worker", *worker_options(step_path), "--loglevel=info"], cwd=step_path)
    dump = Process([*CELERY, "events", "--dump"], cwd=step_path)
    monitor = None
    try:
        worker.start(ready=" ready.")
        monitor = Terminal([*CELERY, "events"], step_path)
        dump.start(ready="starting capture", timeout=30)
        wait_until(lambda: "Keys: j:down" in monitor.screen, "the curses monitor's screen", timeout=30)
        enabled = celery(step_path, "control", "enable_events")
        assert enabled.returncode == 0, enabled.stderr
        assert "task events enabled" in enabled.stdout, "the worker sent no task events before"
        assert send().status_code == 200
        dump.wait_until(lambda: " task succeeded" in dump.output, "a task-succeeded event", timeout=20)
        wait_until(lambda: "SUCCESS" in monitor.screen, "the monitor showing SUCCESS", timeout=10)
    finally:
        dump.kill()
        worker.kill()
        if monitor:
            monitor.stop()
    ref = sms_redis.keys("sms_send_*")[0].removeprefix("sms_send_")
    secrets = secrets_in(sms_redis, MOBILE) | {m["datas"][0] for m in gateway.inbox(to=MOBILE)}

    received = re.search(r" task received: mycelery\.sms\.tasks\.send_sms\(([\w-]+)\) (.*)", dump.output)
    assert received, dump.output
    assert received[2].startswith(f"args=('{ref}',) kwargs={{}}"), received[2]
    assert f"send_sms({received[1]}) args=('{ref}',)" in dump.output.split(" task succeeded")[1]
    assert not leaks(dump.output, secrets, {MOBILE}), dump.output
    assert f"{received[1]} " in monitor.screen and "mycelery.sms.tasks.send_sms" in monitor.screen
    assert not leaks(monitor.screen, secrets, {MOBILE}), monitor.screen
    # The task ran and succeeded, but left nothing in the result backend: PENDING means "not known".
    assert AsyncResult(received[1], app=app).state == "PENDING"


def test_purge_empties_the_queues(step_path, send, broker):
    """`celery -A mycelery.main purge -f` removes a queued message."""
    assert send().status_code == 200
    assert broker.ready("sms") == 1

    result = celery(step_path, "purge", "-f")

    assert result.returncode == 0, result.stderr
    assert "Purged 1 message" in result.stdout
    assert broker.ready("sms") == 0


def test_the_windows_pool_drains_a_queue_in_time(send, gateway, sms_worker):
    """The Windows command (troubleshooting.md#windows-pool): `--pool=threads` drains 100 queued quick tasks
    and a real SMS behind them without a pause, on either broker.

    Not a speed figure: a bound that a pool stalling 10 s at a time breaks, as `--pool=solo` can on
    RabbitMQ with late acknowledgement (rabbitmq.md#solo). Solo's stall is a race that this queue, through
    step 4's task, did not trigger in three runs: this guards the recommended pool, not solo."""
    from mycelery.sms.tasks import send_sms

    for i in range(100):  # messages whose send has expired: the task looks in Redis and returns
        send_sms.delay(f"expired-{i}")
    assert send().status_code == 200  # and one real SMS, behind them
    worker = sms_worker("--pool=threads")

    gateway.wait_for_messages(MOBILE, count=1, timeout=20)
    assert worker.log.count("has expired or was used; not sending it") == 100
    assert "(thread)" in worker.log, "the worker should say: concurrency: N (thread)"


def test_control_rate_limit_holds_each_worker_to_it_on_its_own(step_path, sms_worker):
    """`celery -A mycelery.main control rate_limit mycelery.sms.tasks.send_sms 1/m` (workers.md#rate-limit):
    each worker says so, then runs one send and holds the next: the limit is per worker."""
    from mycelery.sms.tasks import send_sms

    # The Procfile's worker with one thread: one message in hand at a time (prefetch 1).
    workers = [sms_worker("--concurrency=1") for _ in range(2)]

    result = celery(step_path, "control", "rate_limit", "mycelery.sms.tasks.send_sms", "1/m")

    assert result.returncode == 0, result.stderr
    assert result.stdout.count("new rate limit set successfully") == 2, result.stdout
    for i in range(4):  # messages whose send has expired: the task looks in Redis and returns at once
        send_sms.delay(f"expired-{i}")
    # Each worker runs one at once and takes the next, which waits a minute for its turn: a limit shared by
    # both would have let one run in that minute, not two.
    wait_until(
        lambda: sum(w.log.count("] received") for w in workers) == 4, "four messages taken", timeout=20
    )
    ran = [w.log.count("has expired or was used; not sending it") for w in workers]
    assert ran == [1, 1], f"each worker should run one and hold one: {ran}"
