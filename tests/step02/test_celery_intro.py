"""Step 2: a standalone Celery app. A real worker process runs the tasks; Redis carries the messages."""

import pytest
from celery.exceptions import NotRegistered

RESULT_TIMEOUT = 30


def test_the_step_has_the_mycelery_package(step_path):
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


def test_config_uses_redis_db_15_and_14_overridable_from_the_environment(services):
    from mycelery.main import app

    assert app.main == "renran"
    # The tests export CELERY_BROKER_URL / CELERY_RESULT_BACKEND; by default they are db 15 and db 14.
    assert app.conf.broker_url == f"{services.redis_url}/15"
    assert app.conf.result_backend == f"{services.redis_url}/14"


def test_the_worker_lists_both_task_names(start_worker):
    worker = start_worker()

    # The worker's banner lists the registered tasks under [tasks].
    assert ". mycelery.sms.tasks.send_sms" in worker.log
    assert ". send_sms2" in worker.log


def test_delay_runs_on_a_real_worker_and_the_result_backend_says_success(start_worker):
    from mycelery.sms.tasks import send_sms, send_sms2

    worker = start_worker()

    first = send_sms.delay()
    second = send_sms2.delay()

    assert first.get(timeout=RESULT_TIMEOUT) == "send_sms: ok"
    assert second.get(timeout=RESULT_TIMEOUT) == "send_sms2: ok"
    assert first.state == second.state == "SUCCESS"
    # What the task printed shows up in the worker's log.
    worker.wait_for("发送短信任务2!!!")


def test_send_task_finds_the_task_by_its_name(start_worker):
    from mycelery.main import app

    start_worker()

    result = app.send_task("send_sms2")

    assert result.get(timeout=RESULT_TIMEOUT) == "send_sms2: ok"
    assert result.state == "SUCCESS"


def test_a_message_waits_in_the_broker_until_a_worker_starts(start_worker, broker):
    from mycelery.sms.tasks import send_sms2

    result = send_sms2.delay()

    assert broker.llen("celery") == 1, "the message should wait in the broker's 'celery' list"
    assert result.state == "PENDING"

    start_worker()

    assert result.get(timeout=RESULT_TIMEOUT) == "send_sms2: ok"
    assert broker.llen("celery") == 0


def test_an_unregistered_task_name_is_reported_by_the_worker_not_run(start_worker, broker):
    from mycelery.main import app

    worker = start_worker()

    result = app.send_task("send_sms3")  # a typo: no task has this name

    worker.wait_for("Received unregistered task of type 'send_sms3'")
    # The worker discards the message and records the error: the result never becomes SUCCESS.
    with pytest.raises(NotRegistered):
        result.get(timeout=RESULT_TIMEOUT)
    assert result.state == "FAILURE"
    assert broker.llen("celery") == 0
