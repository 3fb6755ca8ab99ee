"""More than one machine (docs/hosts.md), on test hosts: a broker host, a web host, two worker hosts and the
provider's gateway, each a network namespace on one bridge. Every process is started from the page's own
files (docs/examples/hosts/): the broker's redis.conf, the units' commands, the environment file; and every
request is made on the web host as its nginx would make it."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from urllib.parse import urlsplit

import pytest

from tests.brokers import RabbitQueues, RedisQueues
from tests.harness import Worker, missing, wait_until_settled
from tests.hosts.deployment import (
    PASSWORD,
    environment_file,
    exec_start,
    written_for,
)
from tests.hosts.network import Network, require
from workshop.bench.run import LIFTED_CAPS, LIFTED_LIMITS
from workshop.gateway import GatewayClient
from workshop.processes import wait_until
from workshop.rabbitmq import INSTALL_HINT, RabbitMQServer, find_server
from workshop.redis_server import RedisServer
from workshop.steps import ROOT

# 4 threads a worker, not the unit's 50: 20 sends then leave messages waiting in the queue.
THREADS = ["--concurrency", "4"]
# What nginx in front of gunicorn adds (docs/examples/nginx/renran.conf), as the page's curl line does.
AS_NGINX = ["-H", "Host: sms.example.com", "-H", "X-Forwarded-Proto: https"]


def changed_for_tests(hosts) -> dict[str, str]:
    """What the tests change in sms.env, and why."""
    return {
        # The provider is the workshop's gateway on its own host, with its own account.
        "RONGLIAN_BASE_URL": f"http://{hosts['gateway'].address}:8881",
        "RONGLIAN_ACC_ID": "workshop-account-sid",
        "RONGLIAN_ACC_TOKEN": "workshop-auth-token",
        "RONGLIAN_APP_ID": "workshop-app-id",
        # Every send comes from one client, to numbers that share a prefix.
        **LIFTED_LIMITS,
        **LIFTED_CAPS,
        # A vanished worker's message is handed out again after 3 s (60 in production), looked for every 2.
        "CELERY_BROKER_VISIBILITY_TIMEOUT": "3",
        "CELERY_BROKER_RESTORE_INTERVAL": "2",
    }


@pytest.fixture(scope="module", params=["redis", "rabbitmq"])
def hosts(request, tmp_path_factory):
    """Step 4 on the hosts, a network of its own for each broker: the broker host's Redis, or its RabbitMQ
    (the codes and the results stay in its Redis)."""
    require()
    if request.param == "rabbitmq" and not find_server():
        missing("rabbitmq-server", INSTALL_HINT)
    with Network() as network:
        yield from step4_on(network, request.param, tmp_path_factory.mktemp("etc"))


def step4_on(network, broker_name, folder):
    hosts = {name: network.host(name) for name in ["broker", "web", "worker1", "worker2", "gateway"]}
    broker = hosts["broker"]
    redis = RedisServer(port=6379, bind=broker.address, password=PASSWORD, wrap=broker.command([]),
                        config=str(written_for("redis.conf", hosts, folder)))  # fmt: skip
    # An administrator for the tests' own look at the queues; the workers get the page's user. Heartbeats
    # every 2 s, not 60: a cut worker's connection is closed after seconds, not minutes.
    rabbit = broker_name == "rabbitmq" and RabbitMQServer(
        bind=broker.address, user="admin", password="admin-for-the-tests", wrap=broker.command([]),
        config="heartbeat = 2\n")  # fmt: skip
    started = {}
    try:
        redis.start()
        env_file = written_for("sms.env", hosts, folder).read_text()
        changes = changed_for_tests(hosts)
        if rabbit:
            rabbit.start()
            for command in RABBITMQ_USER:
                done = rabbit.ctl(*command)
                assert done.returncode == 0, done.stdout + done.stderr
            changes["CELERY_BROKER_URL"] = commented_rabbitmq_url(env_file).replace(
                ":5672/", f":{rabbit.port}/"
            )
        env_path = folder / "sms.env"
        env_path.write_text(
            env_file + "\n# The tests' changes\n" + "".join(f"{k}={v}\n" for k, v in changes.items())
        )
        env = environment_file(env_path.read_text())
        started["gateway"] = hosts["gateway"].process(
            [sys.executable, "-m", "workshop.gateway", "--host", hosts["gateway"].address, "--port", "8881",
             "--latency", "0.2"], env={**env, "PYTHONPATH": str(ROOT)}).start(ready="8881")  # fmt: skip
        gateway = GatewayClient(env["RONGLIAN_BASE_URL"])
        gateway.wait_ready(timeout=20)
        for name in ("worker1", "worker2"):
            started[name] = start_worker(hosts[name], env)
        command, cwd = exec_start("sms-web.service")
        started["web"] = hosts["web"].process(command, cwd=cwd, env=env).start(ready="Listening", timeout=60)

        def held() -> int:
            """Tasks in the hands of the workers running now (a test may replace one); a stopped worker's
            messages are back in a queue."""
            workers = [started[name] for name in ("worker1", "worker2")]
            return sum(Worker.tasks_in_hand(w.output) for w in workers if w.running())

        queues = RabbitQueues(rabbit, held=held) if rabbit else RedisQueues(f"{redis.url}/15")
        yield {**hosts, "broker_name": broker_name, "redis": redis, "rabbitmq": rabbit or None,
               "queues": queues, "provider": gateway, "env": env, "env_path": env_path, "processes": started}  # fmt: skip
    finally:
        for process in reversed(started.values()):
            process.stop(timeout=10)
        if rabbit:
            rabbit.stop()
        redis.stop()


# The page's two commands for the workers' RabbitMQ user (hosts.md#broker), as rabbitmqctl runs them.
RABBITMQ_USER = [["add_user", "sms", PASSWORD], ["set_permissions", "-p", "/", "sms", ".*", ".*", ".*"]]


def commented_rabbitmq_url(env_file: str) -> str:
    """sms.env's commented-out RabbitMQ line."""
    line = next(line for line in env_file.splitlines() if line.startswith("# CELERY_BROKER_URL=amqp://"))
    return line.removeprefix("# CELERY_BROKER_URL=")


def start_worker(host, env, extra=()):
    command, folder = exec_start("sms-worker.service")
    return host.process([*command, *THREADS, *extra], cwd=folder, env=env).start(ready=" ready.", timeout=90)


def on_web(hosts, *curl: str) -> tuple[int, str]:
    """curl on the web host, to gunicorn on its 127.0.0.1:8000 as nginx reaches it: (status, body)."""
    done = subprocess.run(hosts["web"].command(["curl", "-s", "-w", "\n%{http_code}", *AS_NGINX, *curl]),
                          capture_output=True, text=True, timeout=20)  # fmt: skip
    body, _, status = done.stdout.rpartition("\n")
    return int(status or 0), body


def send(hosts, mobile: str) -> int:
    return send_with_body(hosts, mobile)[0]


def delivered_once_settled(hosts, mobiles, timeout=30.0) -> list[str]:
    """The numbers the provider got, once every one has come and nothing more can come: no message queued
    or held, no call in flight (a redelivered duplicate would show as a second copy)."""
    gateway = hosts["provider"]
    wait_until(
        lambda: {m["to"] for m in gateway.inbox()} >= set(mobiles), "every SMS at the provider", timeout
    )
    wait_until_settled(hosts["queues"], gateway, timeout)
    return sorted(m["to"] for m in gateway.inbox())


def new_lines(process, since: int) -> str:
    return "".join(process.lines[since:])


def test_sends_from_the_web_host_are_shared_by_both_worker_hosts_and_each_arrives_once(hosts):
    hosts["provider"].reset()
    mobiles = [f"1390000{n:04d}" for n in range(20)]
    assert [send(hosts, mobile) for mobile in mobiles] == [200] * 20

    assert delivered_once_settled(hosts, mobiles) == sorted(mobiles), "each SMS once"
    for name in ("worker1", "worker2"):
        assert " succeeded in " in hosts["processes"][name].output, f"{name} took no share"


def test_celery_inspect_ping_from_the_web_host_sees_both_worker_hosts(hosts):
    """The page's two lines on the web host: load sms.env, then ask every worker to answer."""
    command, folder = exec_start("sms-worker.service")
    celery = " ".join(command[: command.index("worker")])
    line = f"set -a; . {hosts['env_path']}; set +a; {celery} inspect ping"
    answer = subprocess.run(hosts["web"].command(["sh", "-c", line]), cwd=folder, capture_output=True, text=True,
                            timeout=30)  # fmt: skip
    assert "sms@worker1: OK" in answer.stdout and "sms@worker2: OK" in answer.stdout, (
        answer.stdout + answer.stderr
    )
    assert PASSWORD not in answer.stdout + answer.stderr


def test_healthz_on_the_web_host_lists_both_worker_hosts(hosts):
    status, body = on_web(hosts, "http://127.0.0.1:8000/healthz")
    assert status == 200, body
    health = json.loads(body)
    assert health["status"] == "ok" and health["workers"] == ["sms@worker1", "sms@worker2"], health


def test_a_web_host_that_cannot_reach_the_broker_answers_503_at_once(hosts):
    """The broker's port dropped for the web host alone, as a cut cable would (no answer, not a refusal),
    after a send has opened the web server's pooled connections. On RabbitMQ, Redis (the codes) stays
    reachable, so the 503 comes from publishing the task."""
    assert send(hosts, "13900009990") == 200
    port = hosts["rabbitmq"].port if hosts["rabbitmq"] else 6379
    rule = (f"table inet cut {{\n chain input {{\n type filter hook input priority -10;\n"
            f" ip saddr {hosts['web'].address} tcp dport {port} drop\n }}\n}}\n")  # fmt: skip
    hosts["broker"].firewall(rule)
    try:
        started = time.monotonic()
        status, body = send_with_body(hosts, "13900009999")
        took = time.monotonic() - started
    finally:
        hosts["broker"].firewall("delete table inet cut")
    assert status == 503, body
    assert "error" in json.loads(body)
    assert took < 2.0, f"the 503 took {took:.1f} s"


def send_with_body(hosts, mobile: str) -> tuple[int, str]:
    return on_web(hosts, "-H", "Content-Type: application/json", "-d", json.dumps({"mobile": mobile}),
                  "http://127.0.0.1:8000/users/sms/")  # fmt: skip


@pytest.mark.parametrize("password", ["wrong-password", None], ids=["wrong password", "no password"])
def test_a_worker_with_a_wrong_password_or_none_is_refused_and_says_so(hosts, password):
    """Refused, in the broker's own words, which Celery's log passes on. On Redis the worker keeps trying,
    and a student can tell the two cases apart; on RabbitMQ it exits with an error, and systemd's
    Restart=on-failure starts it again."""
    env = dict(hosts["env"])
    url = urlsplit(env["CELERY_BROKER_URL"])
    login = f"{url.username or ''}:{password}" if password else url.username or ""
    env["CELERY_BROKER_URL"] = url._replace(netloc=f"{login}@{url.hostname}:{url.port}").geturl()
    command, cwd = exec_start("sms-worker.service")
    worker = hosts["worker1"].process([*command, "-n", "intruder@%h"], cwd=cwd, env=env).start()
    try:
        if hosts["broker_name"] == "redis":
            wait_until(lambda: worker.output.count("Cannot connect") >= 2, "a second try", 30)
        else:
            wait_until(lambda: not worker.running(), "an exit", 30)
    finally:
        worker.stop(timeout=5)
    words = {"redis": ("Cannot connect", "invalid username-password pair" if password else "Authentication required"),
             "rabbitmq": ("Unrecoverable error", "ACCESS_REFUSED")}[hosts["broker_name"]]  # fmt: skip
    refusal = next((line for line in worker.lines if words[0] in line), worker.output)
    assert words[1] in refusal, refusal
    if hosts["broker_name"] == "rabbitmq":
        assert worker.popen.returncode not in (0, None), "Restart=on-failure needs a failing exit"
    assert " ready." not in worker.output
    assert PASSWORD not in worker.output and (password is None or password not in worker.output)


def test_a_worker_host_cut_off_mid_send_costs_no_second_sms(hosts):
    """The provider holds the SMS; the cable of the worker host that sent it is cut, then the provider
    delivers it (its answer cannot get back). The broker hands the unacknowledged message to the other
    worker host: Redis once it is older than the visibility timeout (3 s here), RabbitMQ once heartbeats
    are missed and it closes the connection. The send claim stops a second call."""
    gateway, workers = hosts["provider"], [hosts["processes"]["worker1"], hosts["processes"]["worker2"]]
    gateway.reset()
    gateway.configure(hold=True)
    seen = [len(w.lines) for w in workers]
    assert send(hosts, "13900008888") == 200
    gateway.wait_until_held(1, timeout=30)

    def holders() -> list[int]:
        return [i for i, w in enumerate(workers) if " received" in new_lines(w, seen[i])]

    wait_until(holders, "a receipt in a worker's log", 10)
    holder = holders()[0]
    other, cable = workers[1 - holder], hosts[f"worker{holder + 1}"]
    cable.cut()
    try:
        gateway.release()
        wait_until(lambda: "SMS to 139****8888: already sending" in new_lines(other, seen[1 - holder]),
                   "the other worker host's turn, stopped by the claim", 40)  # fmt: skip
    finally:
        cable.mend()
    assert delivered_once_settled(hosts, ["13900008888"]) == ["13900008888"]
    assert gateway.control()["received"] == 1


def test_the_broker_host_restarts_and_both_workers_carry_on_with_nothing_lost(hosts):
    """kill -9 of the broker with messages in its queue (the provider holds what the workers took), then a
    restart from its files (Redis's append-only file, RabbitMQ's durable queues): both workers reconnect by
    themselves, and the SMS still queued at the kill arrive, each once."""
    gateway, queues = hosts["provider"], hosts["queues"]
    gateway.reset()
    gateway.configure(hold=True)
    mobiles = [f"1380000{n:04d}" for n in range(20)]
    assert [send(hosts, mobile) for mobile in mobiles] == [200] * 20
    gateway.wait_until_held(8, timeout=30)  # 2 workers x 4 threads busy
    queued = queues.ready("sms")
    assert queued >= 8, f"only {queued} of 20 waited in the broker: the test would prove nothing"
    time.sleep(1.2)  # the append-only file is written every second (appendfsync everysec)
    workers = [hosts["processes"]["worker1"], hosts["processes"]["worker2"]]
    before = [len(w.lines) for w in workers]  # a worker may reconnect before start() below returns
    broker = hosts["rabbitmq"] or hosts["redis"]
    broker.kill()
    broker.start()
    gateway.release()

    assert delivered_once_settled(hosts, mobiles, timeout=60) == sorted(mobiles), "each SMS once, none lost"
    for worker, n in zip(workers, before, strict=True):  # each lost the broker and reconnected by itself
        # (a worker whose first try found the broker still down tries again a few seconds later)
        wait_until(lambda w=worker, n=n: "Connected to " in new_lines(w, n).partition("Connection to broker lost")[2],
                   lambda w=worker, n=n: f"no reconnection:\n{new_lines(w, n)}", 30)  # fmt: skip


def test_sigterm_as_systemd_sends_it_lets_the_running_send_finish(hosts):
    """sms-worker.service stops the worker with SIGTERM to its main process (KillMode=mixed): a warm
    shutdown. The worker finishes the SMS the provider holds and acknowledges it, then exits by itself;
    the broker no longer holds that message, and the other worker is never handed it."""
    gateway, worker, queues = hosts["provider"], hosts["processes"]["worker1"], hosts["queues"]
    hosts["processes"]["worker2"].stop(timeout=30, group=False)  # worker1 takes the message
    gateway.reset()
    gateway.configure(hold=True)
    seen = len(worker.lines)
    assert send(hosts, "13900007777") == 200
    gateway.wait_until_held(1, timeout=30)
    # This send's message, by its task id: the one received since the send that has not ended (the provider
    # holds it). A message an earlier test left may come first (seen once on RabbitMQ, after the restart
    # test had settled): the claim ends that one at once, without calling the provider.
    in_hand: list[str] = []

    def ours() -> bool:
        lines = new_lines(worker, seen)
        received = re.findall(r"send_sms\[([0-9a-f-]+)\] received", lines)
        in_hand[:] = [task for task in received if f"[{task}] succeeded in " not in lines]
        return len(in_hand) == 1

    wait_until(ours, "one message in worker1's hands", 10)
    [task_id] = in_hand
    worker.signal(signal.SIGTERM, group=False)
    worker.wait_for("worker: Warm shutdown", timeout=10)
    gateway.release()
    worker.popen.wait(timeout=25)
    assert worker.popen.returncode == 0
    after_term = worker.output.partition("worker: Warm shutdown")[2]
    assert "SMS to 139****7777 sent" in after_term and f"[{task_id}] succeeded in " in after_term, after_term
    stored = queues.stored()
    assert task_id not in stored, f"acknowledged, so not in the broker any more; it holds:\n{stored}"
    worker2 = hosts["processes"]["worker2"] = start_worker(hosts["worker2"], hosts["env"])
    time.sleep(queues.settled)  # a message handed to it now would be in its log by then
    assert task_id not in worker2.output
    assert gateway.control()["received"] == 1
