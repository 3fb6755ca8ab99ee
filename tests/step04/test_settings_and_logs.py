"""Step 4, configuration and logs: production checks pass; no code and no full number is ever logged."""

import logging
import os
import secrets
import subprocess
import sys

from .conftest import MOBILE


def manage(step_path, *args, **env):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=step_path,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_deploy_is_clean_in_production_mode(step_path):
    result = manage(
        step_path,
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="sms.example.com",
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_mode_refuses_the_development_secret(step_path):
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SECRET_KEY"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=step_path,
        env={**env, "DJANGO_DEBUG": "0"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert "Set DJANGO_SECRET_KEY" in result.stderr


def test_celery_reads_django_settings_with_the_celery_namespace(services):
    from mycelery.main import app

    assert app.conf.broker_url == f"{services.broker_redis_url}/15"
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.task_routes == {"mycelery.sms.tasks.*": {"queue": "sms"}}


def test_a_full_send_and_verify_logs_no_code_and_no_full_number(
    send, verify, gateway, sms_redis, sms_worker, caplog
):
    caplog.set_level(logging.DEBUG)
    worker = sms_worker()

    assert send().status_code == 200
    code = sms_redis.get(f"sms_{MOBILE}")
    gateway.wait_for_messages(MOBILE, count=1, timeout=30)
    worker.wait_for("sent (")
    assert send().status_code == 429  # Django logs the refused URL, number and all
    assert verify(code=f"{(int(code) + 1) % 1_000_000:06d}").status_code == 400
    assert verify(code=code).status_code == 200

    # What the console handler writes, through its filters (the test's own urllib3 client left out).
    [console] = [h for h in logging.getLogger().handlers if h.filters]
    app_logs = "\n".join(
        r.getMessage() for r in caplog.records if not r.name.startswith("urllib3") and console.filter(r)
    )
    logs = app_logs + worker.log
    assert "138****8000" in logs, "the logs should still name the number, masked"
    assert code not in logs
    assert MOBILE not in logs
