"""`make run-step N` and `make demo`: check the ports, then start the step's Procfile with honcho.

    python -m workshop.demo run 4     # Redis, gateway, worker, Flower, Django for step 4
    python -m workshop.demo run 3 --dir workspace/step03   # the same for a student's copy of a step
    python -m workshop.demo entry 2 worker   # one line of the Procfile alone (make worker, make flower)
    python -m workshop.demo ready     # (a Procfile entry) print the addresses once the page answers

Ports come from the environment: WEB_PORT (8000), SMS_GATEWAY_PORT (8881), REDIS_PORT (6379),
FLOWER_PORT (5555). The URLs the step reads (REDIS_URL, RONGLIAN_BASE_URL, ...) are derived from them
unless they are set already. BROKER=rabbitmq makes the broker the RabbitMQ on 127.0.0.1:5672 (or
CELERY_BROKER_URL's): it must be running already, or the command stops at once and says how to get it.

Ctrl-C stops the processes in order: the web server and the worker first (the worker with a warm
shutdown, so the SMS in flight is finished), then Redis and the gateway, which that SMS still needs.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

from honcho.environ import parse_procfile
from honcho.manager import Manager

from workshop import rabbitmq
from workshop.processes import port_in_use, wait_forever, wait_until
from workshop.redis_server import ping
from workshop.steps import procfile, step_environment, step_folder, workspace_copy

PORTS = {  # env var: (default, what listens there)
    "WEB_PORT": (8000, "Django"),
    "SMS_GATEWAY_PORT": (8881, "the SMS gateway"),
    "REDIS_PORT": (6379, "Redis"),
    "FLOWER_PORT": (5555, "Flower"),
}


def port(name: str) -> int:
    return int(os.environ.get(name, PORTS[name][0]))


def environment() -> dict[str, str]:
    """The URLs the steps read, pointing at the ports chosen for this run."""
    gateway = f"http://127.0.0.1:{port('SMS_GATEWAY_PORT')}"
    redis_url = os.environ.get("REDIS_URL", f"redis://127.0.0.1:{port('REDIS_PORT')}").rstrip("/")
    # Steps 2-3 read the Celery URLs only (mycelery/config.py): derived from REDIS_URL here too.
    urls = step_environment(redis_url, gateway, rabbitmq.broker_url(redis_url))
    return {key: os.environ.get(key, value) for key, value in urls.items()}


def process_environment() -> dict[str, str]:
    """What the step's processes get: this environment, the URLs above, and the ports chosen for this run."""
    return {**os.environ, **environment(), **{name: str(port(name)) for name in PORTS}}


def broker_problem(folder: Path) -> str | None:
    """With BROKER=rabbitmq, why the step cannot start (RabbitMQ not there), at once rather than a worker
    retrying in a loop; None when all is well or the step has no worker."""
    if rabbitmq.chosen() != "rabbitmq" or "worker" not in procfile(folder):
        return None
    return rabbitmq.problem(environment()["CELERY_BROKER_URL"])


def broker_named() -> str:
    url = environment()["CELERY_BROKER_URL"]
    return f"broker: {rabbitmq.chosen()} ({rabbitmq.shown(url)})"


def busy_ports(uses_flower: bool) -> list[str]:
    problems = []
    for name, (_, what) in PORTS.items():
        if name == "FLOWER_PORT" and not uses_flower:
            continue
        number = port(name)
        if name == "REDIS_PORT":
            # A Redis already there is fine (the launcher uses it); anything else is not.
            if "REDIS_URL" in os.environ or ping(f"redis://127.0.0.1:{number}") or not port_in_use(number):
                continue
        elif not port_in_use(number):
            continue
        problems.append(
            f"Port {number} ({what}) is already in use. Stop what uses it, "
            f"or choose another port: {name}={number + 10} make ..."
        )
    return problems


def folder_to_run(n: str, given: str | None) -> tuple[Path, str]:
    """The folder to start, and the banner's word for it: the one given (STEP_DIR), else a student's
    copy in workspace/ once there is one, else the reference step."""
    reference = step_folder(n)
    if given:
        folder = Path(given).resolve()
        if not (folder / "Procfile").exists():
            sys.exit(f"{given} is not a step folder: it has no Procfile.")
        return folder, "the reference" if folder == reference else "your copy"
    copy = workspace_copy(n)
    if (copy / "Procfile").exists():
        return copy, f"your copy (the reference: make run-step {int(n)} STEP_DIR={reference.name})"
    return reference, "the reference"


def run(n: str, given: str | None = None) -> int:
    folder, which = folder_to_run(n, given)
    procfile = (folder / "Procfile").read_text()
    problems = busy_ports(uses_flower="flower:" in procfile)
    broken = broker_problem(folder)
    if problems or broken:
        print("\n".join([*problems, *([broken] if broken else [])]), file=sys.stderr)
        return 2
    env = process_environment()
    print(
        f"==> step {int(n)}: starting {folder}/Procfile, {which}, with honcho (Ctrl-C stops everything)",
        flush=True,
    )
    if "worker:" in procfile:
        print(f"    {broker_named()}", flush=True)
    os.chdir(folder)
    manager = OrderedStopManager()
    for name, command in parse_procfile(procfile).processes.items():
        # exec: the process honcho signals is the command itself, not a shell waiting for it.
        manager.add_process(f"{name}.1", f"exec {command}", env={**env, "HONCHO_PROCESS_NAME": f"{name}.1"})
    manager.loop()
    return manager.returncode or 0


# Stopped last: the worker needs them to finish its SMS, and without Redis it logs only tracebacks.
SERVICES = ("redis", "gateway")
# How long the web server and the worker get to stop (the SMS in flight: the provider's read timeout).
STOP_WAIT = 15


class OrderedStopManager(Manager):
    """honcho's Manager, stopping the way an operator would: the web server and the worker first, then
    Redis and the gateway once they have gone. The worker gets SIGTERM on its main process only (what
    systemd's KillMode=mixed does): that is Celery's warm shutdown, which finishes the task in flight.
    Sent to the worker's whole process group, as honcho does, it would kill the pool's processes
    mid-task."""

    def __init__(self):
        super().__init__()
        self._kill_after = None

    def _killall(self, force=False):
        if force:
            return super()._killall(force=True)
        first = [name for name in self._running() if name.split(".")[0] not in SERVICES]
        for name in first:
            self._stop(name)
        threading.Thread(target=self._stop_services_after, args=(first,), daemon=True).start()

    def _stop_services_after(self, first):
        deadline = time.monotonic() + STOP_WAIT
        while time.monotonic() < deadline and any(name in self._running() for name in first):
            time.sleep(0.1)
        for name in self._running():
            self._stop(name)

    def kill(self):
        # honcho sends SIGKILL 5 s after the first process stopped: too soon for a send in flight.
        if self._kill_after is None:
            self._kill_after = time.monotonic() + STOP_WAIT + 5
        if time.monotonic() >= self._kill_after:
            super().kill()

    def _running(self):
        return [name for name, p in self._processes.items() if "returncode" not in p and "pid" in p]

    def _stop(self, name):
        pid = self._processes[name]["pid"]
        warm = name.startswith("worker")
        self._system_print(f"sending SIGTERM to {name} (pid {pid}){' for a warm shutdown' if warm else ''}\n")
        try:
            if warm:
                os.kill(pid, signal.SIGTERM)
            else:
                os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass  # it has just exited


def entry(n: str, name: str) -> int:
    """`make worker STEP=N` and `make flower`: one line of the step's Procfile, alone, in the step's folder,
    with the same environment as `make run-step N` (the chosen broker included)."""
    folder = step_folder(n)
    command = procfile(folder).get(name)
    if not command:
        why = (
            "it sends the SMS inside the request" if name == "worker" else f"its Procfile has no {name} line"
        )
        print(f"Step {int(n)} has no {name}: {why}.", file=sys.stderr)
        return 2
    broken = broker_problem(folder)
    if broken:
        print(broken, file=sys.stderr)
        return 2
    print(f"==> step {int(n)}: {command}   ({broker_named()})", flush=True)
    os.chdir(folder)
    os.execvpe("sh", ["sh", "-c", f"exec {command}"], process_environment())
    return 0  # pragma: no cover


def ready() -> int:
    """Wait for the page, print where everything is, then stay (honcho stops all when one exits)."""
    try:
        wait_until(lambda: port_in_use(port("WEB_PORT")), "Django", timeout=120, interval=0.3)
    except AssertionError:
        print(f"Django did not start on port {port('WEB_PORT')}: see the web.1 lines above.", flush=True)
    else:
        lines = [
            f"    page:   http://127.0.0.1:{port('WEB_PORT')}/",
            f"    inbox:  {environment()['SMS_GATEWAY_INBOX_URL']}",
        ]
        if (Path.cwd() / "Procfile").read_text().count("flower:"):
            lines.append(f"    Flower: http://127.0.0.1:{port('FLOWER_PORT')}/")
        print("==> ready. Open the page and click 获取验证码:\n" + "\n".join(lines), flush=True)
    wait_forever()
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["run"] and len(argv) in (2, 4) and argv[1].isdigit() and argv[2:3] in ([], ["--dir"]):
        return run(argv[1], argv[3] if len(argv) == 4 else None)
    if argv[:1] == ["entry"] and len(argv) == 3 and argv[1].isdigit():
        return entry(argv[1], argv[2])
    if argv == ["ready"]:
        return ready()
    sys.exit("usage: python -m workshop.demo run N [--dir FOLDER] | entry N NAME | ready")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sys.exit(main(sys.argv[1:]))
