"""One way to run a real process for the tests, the browser and the bench: in a process group of its
own, its output collected, waited for by a line it prints or a port it opens, and stopped with
SIGTERM (then SIGKILL) whatever happens.

    with Process(["python", "-m", "workshop.gateway", "--port", "8990"]).start(port=8990) as gateway:
        ...
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


class Process:
    """``log``: also write the output to this file (kept after the process is gone). ``stdin``: a pipe
    to the process, for :meth:`send`. ``inherit=False``: ``env`` is the whole environment, not additions
    to this process's."""

    def __init__(
        self,
        args: list[str],
        cwd: Path | str | None = None,
        env: dict[str, str] | None = None,
        log: Path | None = None,
        stdin: bool = False,
        inherit: bool = True,
    ):
        self.args = [str(arg) for arg in args]
        self.cwd = cwd
        self.log_path, self.stdin = log, stdin
        # Its own temp dir: a process killed with SIGKILL cannot clean up after itself; stop() does.
        self.tmpdir = tempfile.mkdtemp(prefix="workshop-process-")
        base = os.environ if inherit else {}
        self.env = {**base, "PYTHONUNBUFFERED": "1", "TMPDIR": self.tmpdir, **(env or {})}
        self.popen: subprocess.Popen | None = None
        self.lines: list[str] = []
        self._reader: threading.Thread | None = None

    @property
    def output(self) -> str:
        return "".join(self.lines)

    @property
    def pid(self) -> int:
        assert self.popen, "not started"
        return self.popen.pid

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def start(
        self,
        ready: str | None = None,
        port: int | None = None,
        timeout: float = 60.0,
        host: str = "127.0.0.1",
    ) -> Process:
        """Start it; then wait until its output contains ``ready`` or something listens on ``host:port``."""
        self.popen = subprocess.Popen(
            self.args,
            cwd=self.cwd,
            env=self.env,
            text=True,
            stdin=subprocess.PIPE if self.stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            if ready is not None:
                self.wait_for(ready, timeout=timeout)
            if port is not None:
                self.wait_for_port(port, timeout, host)
        except BaseException:
            self.stop()  # a start that failed leaves nothing running
            raise
        return self

    def _read(self) -> None:
        assert self.popen and self.popen.stdout
        with open(self.log_path, "a") if self.log_path else contextlib.nullcontext() as log:
            for line in self.popen.stdout:
                self.lines.append(line)
                if log:
                    log.write(line)
                    log.flush()

    def send(self, line: str) -> None:
        """Write one line to the process's input (``stdin=True``)."""
        assert self.popen and self.popen.stdin, "started without stdin=True"
        self.popen.stdin.write(line + "\n")
        self.popen.stdin.flush()

    def close_input(self) -> None:
        """End of input: a process that reads until then exits by itself."""
        if self.popen and self.popen.stdin and not self.popen.stdin.closed:
            try:
                self.popen.stdin.close()
            except OSError:
                pass

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        """Wait until the output contains ``text``; fail with the output if it does not."""
        self.wait_until(lambda: text in self.output, repr(text), timeout)
        return self.output

    def wait_for_port(self, port: int, timeout: float = 30.0, host: str = "127.0.0.1") -> None:
        """Wait until something accepts connections on ``host:port``."""
        self.wait_until(lambda: port_in_use(port, host), f"port {port} to open on {host}", timeout)

    def wait_until(self, done, what: str, timeout: float = 30.0) -> None:
        """Wait until ``done()``; fail, with the output, when the process exits first or time runs out."""

        def done_or_exited() -> bool:
            if done():
                return True
            if not self.running():
                if self._reader:
                    self._reader.join(timeout=2)
                if done():
                    return True
                code = self.popen.returncode if self.popen else None
                raise AssertionError(
                    f"{self.args[:4]} exited (code {code}) before {what}. Its output:\n{self.output}"
                )
            return False

        wait_until(done_or_exited, lambda: f"{self.args[:4]}: no {what}. Its output:\n{self.output}", timeout)

    def signal(self, signum: int, group: bool = True) -> None:
        """Send ``signum`` to the whole group (the default) or to the main process only."""
        if not self.running():
            return
        try:
            if group:
                os.killpg(self.pid, signum)
            else:
                os.kill(self.pid, signum)
        except ProcessLookupError:
            pass  # it has just exited

    def stop(self, timeout: float = 15.0, group: bool = True) -> None:
        """SIGTERM (to the main process only with ``group=False``: a Celery worker's warm shutdown),
        then SIGKILL to the group if it is still running after ``timeout``."""
        if self.running():
            self.signal(signal.SIGTERM, group=group)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                return
        self._finish()

    def kill(self) -> None:
        """SIGKILL the whole group, as a crash would. Its output stays readable."""
        if self.running():
            self.signal(signal.SIGKILL)
            self.popen.wait()
        self._finish()

    def _finish(self) -> None:
        self.close_input()
        if self._reader:
            self._reader.join(timeout=5)
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Something accepts connections on ``port``."""
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex((host, port)) == 0


def can_use_many_addresses() -> bool:
    """Linux routes all of 127/8 to loopback, so a test can be many clients; macOS only 127.0.0.1 unless
    told otherwise (sudo ifconfig lo0 alias 127.0.0.2 up, and so on)."""
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.2", 0))
        return True
    except OSError:
        return False


def wait_forever() -> None:
    """Stay until stopped (Ctrl-C or SIGTERM): honcho stops every process when one exits, so a Procfile
    entry with nothing left to do must still keep running."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


def wait_until(done, failure, timeout: float = 30.0, interval: float = 0.05) -> None:
    """Poll ``done()`` until it is true; after ``timeout`` seconds fail with ``failure()`` (or the string)."""
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            message = failure() if callable(failure) else failure
            raise AssertionError(f"{message} (waited {timeout} s)")
        time.sleep(interval)
