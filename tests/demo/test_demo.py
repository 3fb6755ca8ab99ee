"""`make demo` and `make run-step N`, typed as a student types them: everything starts, the page
sends a code, Ctrl-C stops every process. Ports are free ones, so a running demo is not disturbed."""

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest
import requests

from tests.harness import left_running, make, missing, timed
from workshop import rabbitmq
from workshop.gateway import GatewayClient
from workshop.processes import Process, free_port
from workshop.rabbitmq import RabbitMQServer
from workshop.redis_server import RedisServer
from workshop.steps import COPY_IGNORE, ROOT, procfile, step_environment, step_folder


class Demo(Process):
    """`make <args>` typed as a student types it, on free ports, stopped with Ctrl-C."""

    def __init__(self, *make_args, **env):
        self.ports = {
            name: free_port() for name in ("WEB_PORT", "SMS_GATEWAY_PORT", "REDIS_PORT", "FLOWER_PORT")
        }
        # The student's shell: none of the variables that the test run itself points at its services.
        environ = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("REDIS_URL", "CELERY_", "RONGLIAN_", "BROKER"))
        }
        environ.update({k: str(v) for k, v in self.ports.items()}, **env)
        super().__init__(["make", "--no-print-directory", *make_args], cwd=ROOT, env=environ, inherit=False)

    def wait_for(self, text, timeout=90):
        return super().wait_for(text, timeout=timeout)

    def url(self, path):
        return f"http://127.0.0.1:{self.ports['WEB_PORT']}{path}"

    def ctrl_c(self):
        """Ctrl-C, as a student stops it; return the processes that outlived it (honcho starts each in a
        session of its own, so they are found as descendants, not by process group)."""
        if not self.popen:
            return []
        try:
            descendants = psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            descendants = []
        if self.running():
            self.signal(signal.SIGINT)
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self.stop()  # collects the output and the temp folder
        return left_running(descendants)  # what is still exiting gets a moment


@pytest.fixture
def demo():
    started = []

    def start(*make_args, **env):
        started.append(Demo(*make_args, **env).start())
        return started[-1]

    yield start
    for d in started:
        d.ctrl_c()
        # Step 4's Redis keeps its data in .run/redis-PORT: these ports are the test's own.
        shutil.rmtree(ROOT / ".run" / f"redis-{d.ports['REDIS_PORT']}", ignore_errors=True)


def test_make_demo_starts_step_4_and_ctrl_c_stops_everything(demo):
    """The demo as a student runs it: a code sent and verified, then Ctrl-C while an SMS is in flight: the
    worker finishes it (warm shutdown) before Redis and the gateway stop, no traceback, nothing left."""
    # As the instructors' guide types it, with a classroom's throttle and daily cap.
    d = demo("demo", SMS_THROTTLE_RATE="1000/hour", SMS_DAILY_LIMIT="1000", SMS_PREFIX_RATE="1000/hour")

    d.wait_for("==> ready")
    # The ready block's lines come through honcho one by one: its last line says the block is complete.
    d.wait_for(f"Flower: http://127.0.0.1:{d.ports['FLOWER_PORT']}/")
    assert d.url("/") in d.output
    page = requests.get(d.url("/"), timeout=10)
    assert "获取验证码" in page.text
    # The reference page's curl -H "Content-Type: application/json" -d '{"mobile": ...}' .../users/sms/
    sent = requests.post(d.url("/users/sms/"), json={"mobile": "13800138000"}, timeout=10)
    assert sent.status_code == 200, sent.text
    assert sent.json()["expires_in"] == 300
    gateway = GatewayClient(f"http://127.0.0.1:{d.ports['SMS_GATEWAY_PORT']}")
    [message] = gateway.wait_for_messages("13800138000", timeout=30)
    # The reference page's curl -d '{"mobile": ..., "code": ...}' http://127.0.0.1:8000/users/sms/verify/
    body = {"mobile": "13800138000", "code": str(message["datas"][0])}
    assert requests.post(d.url("/users/sms/verify/"), json=body, timeout=10).status_code == 200
    assert requests.get(d.url("/healthz"), timeout=10).status_code == 200
    gateway.configure(hold=True)
    assert requests.post(d.url("/users/sms/"), json={"mobile": "13900139000"}, timeout=10).status_code == 200
    gateway.wait_until_held(1, timeout=30)
    threading.Timer(1.0, gateway.release).start()  # the provider answers a moment after Ctrl-C

    survivors = d.ctrl_c()

    assert survivors == [], f"still running after Ctrl-C: {[p.cmdline() for p in survivors]}"
    assert "SMS to 139****9000 sent" in d.output, "the SMS in flight is finished (warm shutdown)"
    assert d.output.index("sending SIGTERM to worker.1") < d.output.index("SMS to 139****9000 sent"), (
        "Ctrl-C came while the SMS was in flight"
    )
    assert d.output.index("worker.1 stopped") < d.output.index("redis.1 stopped"), (
        "Redis stops after the worker"
    )
    assert "Traceback" not in d.output and "ERROR" not in d.output, d.output[-3000:]


@pytest.mark.parametrize("step", ["2", "3"])
def test_make_run_step_2_and_3_with_an_existing_redis(demo, step):
    """`REDIS_URL=... make run-step N`: nothing else is started for Redis, and Celery uses it too."""
    with RedisServer() as redis_server:
        d = demo("run-step", step, REDIS_URL=redis_server.url)
        d.wait_for("==> ready")
        sent = requests.get(d.url("/users/sms/13800138000/"), timeout=10)
        gateway = GatewayClient(f"http://127.0.0.1:{d.ports['SMS_GATEWAY_PORT']}")
        gateway.wait_for_messages("13800138000", timeout=30)

        assert sent.status_code == 200
        assert f"REDIS_URL is set: using {redis_server.url}" in d.output
        if step == "3":  # the worker took the message from this Redis
            d.wait_for("succeeded")
        assert d.ctrl_c() == []


def test_make_run_step_runs_a_students_copy(demo, tmp_path):
    """Once workspace/step03 exists, `make run-step 3` runs it, and the banner says so: the student's
    page and worker, with the same Redis and gateway as the reference."""
    copy = tmp_path / "step03"
    shutil.copytree(step_folder(3), copy, ignore=COPY_IGNORE)
    page = copy / "users" / "templates" / "users" / "index.html"
    page.write_text(page.read_text().replace("</body>", '<p id="mine">my copy</p></body>'))

    d = demo("run-step", "3", WORKSPACE=str(tmp_path))
    d.wait_for("==> ready")

    assert f"starting {copy}/Procfile, your copy (the reference: make run-step 3 STEP_DIR=" in d.output
    assert '<p id="mine">my copy</p>' in requests.get(d.url("/"), timeout=10).text
    assert requests.get(d.url("/users/sms/13800138000/"), timeout=10).status_code == 200
    GatewayClient(f"http://127.0.0.1:{d.ports['SMS_GATEWAY_PORT']}").wait_for_messages(
        "13800138000", timeout=30
    )
    d.wait_for("succeeded")  # the copy's own worker
    assert d.ctrl_c() == []


def test_the_demos_redis_keeps_queued_sms_through_a_crash():
    """Step 4's Redis keeps its data (appendonly, appendfsync everysec, in .run/): twenty sends queued with
    no worker running, Redis killed with SIGKILL and started again, then the worker: twenty SMS, one each."""
    ports = {name: free_port() for name in ("WEB_PORT", "SMS_GATEWAY_PORT", "REDIS_PORT")}
    redis_url, gateway_url = (
        f"redis://127.0.0.1:{ports['REDIS_PORT']}",
        f"http://127.0.0.1:{ports['SMS_GATEWAY_PORT']}",
    )
    env = {name: str(number) for name, number in ports.items()}
    env.update(
        step_environment(redis_url, gateway_url), SMS_THROTTLE_RATE="1000/hour", SMS_GATEWAY_LATENCY="0.05"
    )
    # The Procfile says `python` and `celery`: the virtual environment's, as `make` puts them first on PATH.
    env.update(PYTHONPATH=str(ROOT), PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    folder = step_folder(4)
    lines = procfile(folder)
    started = []

    def start(name, **wait):
        started.append(Process(["sh", "-c", f"exec {lines[name]}"], cwd=folder, env=env).start(**wait))
        return started[-1]

    try:
        redis_server = start("redis", port=ports["REDIS_PORT"])
        start("gateway", port=ports["SMS_GATEWAY_PORT"])
        start("web", port=ports["WEB_PORT"])
        numbers = [f"1380013{i:04d}" for i in range(20)]
        for number in numbers:
            sent = requests.post(
                f"http://127.0.0.1:{ports['WEB_PORT']}/users/sms/", json={"mobile": number}, timeout=10
            )
            assert sent.status_code == 200, sent.text
        time.sleep(1.2)  # appendfsync everysec: what was written more than a second ago is on disk

        redis_server.kill()
        start("redis", port=ports["REDIS_PORT"])
        worker = start("worker", ready=" ready.")

        gateway = GatewayClient(gateway_url)
        gateway.wait_for_messages(numbers[-1], timeout=60)
        worker.wait_for("] succeeded in")
        deadline = time.monotonic() + 60
        while worker.output.count("] succeeded in") < 20 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sorted(m["to"] for m in gateway.inbox()) == numbers, "each queued SMS once, none lost"
    finally:
        for process in reversed(started):
            process.stop(group=process is not started[-1])  # the worker: a warm shutdown
        shutil.rmtree(ROOT / ".run" / f"redis-{ports['REDIS_PORT']}", ignore_errors=True)


def test_make_redis_and_make_worker(demo):
    """`make redis` in one terminal, `make worker STEP=2` in another, as the chapter runs them."""
    redis_d = demo("redis")
    port = redis_d.ports["REDIS_PORT"]
    redis_d.wait_for(f"Starting Redis on redis://127.0.0.1:{port}")
    url = f"redis://127.0.0.1:{port}"
    worker = demo("worker", STEP="2", CELERY_BROKER_URL=f"{url}/15", CELERY_RESULT_BACKEND=f"{url}/14")

    worker.wait_for(" ready.")

    assert ". send_sms2" in worker.output
    assert worker.ctrl_c() == []
    assert redis_d.ctrl_c() == []


def test_a_missing_rabbitmq_stops_at_once_with_the_way_to_get_it():
    """BROKER=rabbitmq with nothing on the AMQP port: run-step, worker and demo stop at once (exit 2) with
    the way to get RabbitMQ, not a worker retrying in a loop or a traceback."""
    url = f"amqp://guest:guest@127.0.0.1:{free_port()}//"
    ports = {name: str(free_port()) for name in ("WEB_PORT", "SMS_GATEWAY_PORT", "REDIS_PORT", "FLOWER_PORT")}
    for args in (["run-step", "3"], ["worker", "STEP=2"], ["demo"]):
        result, took = timed(
            lambda args=args: make(*args, BROKER="rabbitmq", CELERY_BROKER_URL=url, timeout=60, **ports)
        )

        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert f"Nothing answers on 127.0.0.1:{url.split(':')[-1][:-2]}" in result.stderr
        assert (
            "sudo apt install rabbitmq-server" in result.stderr and "rabbitmq:3-management" in result.stderr
        )
        assert "Traceback" not in result.stdout + result.stderr
        assert took < 10, f"make {' '.join(args)} took {took:.1f} s to say so"


def test_make_demo_on_rabbitmq(demo):
    """`BROKER=rabbitmq make demo` (here CELERY_BROKER_URL names a RabbitMQ of the test's own): the worker's
    transport is RabbitMQ, a code is sent through it into durable classic queues, Ctrl-C leaves nothing;
    `make worker STEP=2` and `make flower` use it too, and a wrong password stops them at once."""
    if not rabbitmq.find_server():
        missing("RabbitMQ (rabbitmq-server)", rabbitmq.INSTALL_HINT)
    with RabbitMQServer() as node:
        d = demo("demo", BROKER="rabbitmq", CELERY_BROKER_URL=node.url)
        d.wait_for("==> ready")
        assert f"broker: rabbitmq (amqp://guest:***@127.0.0.1:{node.port}//)" in d.output
        d.wait_for(f".> transport:   amqp://guest:**@127.0.0.1:{node.port}//")

        sent = requests.post(d.url("/users/sms/"), json={"mobile": "13800138000"}, timeout=10)
        assert sent.status_code == 200, sent.text
        gateway = GatewayClient(f"http://127.0.0.1:{d.ports['SMS_GATEWAY_PORT']}")
        gateway.wait_for_messages("13800138000", timeout=30)
        queues = node.queues()
        assert (queues["sms"]["type"], queues["sms"]["durable"]) == ("classic", True)
        assert d.ctrl_c() == []
        assert "Traceback" not in d.output and "ERROR" not in d.output, d.output[-3000:]

        worker = demo("worker", STEP="2", BROKER="rabbitmq", CELERY_BROKER_URL=node.url)
        worker.wait_for(" ready.")
        assert f".> transport:   amqp://guest:**@127.0.0.1:{node.port}//" in worker.output
        assert worker.ctrl_c() == []

        flower = demo("flower", BROKER="rabbitmq", CELERY_BROKER_URL=node.url)
        flower.wait_for(f"Connected to amqp://guest:**@127.0.0.1:{node.port}//")
        assert requests.get(f"http://127.0.0.1:{flower.ports['FLOWER_PORT']}/", timeout=5).status_code == 200
        assert flower.ctrl_c() == []

        refused = make(
            "worker",
            "STEP=2",
            BROKER="rabbitmq",
            CELERY_BROKER_URL=node.url.replace("guest:guest", "bob:wrong"),
        )
        assert refused.returncode == 2
        assert (
            "refused the connection (amqp://bob:***@" in refused.stderr and "ACCESS_REFUSED" in refused.stderr
        )


def test_step_dir_tests_a_students_copy(tmp_path):
    """`STEP_DIR=path make test-step 1`: the same tests, against another copy of the step."""
    copy = tmp_path / "step01"
    shutil.copytree(step_folder(1), copy)
    views = copy / "users" / "views.py"
    views.write_text(views.read_text().replace('if redis.get("interval_%s" % mobile):', "if False:"))

    result = make("test-step", "1", STEP_DIR=str(copy))

    assert result.returncode != 0
    assert "FAILED tests/step01/test_sync_sms.py::test_interval_refuses_a_second_request" in result.stdout
    assert "6 passed" in result.stdout


def test_make_run_step_1_waits_for_the_gateway(demo):
    d = demo("run-step", "1", SMS_GATEWAY_LATENCY="0.5")

    d.wait_for("==> ready")
    started = time.monotonic()
    sent = requests.get(d.url("/users/sms/13800138000/"), timeout=10)

    assert sent.status_code == 200
    assert time.monotonic() - started >= 0.5, "step 1 answers only after the gateway"
    assert d.ctrl_c() == []


def test_a_port_in_use_is_named_with_the_way_out(demo):
    with __import__("socket").socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        d = demo("demo", WEB_PORT=str(port))
        d.popen.wait(timeout=60)

    assert d.popen.returncode != 0
    assert f"Port {port} (Django) is already in use" in d.output
    assert f"WEB_PORT={port + 10} make" in d.output


def test_make_flower_serves_the_dashboard(demo):
    with RedisServer() as redis_server:
        d = demo("flower", REDIS_URL=redis_server.url)
        d.wait_for_port(d.ports["FLOWER_PORT"], timeout=60)
        page = requests.get(f"http://127.0.0.1:{d.ports['FLOWER_PORT']}/", timeout=5)

        assert page.status_code == 200
        assert "Flower" in page.text
        assert d.ctrl_c() == []
