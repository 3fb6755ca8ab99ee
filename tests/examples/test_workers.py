"""docs/examples/workers: what docs/workers.md says about stopping a worker and about a provider's quota, run
as the page has a student run it: `celery -A stopping worker`, a task sent with `python -c`, Ctrl-C."""

from __future__ import annotations

import signal
import sys
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest
import redis

from tests.harness import Worker, run
from workshop.redis_server import RedisServer
from workshop.steps import ROOT, step_folder

EXAMPLE = ROOT / "docs" / "examples" / "workers"
# The page's command that sends the slow task, as typed.
SEND = "from stopping import send_slowly; send_slowly.delay()"
# No bytecode written into docs/ (mkdocs would copy it into the site).
QUIET = {"PYTHONDONTWRITEBYTECODE": "1"}


@pytest.fixture(scope="module")
def redis_url():
    with RedisServer() as server:
        yield server.url


class Stopped:
    """One worker of the example, stopped as a terminal's Ctrl-C stops it, with what it left in the broker."""

    def __init__(self, redis_url: str, db: int, seconds: int, *options: str):
        self.broker = f"{redis_url}/{db}"
        self.env = {**QUIET, "CELERY_BROKER_URL": self.broker, "SEND_SECONDS": str(seconds)}
        self.worker = Worker(EXAMPLE, "stopping", *options, env=self.env)

    def sending(self) -> Stopped:
        """The worker started, the page's task sent, and the task running."""
        self.worker.start()
        sent = run([sys.executable, "-c", SEND], cwd=EXAMPLE, env=self.env, timeout=60)
        assert sent.returncode == 0, sent.stderr
        self.worker.wait_for("s to go")
        return self

    def ctrl_c(self, times: int) -> Stopped:
        """Ctrl-C in the worker's terminal: SIGINT to its whole process group, the second once the first has
        started the warm shutdown."""
        try:
            for n in range(1, times + 1):
                self.worker.signal(signal.SIGINT)
                # Each Ctrl-C says what the next one will do.
                self.worker.wait_until(
                    lambda n=n: self.log.count("Hitting Ctrl+C again") == n, f"Ctrl-C {n}", 10
                )
            self.worker.popen.wait(timeout=30)
        finally:
            self.worker.kill()
        return self

    def child_killed(self) -> Stopped:
        """The child process running the task killed (SIGKILL, as the OOM killer does); the worker stays."""
        try:
            [child] = psutil.Process(self.worker.pid).children()
            child.kill()
            self.worker.wait_for(" succeeded in ", timeout=30)
        finally:
            self.worker.kill()
        return self

    @property
    def log(self) -> str:
        return self.worker.log.partition(" ready.")[2]

    def queued(self) -> int:
        client = redis.Redis.from_url(self.broker)
        try:
            return client.llen("celery")
        finally:
            client.close()


@pytest.fixture(scope="module")
def stopped(redis_url):
    """The example's worker stopped in four ways, side by side (each takes seconds of waiting): Ctrl-C once
    and twice, and its pool's child process killed."""
    # (how, Ctrl-C times, the task's seconds, worker options). The task that must still be running at the
    # second Ctrl-C (prefork's) lasts long enough for a loaded machine; its cold stop does not wait for it.
    cases = {
        "threads, Ctrl-C once": (Stopped.ctrl_c, 1, 2, "--pool=threads"),
        "prefork, Ctrl-C twice": (Stopped.ctrl_c, 2, 15, "--pool=prefork", "--concurrency=1"),
        "threads, Ctrl-C twice": (Stopped.ctrl_c, 2, 2, "--pool=threads"),  # either outcome passes
        "prefork, child killed": (Stopped.child_killed, None, 2, "--pool=prefork", "--concurrency=1"),
    }

    def stop(db, how, times, seconds, *options):
        sending = Stopped(redis_url, db, seconds, *options).sending()
        return how(sending, times) if times else how(sending)

    with ThreadPoolExecutor(max_workers=len(cases)) as pool:
        runs = {name: pool.submit(stop, db, *case) for db, (name, case) in enumerate(cases.items(), start=10)}
        return {name: run.result() for name, run in runs.items()}


def test_ctrl_c_once_finishes_the_task_twice_gives_its_message_back(stopped):
    """Once: a warm shutdown, the task finishes. Twice, prefork: the task is stopped, its message restored.
    Twice, threads: Celery cannot stop a thread (NotImplementedError); either way, no message is lost."""
    warm, prefork, threads = (stopped[f"{case}"] for case in
                              ("threads, Ctrl-C once", "prefork, Ctrl-C twice", "threads, Ctrl-C twice"))  # fmt: skip

    assert "Warm shutdown" in warm.log and ": sent" in warm.log and " succeeded in " in warm.log, warm.log
    assert warm.queued() == 0, "acknowledged once it ran: nothing left to hand out again"

    assert "Restoring 1 unacknowledged message(s)" in prefork.log, prefork.log
    assert ": sent" not in prefork.log, "the child process that ran the task was stopped"
    assert prefork.queued() == 1, "acks_late: the message is back in the queue for the next worker"

    assert "does not implement kill_job" in threads.log, threads.log
    finished = ": sent" in threads.log and threads.queued() == 0
    given_back = "Restoring 1 unacknowledged message(s)" in threads.log and threads.queued() == 1
    assert finished != given_back, f"the task either finished or went back, once:\n{threads.log}"


def test_a_prefork_child_killed_mid_task_has_its_task_run_again(stopped):
    """reject_on_worker_lost: the OOM killer's SIGKILL to the child running the task; the main process puts
    the message back instead of failing the task, and a new child runs it."""
    killed = stopped["prefork, child killed"]

    assert "WorkerLostError" in killed.log, killed.log
    assert killed.log.count("] received") == 2 and killed.log.count(": sent") == 1, killed.log
    assert killed.queued() == 0


def test_the_quota_setting_reaches_the_task():
    """quota_settings.py, step 4's settings with CELERY_TASK_ANNOTATIONS: step 4's send_sms gets the limit
    that a worker's token bucket reads (the one `control rate_limit` sets in a running worker)."""
    show = "from mycelery.sms.tasks import send_sms; print(send_sms.rate_limit)"
    env = {**QUIET, "PYTHONPATH": str(EXAMPLE)}

    with_quota = run([sys.executable, "-c", show], cwd=step_folder(4),
                     env={**env, "DJANGO_SETTINGS_MODULE": "quota_settings"})  # fmt: skip
    without = run([sys.executable, "-c", show], cwd=step_folder(4), env=env, without=["DJANGO_SETTINGS"])

    assert with_quota.returncode == 0, with_quota.stderr
    assert with_quota.stdout.split() == ["10/m"]
    assert without.stdout.split() == ["None"], without.stderr
