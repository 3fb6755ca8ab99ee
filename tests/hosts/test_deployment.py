"""The files docs/hosts.md asks a student to install, read without building any host: the units say what
the page says, systemd accepts them, and the environment file passes `check --deploy`."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys

import pytest
import requests

from tests.harness import missing
from tests.hosts.deployment import EXAMPLES, environment_file, exec_start, filled, service
from workshop.processes import Process, free_port
from workshop.redis_server import RedisServer
from workshop.steps import ROOT, procfile, step_folder, worker_options

UNITS = ["sms-worker.service", "sms-web.service", "sms-flower.service"]


def test_the_worker_unit_runs_the_procfiles_worker_named_after_its_host():
    command, folder = exec_start("sms-worker.service")
    options = command[command.index("worker") + 1 :]
    name = options.index("-n")
    assert options[name + 1] == "sms@%h"
    assert [
        o for o in options[:name] + options[name + 2 :] if not o.startswith("--loglevel")
    ] == worker_options(step_folder(4))
    assert folder == step_folder(4)


def test_the_worker_unit_shuts_down_warm_for_longer_than_a_task_runs_and_restarts_on_failure():
    unit = service("sms-worker.service")
    longest = subprocess.run(
        [sys.executable, "-c", "from renranapi import settings; print(sum(settings.RONGLIAN_TIMEOUT))"],
        cwd=step_folder(4), capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    assert unit["KillSignal"] == "SIGTERM" and unit["KillMode"] == "mixed"
    assert int(unit["TimeoutStopSec"]) > float(longest), f"a task may run {longest.strip()} s"
    assert unit["Restart"] == "on-failure"


def test_the_web_unit_waits_longer_than_gunicorn_gives_its_requests():
    """gunicorn finishes the requests in progress for graceful_timeout after SIGTERM (its default: the
    step's gunicorn.conf.py does not change it); systemd must not SIGKILL it before."""
    from gunicorn.config import Config

    assert int(service("sms-web.service")["TimeoutStopSec"]) > Config().graceful_timeout


def test_the_flower_unit_runs_the_procfiles_flower_line_and_keeps_the_password_off_it():
    """sms-flower.service: the Procfile's flower line (its port fixed), on 127.0.0.1; the password comes from
    sms.env (FLOWER_BASIC_AUTH), not from the command line that `ps` shows; restarted after a crash."""
    command, folder = exec_start("sms-flower.service")
    unit = service("sms-flower.service")
    # The Procfile's ${FLOWER_PORT:-5555}: what the shell makes of it when FLOWER_PORT is not set.
    line = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", procfile(step_folder(4))["flower"])

    assert command[2:] == shlex.split(line) and folder == step_folder(4)
    assert "--address=127.0.0.1" in command
    assert "auth" not in unit["ExecStart"].lower()
    assert unit["EnvironmentFile"] == "/etc/renran/sms.env"
    assert "FLOWER_BASIC_AUTH" in environment_file((EXAMPLES / "sms.env").read_text())
    assert unit["Restart"] == "on-failure"


def test_flower_run_as_the_unit_runs_it_asks_for_the_password_in_the_environment_file():
    """The unit's ExecStart in its WorkingDirectory with its EnvironmentFile (a free port, a Redis of the
    test's own as the broker): no password or a wrong one, 401; FLOWER_BASIC_AUTH's, the dashboard."""
    command, folder = exec_start("sms-flower.service")
    port = free_port()
    command = [f"--port={port}" if word.startswith("--port=") else word for word in command]
    env = environment_file(filled((EXAMPLES / "sms.env").read_text()))
    user, password = env["FLOWER_BASIC_AUTH"].split(":", 1)
    url = f"http://127.0.0.1:{port}/"

    with RedisServer() as broker:
        env |= {"REDIS_URL": broker.url, "CELERY_BROKER_URL": f"{broker.url}/15",
                "CELERY_RESULT_BACKEND": f"{broker.url}/14"}  # fmt: skip
        with Process(command, cwd=folder, env=env).start(port=port, timeout=60):
            anonymous = requests.get(url, timeout=10)
            wrong = requests.get(url, auth=(user, "not-the-password"), timeout=10)
            page = requests.get(url, auth=(user, password), timeout=10)

    assert anonymous.status_code == wrong.status_code == 401
    assert page.status_code == 200 and "Flower" in page.text


@pytest.mark.parametrize("name", UNITS)
def test_systemd_accepts_the_unit(name, tmp_path):
    """`systemd-analyze verify` on the unit, its paths made this machine's: no complaint."""
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        missing("systemd-analyze", "it comes with systemd (Debian: apt install systemd)")
    text = (EXAMPLES / name).read_text()
    text = text.replace("/etc/renran/sms.env", str(EXAMPLES / "sms.env")).replace("/srv/renran", str(ROOT))
    (tmp_path / name).write_text(text)
    checked = subprocess.run(
        [analyze, "verify", str(tmp_path / name)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0 and not checked.stdout.strip() and not checked.stderr.strip(), (
        checked.stderr
    )


def test_the_environment_file_passes_check_deploy():
    """sms.env with its placeholders filled: production mode, a broker with a password, nothing to say."""
    env = environment_file(filled((EXAMPLES / "sms.env").read_text()))
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=step_folder(4), env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert env["DJANGO_DEBUG"] == "0" and "no issues" in result.stdout


def test_the_environment_file_without_its_password_is_refused_by_check_deploy():
    text = filled((EXAMPLES / "sms.env").read_text()).replace(":a-broker-password-for-the-tests@", "")
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy"], cwd=step_folder(4),
                            env=environment_file(text), capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode != 0
    assert "CELERY_BROKER_URL reaches 10.0.0.2:6379 without a password" in result.stderr
