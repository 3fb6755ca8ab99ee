"""`make test`: each suite in its own pytest process (the steps share module names), one summary.

python -m workshop.testrun 1 2 3      # the gateway's tests, steps 1-3, then tests/docs etc.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from workshop.steps import ROOT


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


def main(argv: list[str]) -> int:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for suite in suites(argv):
            name = suite.relative_to(ROOT)
            print(f"\n==> {name}", flush=True)
            junit = Path(tmp) / f"{suite.name}.xml"
            code = subprocess.call(
                [sys.executable, "-m", "pytest", str(name), f"--junitxml={junit}"], cwd=ROOT
            )
            rows.append((str(name), code, counts(junit)))

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
        print(f"  {name:<16} {ok:>4} passed {bad:>3} failed {c['skipped']:>3} skipped   {state}")
    print(f"total: {passed} passed, {failed} failed, {skipped} skipped")
    return 0 if all(code == 0 for _, code, _ in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
