"""RabbitMQ, the chapter's other broker: which broker a command uses, whether it answers, and a private
RabbitMQ node for the tests.

    BROKER=rabbitmq make demo          # the broker is RabbitMQ on 127.0.0.1:5672 (guest/guest)
    CELERY_BROKER_URL=amqp://user:pw@host:5672// make run-step 3    # any RabbitMQ

The result store stays Redis, as in the chapter. Nothing here starts the RabbitMQ a student's commands
use: it is a system service (a package, Homebrew, or Docker); the tests start a node of their own.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

from workshop.processes import Process, free_port, wait_until

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672//"

# --8<-- [start:install]
INSTALL_HINT = """\
Get RabbitMQ, then try again:
  Debian/Ubuntu:  sudo apt install rabbitmq-server          (it starts as a service on port 5672)
  macOS:          brew install rabbitmq && brew services start rabbitmq
  Docker:         docker run -d --name rabbitmq -p 5672:5672 -p 15672:15672 rabbitmq:3-management
Or leave BROKER unset: the broker is then Redis, which the workshop starts by itself."""
# --8<-- [end:install]


def chosen(environ=os.environ) -> str:
    """The broker a command uses: BROKER's (redis or rabbitmq); without it, rabbitmq if CELERY_BROKER_URL
    is an amqp:// URL, else redis."""
    name = environ.get("BROKER", "").strip().lower()
    if not name:
        url = environ.get("CELERY_BROKER_URL", "")
        return "rabbitmq" if url.startswith(("amqp://", "amqps://", "pyamqp://")) else "redis"
    if name not in ("redis", "rabbitmq"):
        raise SystemExit(f"BROKER={name}: the workshop knows two brokers, BROKER=redis and BROKER=rabbitmq.")
    return name


def broker_url(redis_url: str, environ=os.environ) -> str:
    """The URL Celery's broker setting gets: CELERY_BROKER_URL if set, else RabbitMQ's default address for
    BROKER=rabbitmq, else database 15 of this Redis."""
    if environ.get("CELERY_BROKER_URL"):
        return environ["CELERY_BROKER_URL"]
    return AMQP_URL if chosen(environ) == "rabbitmq" else f"{redis_url}/15"


def shown(url: str) -> str:
    """The URL with its password hidden, for a message."""
    parts = urllib.parse.urlsplit(url)
    if parts.password:
        netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return url


def problem(url: str, timeout: float = 2.0) -> str | None:
    """Why this AMQP URL cannot be used (nothing listens, or the login is refused), or None if it can."""
    import amqp

    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 5672
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError:
        return f"Nothing answers on {host}:{port}, where the broker should be ({shown(url)}).\n{INSTALL_HINT}"
    vhost = urllib.parse.unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
    connection = amqp.Connection(
        f"{host}:{port}",
        userid=urllib.parse.unquote(parts.username or "guest"),
        password=urllib.parse.unquote(parts.password or "guest"),
        virtual_host=vhost,
        connect_timeout=timeout,
    )
    try:
        connection.connect()
    except Exception as exc:  # refused login, unknown vhost, not AMQP at all
        return f"RabbitMQ on {host}:{port} refused the connection ({shown(url)}): {exc}"
    finally:
        connection.collect()
    return None


def find_server() -> str | None:
    """The rabbitmq-server script that runs a node as the current user (Debian's /usr/sbin one is a
    wrapper that wants root and the system node's folders), or None. RABBITMQ_SERVER names another
    (empty: as if none were installed)."""
    if "RABBITMQ_SERVER" in os.environ:
        given = os.environ["RABBITMQ_SERVER"]
        return given if given and os.access(given, os.X_OK) else None
    for candidate in ("/usr/lib/rabbitmq/bin/rabbitmq-server", shutil.which("rabbitmq-server")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


class RabbitMQServer:
    """A RabbitMQ node of its own on 127.0.0.1 (free ports, data in a temporary folder, its own epmd), with
    the management plugin. ``start()`` after ``kill()`` or ``stop(keep=True)`` keeps its data: durable
    queues and persistent messages come back, as after a restart of a real server."""

    def __init__(self, binary: str | None = None, bind: str = "127.0.0.1", user: str = "guest",
                 password: str = "guest", wrap: list[str] | None = None, config: str = ""):  # fmt: skip
        """``bind``, ``user``/``password`` and ``wrap`` (a command prefix, e.g. ``ip netns exec HOST``): a node
        on a test host, which other machines reach, with a user of its own (RabbitMQ lets guest in only
        from 127.0.0.1). ``config``: more lines for its rabbitmq.conf."""
        binary = binary or find_server()
        if not binary:
            raise FileNotFoundError("no rabbitmq-server on this machine")
        self.binary = binary
        self.bind, self.wrap, self.config = bind, list(wrap or []), config
        self.user, self.password = user, password
        self._pick_ports()
        self._started = False
        self.process: Process | None = None
        self._dir = tempfile.TemporaryDirectory(prefix="workshop-rabbitmq-")

    @property
    def url(self) -> str:
        return f"amqp://{self.user}:{self.password}@{self.bind}:{self.port}//"

    @property
    def management_url(self) -> str:
        return f"http://{self.bind}:{self.management_port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.running()

    def environ(self) -> dict[str, str]:
        home = Path(self._dir.name)
        (home / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = {self.bind}:{self.port}\n"
            f"management.tcp.ip = {self.bind}\nmanagement.tcp.port = {self.management_port}\n"
            # Queue figures in the management API fresh to a tenth of a second (the default is 5 s).
            "collect_statistics_interval = 100\n"
            + (
                f"default_user = {self.user}\ndefault_pass = {self.password}\n"
                if self.user != "guest"
                else ""
            )
            + self.config
        )
        (home / "enabled_plugins").write_text("[rabbitmq_management].\n")
        return {
            "HOME": str(home),  # the Erlang cookie goes there
            # Our epmd may be told to exit (stop) even if it still lists the node a moment after its death.
            "ERL_EPMD_RELAXED_COMMAND_CHECK": "1",
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": self.bind,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "RABBITMQ_CONFIG_FILE": str(home / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(home / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(home / "mnesia"),
            "RABBITMQ_LOG_BASE": str(home / "log"),
            "RABBITMQ_LOGS": "-",
            "RABBITMQ_CONF_ENV_FILE": str(home / "rabbitmq-env.conf"),  # not the system node's
        }

    def start(self, timeout: float = 60.0) -> RabbitMQServer:
        try:
            return self._start(timeout)
        except RuntimeError as exc:
            # The free ports were picked before the node binds them, and another process may have taken one
            # meanwhile (its own epmd's too: then the node cannot register, "nodistribution"): a first start
            # tries once more on other ports (a restart keeps its own).
            if self._started or not any(
                w in str(exc) for w in ("already_used", "eaddrinuse", "nodistribution")
            ):
                raise
            self._pick_ports()
            return self._start(timeout)

    def _pick_ports(self) -> None:
        self.port, self.management_port, self.dist_port, self.epmd_port = (free_port() for _ in range(4))
        self.name = f"workshop-{self.port}@localhost"

    def _start(self, timeout: float) -> RabbitMQServer:
        if self.running:
            raise RuntimeError(f"this RabbitMQ node (port {self.port}) is already running")
        self.process = Process([*self.wrap, self.binary], cwd=self._dir.name, env=self.environ())
        try:
            self.process.start(port=self.port, host=self.bind, timeout=timeout)
            wait_until(lambda: problem(self.url, timeout=1) is None, lambda: problem(self.url), timeout)
            self.process.wait_until(self._management_answers, "the management API", timeout)
        except AssertionError as exc:
            self.kill()
            self._stop_epmd()
            raise RuntimeError(f"RabbitMQ did not start on port {self.port}: {exc}") from None
        self._started = True
        return self

    def ctl(self, *args: str) -> subprocess.CompletedProcess:
        """``rabbitmqctl`` for this node (on its host, with its cookie and epmd)."""
        ctl = str(Path(self.binary).with_name("rabbitmqctl"))
        return subprocess.run([*self.wrap, ctl, "-n", self.name, *args], env={**os.environ, **self.environ()},
                              capture_output=True, text=True, timeout=60)  # fmt: skip

    def _management_answers(self) -> bool:
        try:
            self.api("overview")
            return True
        except OSError:
            return False

    def api(self, path: str, method: str = "GET", timeout: float = 2.0):
        """The management HTTP API (GET returns the decoded JSON)."""
        request = urllib.request.Request(f"{self.management_url}/api/{path}", method=method)
        login = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        request.add_header("Authorization", f"Basic {login}")
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def queues(self) -> dict[str, dict]:
        """Each queue of the default vhost by name: messages_ready, messages_unacknowledged, type, durable..."""
        return {queue["name"]: queue for queue in self.api("queues/%2F")}

    def stop(self, keep: bool = False) -> None:
        """Stop the node and the epmd it started. ``keep``: a clean shutdown that keeps its data, as an
        operator's restart; otherwise the data is thrown away, so there is nothing to wait for."""
        if self.process:
            if keep:
                self.process.stop(timeout=30)
            else:
                self.process.kill()
        self.process = None
        self._stop_epmd()
        if not keep:
            self._dir.cleanup()
            self._dir = tempfile.TemporaryDirectory(prefix="workshop-rabbitmq-")

    def kill(self) -> None:
        """SIGKILL, as a crash would: its data folder is kept."""
        if self.process:
            self.process.kill()
        self.process = None

    def _stop_epmd(self) -> None:
        epmd = shutil.which("epmd") or next(Path("/usr/lib/erlang").glob("erts-*/bin/epmd"), None)
        if epmd:
            subprocess.run(
                [*self.wrap, str(epmd), "-port", str(self.epmd_port), "-kill"],
                capture_output=True,
                timeout=10,
            )

    def __enter__(self) -> RabbitMQServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
