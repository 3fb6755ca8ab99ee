"""docs/examples/celery_layout: step 4's Celery code in Celery's own Django layout (docs/layout.md) runs as
the page says: a worker started with `-A renranapi`, the view's .delay(), `manage.py check`."""

from __future__ import annotations

import ast
import os
import sys

import pytest
import redis
import requests

from tests.harness import MOBILE, NO_HANG, TEST_GATEWAY_LATENCY, Worker, run
from workshop.gateway import GatewayClient, GatewayServer
from workshop.processes import Process, free_port
from workshop.redis_server import RedisServer
from workshop.steps import ROOT, step_environment

EXAMPLE = ROOT / "docs" / "examples" / "celery_layout"


@pytest.fixture(scope="module")
def services():
    """A Redis and the SMS gateway of this module's own; the variables the example reads point at them."""
    server, gateway = RedisServer().start(), GatewayServer(latency=TEST_GATEWAY_LATENCY).start()
    # No bytecode written into docs/ (mkdocs would copy it into the site).
    yield {**step_environment(server.url, gateway.url), "PYTHONDONTWRITEBYTECODE": "1"}
    gateway.stop()
    server.stop()


@pytest.fixture(scope="module")
def environ(services):
    """This environment without DJANGO_SETTINGS_MODULE: the example's own files must set it, as a student's
    fresh shell has none."""
    inherited = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    return {**inherited, **services}


@pytest.fixture(scope="module")
def stack(environ):
    """`python manage.py runserver` and `celery -A renranapi worker -Q sms,celery` in the example's folder,
    started side by side."""
    port = free_port()
    web = Process(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=EXAMPLE,
        env=environ,
        inherit=False,
    ).start()
    worker = Worker(EXAMPLE, "renranapi", "-Q", "sms,celery", env=environ, inherit=False)
    try:
        worker.start()
        web.wait_for_port(port)
    except BaseException:
        web.stop()
        worker.kill()
        raise
    yield f"http://127.0.0.1:{port}", worker
    web.stop()
    worker.kill()


@pytest.fixture
def gateway(environ):
    client = GatewayClient(environ["RONGLIAN_BASE_URL"])
    client.reset()
    yield client
    client.release()


def test_the_worker_finds_users_tasks_through_installed_apps(stack):
    """`celery -A renranapi worker` loads renranapi/celery.py (through the package) and registers the task
    from users/tasks.py, which celery.py never names: autodiscover_tasks() reads INSTALLED_APPS."""
    _, worker = stack
    source = (EXAMPLE / "renranapi" / "celery.py").read_text()
    [call] = [
        node
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "autodiscover_tasks"
    ]

    assert (call.args, call.keywords) == ([], []), "autodiscover_tasks() is called with no list of packages"
    assert ". users.tasks.send_sms" in worker.log
    assert "app:         renranapi:" in worker.log
    assert ".> sms " in worker.log, "the worker consumes the sms queue the task is routed to"


def test_a_post_returns_at_once_and_the_worker_sends_the_code(stack, gateway, environ):
    """The view answers while the gateway still holds the SMS; released, the SMS arrives with the code
    that Redis holds."""
    url, _ = stack
    gateway.configure(hold=True)

    # A view that sent the SMS itself would wait for the held gateway and time out here.
    response = requests.post(f"{url}/users/sms/", json={"mobile": MOBILE}, timeout=NO_HANG)
    assert response.status_code == 200, response.text
    gateway.wait_until_held(1)  # the worker has called the gateway, after the response came back
    gateway.release()

    [message] = gateway.wait_for_messages(MOBILE, count=1, timeout=10)
    codes = redis.Redis.from_url(f"{environ['REDIS_URL']}/1", decode_responses=True)
    try:
        assert str(message["datas"][0]) == codes.get(f"sms_{MOBILE}")
    finally:
        codes.close()


def test_manage_py_check_passes(services):
    result = run([sys.executable, "manage.py", "check"], cwd=EXAMPLE, env=services, without=["DJANGO_"])

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_shared_task_binds_to_the_projects_app(services):
    """In a Django process (manage.py shell), users.tasks.send_sms belongs to renranapi's app, which read the
    CELERY_ settings: step 4's reliability settings and the route to the sms queue (its broker URL proves
    nothing: any app reads CELERY_BROKER_URL from the environment)."""
    code = (
        "from users.tasks import send_sms; import renranapi; app = send_sms.app; "
        "print(send_sms.name, app is renranapi.celery_app, app.main, "
        "app.conf.task_acks_late, app.conf.task_reject_on_worker_lost, app.conf.worker_prefetch_multiplier, "
        "app.amqp.router.route({}, send_sms.name)['queue'].name)"
    )
    result = run(
        [sys.executable, "manage.py", "shell", "-c", code], cwd=EXAMPLE, env=services, without=["DJANGO_"]
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split()[-7:] == [
        "users.tasks.send_sms",
        "True",
        "renranapi",
        "True",
        "True",
        "1",
        "sms",
    ]
