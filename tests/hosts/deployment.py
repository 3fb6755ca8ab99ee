"""The files of docs/hosts.md (docs/examples/hosts/), read as the machines would read them, and run on test
hosts: the page's addresses (10.0.0.x) become the hosts', its placeholders the tests' values, and its
/srv/renran the repository."""

from __future__ import annotations

import configparser
import shlex
import subprocess
import sys
from pathlib import Path

from workshop.steps import ROOT

EXAMPLES = ROOT / "docs" / "examples" / "hosts"
PAGE_ADDRESSES = {"broker": "10.0.0.2", "web": "10.0.0.3", "worker1": "10.0.0.4", "worker2": "10.0.0.5"}
PASSWORD = "a-broker-password-for-the-tests"
# The secret key as the page makes one.
SECRET_COMMAND = [sys.executable, "-c", "import secrets; print(secrets.token_urlsafe(50))"]
PLACEHOLDERS = {
    "change-me-broker-password": PASSWORD,
    "change-me-to-a-long-random-secret": subprocess.run(SECRET_COMMAND, capture_output=True, text=True,
                                                        check=True, timeout=30).stdout.strip(),
}  # fmt: skip


def filled(text: str) -> str:
    """The page's text with the tests' values for its placeholders."""
    for placeholder, value in PLACEHOLDERS.items():
        text = text.replace(placeholder, value)
    return text


def on_test_hosts(text: str, hosts: dict) -> str:
    """The page's text filled, and with each host's address (longest first: .2 is not part of .20)."""
    for name, address in sorted(PAGE_ADDRESSES.items(), key=lambda item: -len(item[1])):
        text = text.replace(address, hosts[name].address)
    return filled(text)


def written_for(name: str, hosts: dict, folder: Path) -> Path:
    """docs/examples/hosts/<name> as it would be on the test hosts, written into ``folder``."""
    path = folder / name
    path.write_text(on_test_hosts((EXAMPLES / name).read_text(), hosts))
    return path


def environment_file(text: str) -> dict[str, str]:
    """systemd's EnvironmentFile=: NAME=value lines; # starts a comment."""
    pairs = (line.split("=", 1) for line in text.splitlines() if line.strip() and not line.startswith("#"))
    return {name.strip(): value.strip() for name, value in pairs}


def service(name: str) -> configparser.SectionProxy:
    """The [Service] section of a unit file."""
    unit = configparser.ConfigParser(interpolation=None, comment_prefixes=("#", ";"))
    unit.optionxform = str  # systemd's keys are case-sensitive
    unit.read_string((EXAMPLES / name).read_text())
    return unit["Service"]


def exec_start(name: str) -> tuple[list[str], Path]:
    """The unit's command and folder here: /srv/renran/.venv/bin/X is this Python's ``-m X``, %% is %."""
    section = service(name)
    program, *args = shlex.split(section["ExecStart"].replace("%%", "%"))
    assert program.startswith("/srv/renran/.venv/bin/"), program
    folder = Path(section["WorkingDirectory"].replace("/srv/renran", str(ROOT)))
    return [sys.executable, "-m", Path(program).name, *args], folder
