"""Step 2: a standalone Celery app. A real worker process runs the tasks; Redis carries the messages."""

import os
import sys
import time
import uuid
from pathlib import Path

import pytest
from celery.exceptions import NotRegistered

from tests.harness import python, run

RESULT_TIMEOUT = 30
# What the step 2 page (docs/step2.md#call) has a student type in the step folder, with the virtual
# environment active. The tests below run these exact lines.
DELAY_COMMAND = 'python -c "from mycelery.sms.tasks import send_sms2; r = send_sms2.delay(); print(r.get(timeout=10), r.state)"'
# What docs/monitoring.md#async-result has a student type in a Python shell in the step folder.
ASYNC_RESULT = Path(__file__).resolve().parents[2] / "docs" / "examples" / "monitoring" / "async_result.py"
TYPO_COMMAND = """python -c "from mycelery.main import app; app.send_task('send_sms3').get(timeout=10)\""""
# The result store keeps what a task returns: the step's tasks return a string to show it.
RETURNS = (
    'the task {0} ran, but returned something else: end {0} with `return "{0}: ok"`, as the step 2 page shows'
)


def run_as_typed(command, step_path):
    """A line from the step 2 page, run by a shell in the step folder, as in an activated terminal."""
    page = (Path(__file__).resolve().parents[2] / "docs" / "step2.md").read_text()
    assert command in page, f"the step 2 page no longer shows {command!r}: update this test with it"
    # Activating the virtual environment puts its bin/ first on PATH: the same for `python` here.
    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])
    return run(["bash", "-c", command], cwd=step_path, env={"PATH": path}, timeout=60)


def test_the_step_has_the_mycelery_package(step_path):
    """Step 2 adds the package mycelery/ (config.py, main.py, sms/tasks.py)."""
    missing = [
        name
        for name in (
            "mycelery/__init__.py",
            "mycelery/config.py",
            "mycelery/main.py",
            "mycelery/sms/tasks.py",
        )
        if not (step_path / name).exists()
    ]
    assert not missing, (
        f"Step 2 adds the Celery package mycelery/; missing in {step_path}: {', '.join(missing)}"
    )


def test_config_uses_redis_db_15_and_14_overridable_from_the_environment(services, step_path):
    """mycelery/config.py: broker on Redis db 15, results on db 14; the environment overrides both."""
    from mycelery.main import app

    assert app.main == "renran", 'main.py should create the app as Celery("renran")'
    # The tests export CELERY_BROKER_URL / CELERY_RESULT_BACKEND, and they win over config.py
    # (with BROKER=rabbitmq, the broker is the tests' RabbitMQ).
    assert app.conf.broker_url == services.broker_url
    assert app.conf.result_backend == f"{services.redis_url}/14"

    # Without them, what config.py says is what the worker uses: the chapter's db 15 and db 14.
    code = "from mycelery.main import app; print(app.conf.broker_url); print(app.conf.result_backend)"
    shown = python(code, step_path, without=["CELERY_"])
    assert shown.returncode == 0, shown.stderr
    broker_url, result_backend = shown.stdout.split()
    assert broker_url.startswith("redis://") and broker_url.endswith("/15"), (
        f"config.py should set broker_url to Redis db 15, e.g. redis://127.0.0.1:6379/15 (it is {broker_url})"
    )
    assert result_backend.startswith("redis://") and result_backend.endswith("/14"), (
        f"config.py should set result_backend to Redis db 14, e.g. redis://127.0.0.1:6379/14 (it is {result_backend})"
    )


def test_the_worker_lists_both_task_names(start_worker):
    """A real worker registers send_sms (its default name) and send_sms2 (its own name)."""
    worker = start_worker()

    # The worker's banner lists the registered tasks under [tasks].
    assert ". mycelery.sms.tasks.send_sms" in worker.log
    assert ". send_sms2" in worker.log


def test_delay_runs_on_a_real_worker_and_the_result_backend_says_success(start_worker, step_path):
    """.delay() runs each task on a real worker; the result backend holds SUCCESS and the return value, which
    AsyncResult finds again by the task id alone."""
    from mycelery.sms.tasks import send_sms, send_sms2

    worker = start_worker()

    first = send_sms.delay()
    second = send_sms2.delay()

    assert first.get(timeout=RESULT_TIMEOUT) == "send_sms: ok", RETURNS.format("send_sms")
    assert second.get(timeout=RESULT_TIMEOUT) == "send_sms2: ok", RETURNS.format("send_sms2")
    assert first.state == second.state == "SUCCESS"
    # What the task printed shows up in the worker's log.
    worker.wait_for("发送短信任务2!!!")

    # The same call as the step 2 page has a student type it, in the step folder.
    typed = run_as_typed(DELAY_COMMAND, step_path)
    assert typed.returncode == 0, f"{DELAY_COMMAND}\n{typed.stdout}{typed.stderr}"
    assert typed.stdout == "send_sms2: ok SUCCESS\n", (
        RETURNS.format("send_sms2") + f"; it printed {typed.stdout!r}"
    )

    # The monitoring page's lines, run in the step folder: the id is enough, and an unknown id is PENDING.
    looked_up = python(ASYNC_RESULT.read_text(), step_path)
    assert looked_up.returncode == 0, looked_up.stderr
    task_id, value, state, unknown = looked_up.stdout.splitlines()
    assert str(uuid.UUID(task_id)) == task_id
    assert (value, state, unknown) == ("send_sms2: ok", "SUCCESS True", "PENDING"), looked_up.stdout


def test_send_task_finds_the_task_by_its_name(start_worker):
    """app.send_task("send_sms2") finds the task by its name alone."""
    from mycelery.main import app

    start_worker()

    result = app.send_task("send_sms2")

    assert result.get(timeout=RESULT_TIMEOUT) == "send_sms2: ok", RETURNS.format("send_sms2")
    assert result.state == "SUCCESS"


def test_a_message_waits_in_the_broker_until_a_worker_starts(start_worker, broker):
    """With no worker, the message waits in the broker; a worker started later runs it."""
    from mycelery.sms.tasks import send_sms2

    result = send_sms2.delay()

    assert broker.ready("celery") == 1, "the message should wait in the broker's 'celery' list"
    assert result.state == "PENDING"

    start_worker()

    assert result.get(timeout=RESULT_TIMEOUT) == "send_sms2: ok", RETURNS.format("send_sms2")
    assert broker.ready("celery") == 0


def test_an_unregistered_task_name_is_reported_by_the_worker_not_run(start_worker, broker, step_path):
    """A task name nobody registered: the worker says so and the result is FAILURE."""
    from mycelery.main import app

    worker = start_worker()

    result = app.send_task("send_sms3")  # a typo: no task has this name

    worker.wait_for("Received unregistered task of type 'send_sms3'")
    # The worker discards the message and records the error: the result never becomes SUCCESS.
    with pytest.raises(NotRegistered):
        result.get(timeout=RESULT_TIMEOUT)
    assert result.state == "FAILURE"
    assert broker.ready("celery") == 0

    # The page's typo, typed in the step folder: the caller gets NotRegistered, never a result.
    typed = run_as_typed(TYPO_COMMAND, step_path)
    assert typed.returncode != 0, typed.stdout
    assert typed.stderr.rstrip().endswith("celery.exceptions.NotRegistered: 'send_sms3'"), typed.stderr
    deadline = time.monotonic() + RESULT_TIMEOUT
    while worker.log.count("Received unregistered task of type 'send_sms3'") < 2:
        assert time.monotonic() < deadline, f"the worker did not report the typed send_sms3:\n{worker.log}"
        time.sleep(0.05)
