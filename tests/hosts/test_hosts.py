"""More than one machine (docs/hosts.md), on test hosts: a broker host, a web host, two worker hosts and the
provider's gateway, each a network namespace on one bridge. Every process is started from the page's own
files (docs/examples/hosts/): the broker's redis.conf, the units' commands, the environment file."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import pytest

from tests.harness import missing
from tests.hosts.deployment import (
    EXAMPLES,
    PASSWORD,
    environment_file,
    exec_start,
    on_test_hosts,
    written_for,
)
from tests.hosts.network import Network, require
from workshop.bench.run import LIFTED_CAPS, LIFTED_LIMITS
from workshop.gateway import GatewayClient
from workshop.processes import wait_until
from workshop.rabbitmq import INSTALL_HINT, RabbitMQServer, find_server
from workshop.redis_server import RedisServer

# The first worker host holds a message while another takes over; 4 threads each, not the unit's 50, so
# that 20 sends leave messages waiting in the queue when the broker restarts.
THREADS = ["--concurrency", "4"]


def changed_for_tests(hosts) -> dict[str, str]:
    """What the tests change in sms.env, and why."""
    return {
        # No nginx and no https on the test hosts: the tests call gunicorn on the web host's address.
        "GUNICORN_BIND": f"{hosts['web'].address}:8000",
        "DJANGO_ALLOWED_HOSTS": hosts["web"].address,
        "DJANGO_SECURE_SSL_REDIRECT": "0",
        "TRUSTED_PROXIES": "",
        # The provider is the workshop's gateway on its own host, with its own account.
        "RONGLIAN_BASE_URL": f"http://{hosts['gateway'].address}:8881",
        "RONGLIAN_ACC_ID": "workshop-account-sid",
        "RONGLIAN_ACC_TOKEN": "workshop-auth-token",
        "RONGLIAN_APP_ID": "workshop-app-id",
        # Every send comes from the machine's end of the bridge, to numbers that share a prefix.
        **LIFTED_LIMITS,
        **LIFTED_CAPS,
        # A vanished worker's message is handed out again after 3 s (60 in production), looked for every 2.
        "CELERY_BROKER_VISIBILITY_TIMEOUT": "3",
        "CELERY_BROKER_RESTORE_INTERVAL": "2",
        "PYTHONPATH": str(exec_start("sms-worker.service")[1].parent),
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
                        config=str(written_for("redis.conf", hosts, folder))).start()  # fmt: skip
    env_file = written_for("sms.env", hosts, folder).read_text()
    env = {**environment_file(env_file), **changed_for_tests(hosts)}
    started, rabbit = {}, None
    try:
        if broker_name == "rabbitmq":
            # A user of its own with the page's password (RabbitMQ lets guest in from 127.0.0.1 only).
            # Heartbeats every 2 s, not 60: a cut worker's connection is closed after seconds, not minutes.
            rabbit = RabbitMQServer(bind=broker.address, user="sms", password=PASSWORD, wrap=broker.command([]),
                                    config="heartbeat = 2\n").start()  # fmt: skip
            env["CELERY_BROKER_URL"] = rabbitmq_url(env_file, rabbit)
        started["gateway"] = hosts["gateway"].process(
            [sys.executable, "-m", "workshop.gateway", "--host", hosts["gateway"].address, "--port", "8881",
             "--latency", "0.2"], env=env).start(ready="8881")  # fmt: skip
        gateway = GatewayClient(env["RONGLIAN_BASE_URL"])
        gateway.wait_ready(timeout=20)
        for name in ("worker1", "worker2"):
            started[name] = start_worker(hosts[name], env)
        command, cwd = exec_start("sms-web.service")
        started["web"] = hosts["web"].process(command, cwd=cwd, env=env).start(ready="Listening", timeout=60)
        yield {**hosts, "broker_name": broker_name, "redis": redis, "rabbitmq": rabbit, "provider": gateway,
               "env": env, "processes": started}  # fmt: skip
    finally:
        for process in reversed(started.values()):
            process.stop(timeout=10)
        if rabbit:
            rabbit.stop()
        redis.stop()


def rabbitmq_url(env_file: str, rabbit: RabbitMQServer) -> str:
    """sms.env's commented-out RabbitMQ line, on the test node's port."""
    line = next(line for line in env_file.splitlines() if line.startswith("# CELERY_BROKER_URL=amqp://"))
    return line.removeprefix("# CELERY_BROKER_URL=").replace(":5672/", f":{rabbit.port}/")


def start_worker(host, env, extra=()):
    command, folder = exec_start("sms-worker.service")
    return host.process([*command, *THREADS, *extra], cwd=folder, env=env).start(ready=" ready.", timeout=90)


def send(web, mobile: str) -> int:
    request = urllib.request.Request(f"http://{web.address}:8000/users/sms/", method="POST",
                                     data=json.dumps({"mobile": mobile}).encode(),
                                     headers={"Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=5) as answer:
        return answer.status


def wait_for_all(gateway, mobiles, timeout=20.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and len({m["to"] for m in gateway.inbox()}) < len(mobiles):
        time.sleep(0.2)
    time.sleep(0.5)  # a second copy of any of them would have arrived by now
    return sorted(m["to"] for m in gateway.inbox())


def test_sends_from_the_web_host_are_shared_by_both_worker_hosts_and_each_arrives_once(hosts):
    hosts["provider"].reset()
    mobiles = [f"1390000{n:04d}" for n in range(20)]
    assert all(send(hosts["web"], mobile) == 200 for mobile in mobiles)

    assert wait_for_all(hosts["provider"], mobiles) == sorted(mobiles), "each SMS once"
    for name in ("worker1", "worker2"):
        assert " succeeded in " in hosts["processes"][name].output, f"{name} took no share"


def test_celery_inspect_ping_from_the_web_host_sees_both_worker_hosts(hosts):
    command, folder = exec_start("sms-worker.service")
    ping = [*command[: command.index("worker")], "inspect", "ping", "--timeout", "3"]
    answer = subprocess.run(hosts["web"].command(ping), cwd=folder, env=hosts["env"], capture_output=True,
                            text=True, timeout=30)  # fmt: skip
    assert "sms@worker1: OK" in answer.stdout and "sms@worker2: OK" in answer.stdout, (
        answer.stdout + answer.stderr
    )
    assert PASSWORD not in answer.stdout + answer.stderr


def test_healthz_on_the_web_host_lists_both_worker_hosts(hosts):
    with urllib.request.urlopen(f"http://{hosts['web'].address}:8000/healthz", timeout=5) as answer:
        health = json.loads(answer.read())
    assert health["status"] == "ok", health
    assert health["workers"] == ["sms@worker1", "sms@worker2"]


def test_a_web_host_that_cannot_reach_the_broker_answers_503_at_once(hosts):
    """The broker host's cable cut: the web host's Redis calls time out in 0.5 s, and the view says so."""
    hosts["broker"].cut()
    try:
        started = time.monotonic()
        with pytest.raises(urllib.error.HTTPError) as refused:
            send(hosts["web"], "13900009999")
        took = time.monotonic() - started
    finally:
        hosts["broker"].mend()
    assert refused.value.code == 503
    assert "error" in json.loads(refused.value.read())
    assert took < 2.0, f"the 503 took {took:.1f} s"


@pytest.mark.parametrize("password", ["wrong-password", None], ids=["wrong password", "no password"])
def test_a_worker_with_a_wrong_password_or_none_is_refused_and_says_so(hosts, password):
    """Refused, in the broker's own words, which Celery's log passes on. On Redis the worker keeps trying
    ("Cannot connect"), and a student can tell the two cases apart; on RabbitMQ it stops at once
    ("Unrecoverable error: AccessRefused"), and systemd's Restart=on-failure tries again."""
    env = dict(hosts["env"])
    url = urlsplit(env["CELERY_BROKER_URL"])
    login = f"{url.username or ''}:{password}" if password else url.username or ""
    env["CELERY_BROKER_URL"] = url._replace(netloc=f"{login}@{url.hostname}:{url.port}").geturl()
    command, cwd = exec_start("sms-worker.service")
    worker = hosts["worker1"].process([*command, "-n", "intruder@%h"], cwd=cwd, env=env).start()
    words = {"redis": ("Cannot connect", "invalid username-password pair" if password else "Authentication required"),
             "rabbitmq": ("Unrecoverable error", "ACCESS_REFUSED")}[hosts["broker_name"]]  # fmt: skip
    try:
        wait_until(lambda: words[0] in worker.output or not worker.running(), "the broker's refusal", 30)
    finally:
        worker.stop(timeout=5)
    refusal = next((line for line in worker.lines if words[0] in line), worker.output)
    assert words[1] in refusal, refusal
    assert " ready." not in worker.output
    assert PASSWORD not in worker.output


def test_the_firewall_rule_lets_only_the_web_and_worker_hosts_reach_the_broker(hosts):
    """broker.nft, loaded on the broker host: the gateway host's connection is dropped, a worker host's
    gets through."""
    if not shutil.which("nft"):
        missing("nft", "Debian: apt install nftables")
    port = hosts["rabbitmq"].port if hosts["rabbitmq"] else 6379
    rules = on_test_hosts((EXAMPLES / "broker.nft").read_text(), hosts).replace("5672", str(port))
    subprocess.run(
        hosts["broker"].command(["nft", "-f", "-"]), input=rules, text=True, check=True, timeout=10
    )
    try:
        reach = [sys.executable, "-c", f"import socket; socket.create_connection(('{hosts['broker'].address}', "
                 f"{port}), timeout=1)"]  # fmt: skip
        refused = subprocess.run(hosts["gateway"].command(reach), capture_output=True, timeout=10)
        allowed = subprocess.run(hosts["worker1"].command(reach), capture_output=True, timeout=10)
    finally:
        subprocess.run(hosts["broker"].command(["nft", "delete", "table", "inet", "broker"]), timeout=10)
    assert b"timed out" in refused.stderr, refused.stderr
    assert allowed.returncode == 0, allowed.stderr


def test_a_worker_host_cut_off_mid_send_costs_no_second_sms(hosts):
    """The provider holds the SMS; the cable of the worker host that sent it is cut, then the provider
    delivers it (its answer cannot get back). The broker hands the unacknowledged message to the other
    worker host: Redis once it is older than the visibility timeout (3 s here), RabbitMQ once two
    heartbeats are missed and it closes the connection. The send claim stops a second call."""
    gateway, workers = hosts["provider"], [hosts["processes"]["worker1"], hosts["processes"]["worker2"]]
    gateway.reset()
    gateway.configure(hold=True)
    seen = [len(w.lines) for w in workers]
    assert send(hosts["web"], "13900008888") == 200
    gateway.wait_until_held(1, timeout=30)
    holder = next(i for i, w in enumerate(workers) if " received" in "".join(w.lines[seen[i] :]))
    holder_host = hosts[f"worker{holder + 1}"]
    holder_host.cut()
    try:
        gateway.release()
        workers[1 - holder].wait_for("already sending; not calling the provider again", timeout=40)
    finally:
        holder_host.mend()
    time.sleep(1)
    assert len(gateway.inbox(to="13900008888")) == 1
    assert gateway.control()["received"] == 1


def test_the_broker_host_restarts_and_both_workers_carry_on_with_nothing_lost(hosts):
    """kill -9 of the broker with messages queued (the provider holds what the workers took), then a restart
    from its files (Redis's append-only file, RabbitMQ's durable queues): both workers reconnect by
    themselves, each SMS arrives once."""
    gateway = hosts["provider"]
    gateway.reset()
    gateway.configure(hold=True)
    mobiles = [f"1380000{n:04d}" for n in range(20)]
    assert all(send(hosts["web"], mobile) == 200 for mobile in mobiles)
    gateway.wait_until_held(8, timeout=30)  # 2 workers x 4 threads busy, the rest queued
    time.sleep(1.2)  # the append-only file is written every second (appendfsync everysec)
    workers = [hosts["processes"]["worker1"], hosts["processes"]["worker2"]]
    before = [len(w.lines) for w in workers]  # a worker may reconnect before start() below returns
    broker = hosts["rabbitmq"] or hosts["redis"]
    broker.kill()
    broker.start()
    gateway.release()

    assert wait_for_all(gateway, mobiles, timeout=40) == sorted(mobiles), "each SMS once, none lost"
    for worker, n in zip(workers, before, strict=True):  # each lost the broker and reconnected by itself
        worker.wait_until(lambda w=worker, n=n: reconnected("".join(w.lines[n:])),
                          "a reconnection to the restarted broker", timeout=30)  # fmt: skip


def reconnected(log: str) -> bool:
    return "Connected to " in log.partition("Connection to broker lost")[2]


def test_sigterm_as_systemd_sends_it_lets_the_running_send_finish(hosts):
    """sms-worker.service stops the worker with SIGTERM to its main process (KillMode=mixed): a warm
    shutdown. The SMS the provider holds is delivered, the worker exits by itself well inside
    TimeoutStopSec, and no other worker sends it again."""
    gateway, worker = hosts["provider"], hosts["processes"]["worker1"]
    hosts["processes"]["worker2"].stop(timeout=30, group=False)  # worker1 takes the message
    gateway.reset()
    gateway.configure(hold=True)
    assert send(hosts["web"], "13900007777") == 200
    gateway.wait_until_held(1, timeout=30)
    worker.signal(signal.SIGTERM, group=False)
    worker.wait_for("worker: Warm shutdown", timeout=10)
    gateway.release()
    worker.popen.wait(timeout=25)
    assert worker.popen.returncode == 0
    hosts["processes"]["worker2"] = start_worker(hosts["worker2"], hosts["env"])
    time.sleep(4)  # past the visibility timeout: a message left unacknowledged would be sent again now
    assert len(gateway.inbox(to="13900007777")) == 1
    assert gateway.control()["received"] == 1
