"""The Celery commands the troubleshooting page tells a student to type, run as typed in step 4's folder."""

import os
import subprocess
import sys


def celery(step_path, *args):
    # `celery` is the console script of the same package as `python -m celery`.
    return subprocess.run(
        [sys.executable, "-m", "celery", "-A", "mycelery.main", *args],
        cwd=step_path,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_inspect_registered_lists_the_sms_task(step_path, sms_worker):
    """`celery -A mycelery.main inspect registered` names the SMS task."""
    sms_worker()

    result = celery(step_path, "inspect", "registered")

    assert result.returncode == 0, result.stderr
    assert "mycelery.sms.tasks.send_sms" in result.stdout


def test_inspect_active_queues_shows_the_sms_queue(step_path, sms_worker):
    """`celery -A mycelery.main inspect active_queues` shows the worker on the sms queue."""
    sms_worker()

    result = celery(step_path, "inspect", "active_queues")

    assert result.returncode == 0, result.stderr
    assert "'name': 'sms'" in result.stdout


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
