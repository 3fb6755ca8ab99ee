"""The test hosts themselves: two hosts talk over the bridge, a cut cable stops them, mending it restores
them, and nothing is left behind."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.hosts.network import Network, ip, require

ECHO = (
    "import socket; s = socket.create_server(('{address}', 9000)); print('ready', flush=True); "
    "c, _ = s.accept(); c.sendall(c.recv(100))"
)
ASK = (
    "import socket, sys; c = socket.create_connection(('{address}', 9000), timeout=2); c.sendall(b'ping'); "
    "sys.exit(0 if c.recv(100) == b'ping' else 1)"
)


def ask(host, address) -> int:
    return subprocess.run(host.command([sys.executable, "-c", ASK.format(address=address)]),
                          capture_output=True, timeout=10).returncode  # fmt: skip


def test_two_hosts_talk_a_cut_cable_stops_them_and_mending_it_restores_them(network):
    server, client = network.host("a"), network.host("b")
    assert server.address != client.address
    echo = server.process([sys.executable, "-c", ECHO.format(address=server.address)]).start(ready="ready")
    try:
        assert ask(client, server.address) == 0
    finally:
        echo.stop()
    echo = server.process([sys.executable, "-c", ECHO.format(address=server.address)]).start(ready="ready")
    try:
        server.cut()
        assert ask(client, server.address) != 0, "a cut cable must stop the traffic"
        server.mend()
        assert ask(client, server.address) == 0
    finally:
        echo.stop()


def test_a_hosts_loopback_is_its_own(network):
    """The machine's services on 127.0.0.1 (its Redis on 6379, say) are out of a host's reach."""
    lonely = network.host("c")
    code = subprocess.run(lonely.command([sys.executable, "-c", "import socket; socket.create_connection(("
                                          "'127.0.0.1', 6379), timeout=1)"]), capture_output=True, timeout=10)  # fmt: skip
    assert code.returncode != 0


def test_closing_leaves_no_namespace_no_link_and_nothing_running():
    """Also after an interruption, with a process still running on a host (a namespace deleted with a
    process in it would keep it alive, unseen)."""
    require()
    with pytest.raises(KeyboardInterrupt), Network(tag="wtclose") as net:
        left = subprocess.Popen(net.host("x").command(["sleep", "60"]), start_new_session=True)
        net.host("y")
        raise KeyboardInterrupt
    assert left.wait(timeout=10) == -9
    assert "wtclose" not in ip("netns", "list") and "wtclose" not in ip("link", "show")


def test_without_root_the_tests_skip_with_the_reason_and_fail_in_ci(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="test hosts need root"):
        require()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="test hosts need root"):
        require()
