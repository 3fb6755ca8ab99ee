"""`make test`: each suite in its own pytest process (the steps share module names), one summary.

python -m workshop.testrun 1 2 3      # the gateway's tests, steps 1-3, then tests/docs etc.

The steps with a broker (2-4) are run a second time with BROKER=rabbitmq, and so are the hostile
matrix's broker cells (marked ``broker``): the same claims proven on RabbitMQ. That lane runs beside the
Redis step suites and the docs', which spend most of their time waiting for processes; so does a second
lane, the test hosts (tests/hosts) and the demo (tests/demo), which wait on network timeouts and on make.
The lanes' output is printed after the others'.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import xml.etree.ElementTree as ET
from pathlib import Path

from workshop.steps import ROOT, procfile, step_folder

REDIS, RABBITMQ = {"BROKER": "redis"}, {"BROKER": "rabbitmq"}
# Suites that load both cores (Chromium, four exercise checks at a time, the hostile floods): not beside
# the RabbitMQ lane, whose tests have time bounds of their own.
BOTH_CORES = {"browser", "exercises", "hostile"}
# Suites that run in a lane of their own, beside the light ones: they mostly wait (network timeouts, make
# starting and stopping whole demos).
OWN_LANE = {"hosts", "demo"}


def suites(steps: list[str]) -> list[Path]:
    tests = ROOT / "tests"
    found = [tests / "workshop"]
    found += [tests / f"step{int(n):02d}" for n in steps]
    # Anything else in tests/ (docs, browser, ...) runs after the steps it describes.
    found += sorted(
        p
        for p in tests.iterdir()
        if p.is_dir() and p not in found and not p.name.startswith(("_", ".")) and p.name != "__pycache__"
    )
    return [p for p in found if p.is_dir()]


def counts(junit: Path) -> dict[str, int]:
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    if not junit.exists():
        return totals
    for suite in ET.parse(junit).getroot().iter("testsuite"):
        for key in totals:
            totals[key] += int(suite.get(key, 0))
    return totals


def rabbitmq_passes(steps: list[str]) -> list[tuple[str, list[str]]]:
    """(name, pytest arguments) of the suites run again on RabbitMQ: each step that has a worker, and the
    hostile matrix's broker cells."""
    passes = [(f"tests/step{int(n):02d}", []) for n in steps if "worker" in procfile(step_folder(n))]
    if (ROOT / "tests" / "hostile").is_dir():
        passes.append(("tests/hostile", ["-m", "broker"]))
    return passes


def run_suite(name: str, args: list[str], junit: Path, env=None, output=None) -> tuple[int, dict]:
    code = subprocess.call(
        [sys.executable, "-m", "pytest", name, *args, f"--junitxml={junit}"],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=output,
        stderr=subprocess.STDOUT if output else None,
    )
    return code, counts(junit)


def main(argv: list[str]) -> int:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        lane_rows: list = []
        logs: list[Path] = []

        def start_lane(name: str, passes: list[tuple[str, list[str]]], env: dict) -> threading.Thread:
            """Run the suites (suite, pytest arguments) one after another in a thread, with ``env``."""
            log = Path(tmp) / f"{name}.log"
            logs.append(log)
            on, row = (" on RabbitMQ", " (rabbitmq)") if env is RABBITMQ else ("", "")

            def run():
                with open(log, "w") as output:
                    for suite, args in passes:
                        output.write(f"\n==> {suite}{on}\n")
                        output.flush()
                        junit = Path(tmp) / f"{name}-{Path(suite).name}.xml"
                        lane_rows.append((suite + row, *run_suite(suite, args, junit, env, output)))

            thread = threading.Thread(target=run)
            thread.start()
            return thread

        found = suites(argv)
        lanes = [
            start_lane("rabbitmq", rabbitmq_passes(argv), RABBITMQ),
            start_lane(
                "waiting", [(str(s.relative_to(ROOT)), []) for s in found if s.name in OWN_LANE], REDIS
            ),
        ]
        # The light suites first, beside the lanes; then, once they are done, those that load both cores.
        for suite in sorted((s for s in found if s.name not in OWN_LANE), key=lambda s: s.name in BOTH_CORES):
            if suite.name in BOTH_CORES and any(lane.is_alive() for lane in lanes):
                print("\n==> waiting for the lanes (RabbitMQ; test hosts and demo)", flush=True)
                for lane_thread in lanes:
                    lane_thread.join()
            name = suite.relative_to(ROOT)
            print(f"\n==> {name}", flush=True)
            rows.append((str(name), *run_suite(str(name), [], Path(tmp) / f"{suite.name}.xml", REDIS)))
        for lane_thread in lanes:
            lane_thread.join()
        for log in logs:
            print(log.read_text(), flush=True)
        rows += lane_rows

    print("\n==> summary")
    passed = failed = skipped = 0
    for name, code, c in rows:
        bad = c["failures"] + c["errors"]
        ok = c["tests"] - bad - c["skipped"]
        # pytest exits 5 when a suite collected nothing: that is a failure here.
        if code != 0 and bad == 0:
            bad = 1
        passed, failed, skipped = passed + ok, failed + bad, skipped + c["skipped"]
        state = "ok" if code == 0 else f"FAILED (exit {code})"
        print(f"  {name:<27} {ok:>4} passed {bad:>3} failed {c['skipped']:>3} skipped   {state}")
    print(f"total: {passed} passed, {failed} failed, {skipped} skipped")
    return 0 if all(code == 0 for _, code, _ in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
