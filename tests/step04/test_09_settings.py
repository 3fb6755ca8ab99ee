"""Settings from the environment.

Part 9 of step 4: the page's section step4.md#settings."""

import secrets
import sys

import pytest

from tests.harness import run

# Stands on part 0 and part 5: without them, these tests fail at once (tests/step04/conftest.py).
NEEDS = [0, 5]


def manage(step_path, *args, without=(), **env):
    return run([sys.executable, "manage.py", *args], cwd=step_path, env=env, without=without, timeout=60)


def test_the_sms_task_goes_to_the_sms_queue(send, broker):
    """SMS tasks have a queue of their own, sms (CELERY_TASK_ROUTES), that other work cannot hold up."""
    assert send().status_code == 200

    assert broker.ready("sms") == 1, "send_sms should be routed to the sms queue (CELERY_TASK_ROUTES)"
    assert broker.ready("celery") == 0


def test_production_mode_refuses_the_development_secret(step_path):
    """DJANGO_DEBUG=0 with the development secret key refuses to start."""
    result = manage(step_path, "check", without=["DJANGO_SECRET_KEY"], DJANGO_DEBUG="0")

    assert result.returncode != 0
    assert "Set DJANGO_SECRET_KEY" in result.stderr


# This machine's Redis, whatever the test run's own REDIS_URL (which may name another machine).
ON_THIS_MACHINE = {
    "REDIS_URL": "redis://127.0.0.1:6379",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/15",
    "CELERY_RESULT_BACKEND": "redis://127.0.0.1:6379/14",
}


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
        **ON_THIS_MACHINE,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def production(step_path, **env):
    return manage(step_path, "check", "--deploy", DJANGO_DEBUG="0", DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
                  DJANGO_ALLOWED_HOSTS="sms.example.com", **{**ON_THIS_MACHINE, **env})  # fmt: skip


@pytest.mark.parametrize(
    "url, refusal",
    [
        ("redis://10.0.0.5:6379/15", "CELERY_BROKER_URL reaches 10.0.0.5:6379 without a password"),
        (
            "redis://broker.internal:6379/15",
            "CELERY_BROKER_URL reaches broker.internal:6379 without a password",
        ),
        ("amqp://guest:guest@10.0.0.5:5672//", "RabbitMQ refuses guest from other machines"),
    ],
)
def test_check_deploy_refuses_a_broker_on_another_machine_without_a_password(step_path, url, refusal):
    """On another machine the broker must ask for a password (users/checks.py): docs/hosts.md."""
    result = production(step_path, CELERY_BROKER_URL=url)

    assert result.returncode != 0, "check --deploy accepted it: users/checks.py should refuse it"
    assert refusal in result.stderr, result.stderr


def test_check_deploy_accepts_a_broker_on_another_machine_with_a_password(step_path):
    """With a password in the URLs, the same check has nothing to say, and does not print it."""
    result = production(step_path, REDIS_URL="redis://:s3cret@10.0.0.5:6379",
                        CELERY_BROKER_URL="redis://:s3cret@10.0.0.5:6379/15")  # fmt: skip

    assert result.returncode == 0, result.stdout + result.stderr
    assert "s3cret" not in result.stdout + result.stderr
