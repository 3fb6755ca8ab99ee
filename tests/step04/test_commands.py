"""The Celery commands the troubleshooting page tells a student to type, run as typed in step 4's folder."""

import sys

import pytest

from tests.harness import run


def celery(step_path, *args):
    # `celery` is the console script of the same package as `python -m celery`.
    return run([sys.executable, "-m", "celery", "-A", "mycelery.main", *args], cwd=step_path, timeout=60)


@pytest.mark.parametrize(
    ("command", "shows"),
    [("registered", "mycelery.sms.tasks.send_sms"), ("active_queues", "'name': 'sms'")],
    ids=["registered", "active_queues"],
)
def test_inspect_shows_the_sms_task_and_its_queue(step_path, sms_worker, command, shows):
    """`celery -A mycelery.main inspect registered` names the SMS task; `inspect active_queues` the sms queue."""
    sms_worker()

    result = celery(step_path, "inspect", command)

    assert result.returncode == 0, result.stderr
    assert shows in result.stdout


def test_purge_empties_the_queues(step_path, send, broker):
    """`celery -A mycelery.main purge -f` removes a queued message."""
    assert send().status_code == 200
    assert broker.llen("sms") == 1

    result = celery(step_path, "purge", "-f")

    assert result.returncode == 0, result.stderr
    assert "Purged 1 message" in result.stdout
    assert broker.llen("sms") == 0


def test_the_windows_pool_solo_worker_delivers(send, gateway, sms_worker):
    """The troubleshooting page's Windows command: `--pool=solo` runs tasks in the worker process."""
    worker = sms_worker("--pool=solo")

    assert send().status_code == 200

    gateway.wait_for_messages("13800138000", count=1, timeout=30)
    assert "solo" in worker.log
