"""Hosts on this machine, for tests of more than one machine: Linux network namespaces on a bridge.

    with Network() as net:
        broker, worker = net.host("broker"), net.host("worker1")
        redis = broker.process(["redis-server", "--bind", broker.address, ...]).start()   # on "broker"
        worker.cut()      # the worker's cable pulled: `ip link set <its end> down`
        worker.mend()

Each host is a namespace with its own loopback, host name and a veth pair into a bridge; every address is one this
module creates (10.77.N.2, .3, ...), and nothing is routed anywhere else. Root only (`ip netns`). Everything
is torn down on exit, after a failure, or on Ctrl-C (the context manager's exit runs for KeyboardInterrupt).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass

from tests.harness import missing
from workshop.processes import Process


def ip(*args: str) -> str:
    run = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    if run.returncode:
        raise RuntimeError(f"ip {' '.join(args)}: {run.stderr.strip()}")
    return run.stdout


def can_build() -> str | None:
    """Why this machine cannot build test hosts, or None when it can."""
    if os.geteuid() != 0:
        return "test hosts need root (ip netns); run the tests as root, as CI does"
    scratch = f"wprobe{os.getpid()}"
    try:  # listing is not enough: a container without CAP_NET_ADMIN lists, and cannot add
        ip("netns", "add", scratch)
        ip("netns", "del", scratch)
    except (OSError, RuntimeError) as exc:
        return f"ip netns does not work here: {exc}"
    return None


def require() -> None:
    """Skip where test hosts cannot be built, with the reason; fail under CI, which runs as root."""
    why = can_build()
    if why:
        missing("Root for test hosts", why)


def unused_subnet(seed: int) -> str:
    """10.77.N, a /24 this machine has no route to yet (another run's network, or a real one)."""
    for n in range(250):
        subnet = f"10.77.{(seed + n) % 250}"
        if not ip("-4", "route", "show", f"{subnet}.0/24").strip():
            return subnet
    raise RuntimeError("no free 10.77.N.0/24 for the test hosts")


@dataclass
class Host:
    name: str
    namespace: str
    address: str
    cable: str  # the veth end on the bridge: down is a cut cable

    def command(self, args: list[str]) -> list[str]:
        """``args`` run on this host: its network, and its own host name (Celery's %h), each program
        replacing the one before it, so the process is ``args`` itself."""
        return ["ip", "netns", "exec", self.namespace, "unshare", "--uts", "--",
                "sh", "-c", 'hostname "$0" && exec "$@"', self.name, *args]  # fmt: skip

    def process(self, args: list[str], **options) -> Process:
        """A process that runs on this host (unstarted): it sees only this host's network."""
        return Process(self.command(args), **options)

    def firewall(self, rules: str) -> None:
        """Load nftables ``rules`` on this host (``nft -f``)."""
        if not shutil.which("nft"):
            missing("nft", "Debian: apt install nftables")
        subprocess.run(self.command(["nft", "-f", "-"]), input=rules, text=True, check=True, timeout=10)

    def cut(self) -> None:
        ip("link", "set", self.cable, "down")

    def mend(self) -> None:
        ip("link", "set", self.cable, "up")


class Network:
    def __init__(self, tag: str | None = None):
        self.tag = tag or f"w{os.getpid() % 100_000}"  # names stay under Linux's 15 characters
        self.subnet = unused_subnet(os.getpid())
        self.bridge = f"{self.tag}br"
        self.hosts: list[Host] = []

    def __enter__(self) -> Network:
        try:
            ip("link", "add", self.bridge, "type", "bridge")
            # The machine's own end of the network (.1): the tests reach the hosts through it. A host's
            # 127.0.0.1 is its own: the machine's services there are out of its reach.
            ip("addr", "add", f"{self.subnet}.1/24", "dev", self.bridge)
            ip("link", "set", self.bridge, "up")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def host(self, name: str) -> Host:
        n = len(self.hosts) + 2
        host = Host(name, f"{self.tag}-{name}", f"{self.subnet}.{n}", f"{self.tag}h{n}")
        self.hosts.append(host)  # before it exists: close() removes whatever part of it was made
        ip("netns", "add", host.namespace)
        ip("link", "add", host.cable, "type", "veth", "peer", "name", "eth0", "netns", host.namespace)
        ip("link", "set", host.cable, "master", self.bridge, "up")
        ip("-n", host.namespace, "addr", "add", f"{host.address}/24", "dev", "eth0")
        ip("-n", host.namespace, "link", "set", "eth0", "up")
        ip("-n", host.namespace, "link", "set", "lo", "up")
        return host

    def close(self) -> None:
        """Kill whatever still runs on each host (a namespace deleted with a process in it lives on, unseen),
        remove every namespace (its veth pair goes with it) and the bridge; what is already gone is fine."""
        for host in reversed(self.hosts):
            pids = subprocess.run(
                ["ip", "netns", "pids", host.namespace], capture_output=True, text=True, timeout=10
            )
            for pid in pids.stdout.split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
            subprocess.run(["ip", "netns", "del", host.namespace], capture_output=True, timeout=10)
            subprocess.run(["ip", "link", "del", host.cable], capture_output=True, timeout=10)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, timeout=10)
        self.hosts.clear()
