"""Step 4, configuration and logs: production checks pass; no code and no full number is ever logged."""

import logging
import re
import secrets
import sys

from tests.harness import MOBILE, python, run
from workshop.gateway import TRANSIENT_CODES


def manage(step_path, *args, without=(), **env):
    return run([sys.executable, "manage.py", *args], cwd=step_path, env=env, without=without, timeout=60)


def test_check_deploy_is_clean_in_production_mode(step_path):
    """`manage.py check --deploy` has nothing to say in production mode."""
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
    """DJANGO_DEBUG=0 with the development secret key refuses to start."""
    result = manage(step_path, "check", without=["DJANGO_SECRET_KEY"], DJANGO_DEBUG="0")

    assert result.returncode != 0
    assert "Set DJANGO_SECRET_KEY" in result.stderr


def test_celery_reads_django_settings_with_the_celery_namespace(services, step_path):
    """Celery's settings come from Django's (CELERY_ prefix), derived from REDIS_URL."""
    from mycelery.main import app

    # Without CELERY_* in the environment, the broker and the result store come from REDIS_URL, through
    # Django's settings (CELERY_BROKER_URL = f"{REDIS_URL}/15").
    shown = python(
        "from mycelery.main import app; print(app.conf.broker_url, app.conf.result_backend)",
        step_path,
        env={"REDIS_URL": "redis://127.0.0.1:6390"},
        without=["CELERY_"],
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.split() == ["redis://127.0.0.1:6390/15", "redis://127.0.0.1:6390/14"]
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.task_routes == {"mycelery.sms.tasks.*": {"queue": "sms"}}


def test_a_full_send_and_verify_logs_no_code_and_no_full_number(
    client, send, verify, gateway, sms_redis, sms_worker, caplog
):
    """A send, a retry, refusals and a verify: no code, no full number, no signature in any log line."""
    caplog.set_level(logging.DEBUG)
    gateway.configure(fail_next=1, fail_mode=sorted(TRANSIENT_CODES)[0])  # a retry is logged too
    worker = sms_worker("--loglevel=debug")  # every line the worker can write, its task arguments included

    assert send().status_code == 200
    code = sms_redis.get(f"sms_{MOBILE}")
    gateway.wait_for_messages(MOBILE, count=1, timeout=30)
    worker.wait_for("sent (")
    assert send().status_code == 429  # Django logs the refusal
    assert send(f"+86{MOBILE}").status_code == 400  # ...and a refused "+86" form of it
    assert client.get(f"/users/sms/{MOBILE}/").status_code == 405  # the chapter's URL: the number in the path
    assert verify(code=f"{(int(code) + 1) % 1_000_000:06d}").status_code == 400
    assert verify(code=code).status_code == 200

    # What the console handler writes, through its filters (the test's own urllib3 client left out).
    [console] = [h for h in logging.getLogger().handlers if h.filters]
    app_logs = "\n".join(
        r.getMessage() for r in caplog.records if not r.name.startswith("urllib3") and console.filter(r)
    )
    logs = app_logs + worker.log
    assert "138****8000" in logs, "the logs should still name the number, masked"
    # The code as a number of its own (a 6-digit run inside a longer number, a timestamp, is not it).
    assert not re.search(rf"(?<!\d){code}(?!\d)", logs), "a verification code was logged"
    assert MOBILE not in logs
    assert "sig=" not in logs, "the signed URL (Ronglian's signature) was logged"
