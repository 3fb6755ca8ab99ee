"""`make demo` and `make run-step N`, typed as a student types them: everything starts, the page
sends a code, Ctrl-C stops every process. Ports are free ones, so a running demo is not disturbed."""

import os
import signal
import subprocess
import threading
import time

import psutil
import pytest
import requests

from tests.harness import left_running
from workshop.gateway import GatewayClient
from workshop.processes import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Demo:
    def __init__(self, *make_args, **env):
        self.ports = {
            name: free_port() for name in ("WEB_PORT", "SMS_GATEWAY_PORT", "REDIS_PORT", "FLOWER_PORT")
        }
        environ = {
            k: v for k, v in os.environ.items() if not k.startswith(("REDIS_URL", "CELERY_", "RONGLIAN_"))
        }
        environ.update({k: str(v) for k, v in self.ports.items()}, **env)
        self.process = subprocess.Popen(
            ["make", "--no-print-directory", *make_args],
            cwd=ROOT,
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.lines.append(line)

    @property
    def output(self):
        return "".join(self.lines)

    def wait_for(self, text, timeout=90):
        deadline = time.monotonic() + timeout
        while text not in self.output:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"never saw {text!r}; output:\n{self.output}")
            time.sleep(0.1)

    def url(self, path):
        return f"http://127.0.0.1:{self.ports['WEB_PORT']}{path}"

    def stop(self):
        """Ctrl-C, as a student stops it; return the processes that outlived it."""
        group = [p for p in psutil.process_iter(["pid"]) if _in_group(p, self.process.pid)]
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        return left_running(group)  # what is still exiting gets a moment


def _in_group(process, pgid):
    try:
        return os.getpgid(process.pid) == pgid
    except (ProcessLookupError, psutil.Error):
        return False


@pytest.fixture
def demo():
    started = []

    def start(*make_args, **env):
        started.append(Demo(*make_args, **env))
        return started[-1]

    yield start
    for d in started:
        d.stop()


def test_make_demo_starts_step_4_and_ctrl_c_stops_everything(demo):
    # As the instructors' guide types it, with a classroom's throttle and daily cap.
    d = demo("demo", SMS_THROTTLE_RATE="1000/hour", SMS_DAILY_LIMIT="1000")

    d.wait_for("==> ready")
    assert d.url("/") in d.output
    assert f"Flower: http://127.0.0.1:{d.ports['FLOWER_PORT']}/" in d.output
    page = requests.get(d.url("/"), timeout=10)
    assert "获取验证码" in page.text
    sent = requests.get(d.url("/users/sms/13800138000/"), timeout=10)
    assert sent.status_code == 200, sent.text
    assert sent.json()["expires_in"] == 300
    [message] = GatewayClient(f"http://127.0.0.1:{d.ports['SMS_GATEWAY_PORT']}").wait_for_messages(
        "13800138000", timeout=30
    )
    # The reference page's curl -d '{"mobile": ..., "code": ...}' http://127.0.0.1:8000/users/sms/verify/
    body = {"mobile": "13800138000", "code": str(message["datas"][0])}
    assert requests.post(d.url("/users/sms/verify/"), json=body, timeout=10).status_code == 200
    assert requests.get(d.url("/healthz"), timeout=10).status_code == 200

    survivors = d.stop()

    assert survivors == [], f"still running after Ctrl-C: {[p.cmdline() for p in survivors]}"


@pytest.mark.parametrize("step", ["2", "3"])
def test_make_run_step_2_and_3_with_an_existing_redis(demo, step):
    """`REDIS_URL=... make run-step N`: nothing else is started for Redis, and Celery uses it too."""
    from workshop.redis_server import RedisServer

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
        assert d.stop() == []


def test_make_redis_and_make_worker(demo):
    """`make redis` in one terminal, `make worker STEP=2` in another, as the chapter runs them."""
    redis_d = demo("redis")
    port = redis_d.ports["REDIS_PORT"]
    redis_d.wait_for(f"Starting Redis on redis://127.0.0.1:{port}")
    url = f"redis://127.0.0.1:{port}"
    worker = demo("worker", STEP="2", CELERY_BROKER_URL=f"{url}/15", CELERY_RESULT_BACKEND=f"{url}/14")

    worker.wait_for(" ready.")

    assert ". send_sms2" in worker.output
    assert worker.stop() == []
    assert redis_d.stop() == []


def test_step_dir_tests_a_students_copy(tmp_path):
    """`STEP_DIR=path make test-step 1`: the same tests, against another copy of the step."""
    import shutil

    copy = tmp_path / "step01"
    shutil.copytree(os.path.join(ROOT, "step01_sync"), copy)
    views = copy / "users" / "views.py"
    views.write_text(views.read_text().replace('if redis.get("interval_%s" % mobile):', "if False:"))

    result = subprocess.run(
        ["make", "--no-print-directory", "test-step", "1"],
        cwd=ROOT,
        env={**os.environ, "STEP_DIR": str(copy)},
        capture_output=True,
        text=True,
        timeout=300,
    )

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
    assert d.stop() == []


def test_a_port_in_use_is_named_with_the_way_out(demo):
    with __import__("socket").socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        d = demo("demo", WEB_PORT=str(port))
        d.process.wait(timeout=60)

    assert d.process.returncode != 0
    assert f"Port {port} (Django) is already in use" in d.output
    assert f"WEB_PORT={port + 10} make" in d.output


def test_make_flower_serves_the_dashboard(demo):
    from workshop.redis_server import RedisServer

    with RedisServer() as redis_server:
        d = demo("flower", REDIS_URL=redis_server.url)
        deadline = time.monotonic() + 60
        while True:
            try:
                page = requests.get(f"http://127.0.0.1:{d.ports['FLOWER_PORT']}/", timeout=5)
                break
            except requests.ConnectionError:
                if d.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"Flower did not start; output:\n{d.output}") from None
                time.sleep(0.3)

        assert page.status_code == 200
        assert "Flower" in page.text
        assert d.stop() == []
