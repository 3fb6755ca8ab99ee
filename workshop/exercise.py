"""Exercises: do a step yourself, then let its tests tell you what is still missing.

python -m workshop.exercise start 3     # copy step 2 into workspace/step03/ (make start-step 3)
python -m workshop.exercise check 3     # step 3's tests against workspace/step03/ (make check-step 3)
"""

from __future__ import annotations

import argparse
import ast
import filecmp
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from workshop.steps import COPY_IGNORE, ROOT, step_folder


def workspace_root() -> Path:
    return Path(os.environ.get("WORKSPACE") or ROOT / "workspace")


def same_tree(a: Path, b: Path) -> bool:
    compare = filecmp.dircmp(a, b, ignore=["__pycache__"])
    if compare.left_only or compare.right_only or compare.funny_files:
        return False
    _, mismatch, errors = filecmp.cmpfiles(a, b, compare.common_files, shallow=False)
    return not mismatch and not errors and all(same_tree(a / d, b / d) for d in compare.common_dirs)


def start(n: int, force: bool) -> int:
    if n < 2:
        sys.exit("Step 1 is where everyone starts: there is nothing before it to copy. Try start 2.")
    source, target = step_folder(n - 1), workspace_root() / f"step{n:02d}"
    if target.exists():
        if same_tree(source, target):
            print(
                f"{target} is already an unchanged copy of {source.name}/: edit it, then `make check-step {n}`."
            )
            return 0
        if not force:
            print(
                f"{target} already exists and has changes. Keep working in it (`make check-step {n}`), "
                f"or start over with `make start-step {n} FORCE=1` (your changes there will be lost).",
                file=sys.stderr,
            )
            return 1
        shutil.rmtree(target)
    shutil.copytree(source, target, ignore=COPY_IGNORE)
    print(f"Copied {source.name}/ to {target}.")
    print(
        f"Now make it step {n}: the step {n} page says what to change. Check your work with `make check-step {n}`."
    )
    return 0


def docstrings_of_tests(folder: Path) -> dict[str, str]:
    """What every test function in a tests folder checks, by name: its docstring's first paragraph, on
    one line."""
    docs = {}
    for path in folder.glob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                doc = ast.get_docstring(node)
                if doc:
                    docs[node.name] = " ".join(doc.split("\n\n")[0].split())
    return docs


def first_line(message: str) -> str:
    for line in message.splitlines():
        line = line.strip()
        if line and not line.startswith(("assert ", "+", "-", "where ")):
            return line[:300]
    return message.strip().splitlines()[0][:300] if message.strip() else ""


def check(n: int, workspace: Path | None, pytest_args: list[str]) -> int:
    target = (workspace or workspace_root() / f"step{n:02d}").resolve()
    if not (target / "manage.py").exists():
        print(f"There is no step folder at {target}. Run `make start-step {n}` first.", file=sys.stderr)
        return 2
    tests = ROOT / "tests" / f"step{n:02d}"
    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "report.xml"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                str(tests),
                "-q",
                "-p",
                "no:cacheprovider",
                f"--junitxml={junit}",
                *pytest_args,
            ],
            cwd=ROOT,
            env={**os.environ, "STEP_DIR": str(target)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not junit.exists():
            print(f"The step {n} tests could not run at all against {target}.", file=sys.stderr)
            return 2
        cases = list(ET.parse(junit).getroot().iter("testcase"))

    docs = docstrings_of_tests(tests)
    passed, missing = [], []
    for case in cases:
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if case.find("skipped") is not None:
            continue
        name = case.get("name", "")
        if problem is None:
            passed.append(name)
        else:
            message = first_line(problem.get("message") or problem.text or "")
            missing.append((name, docs.get(name.split("[")[0], ""), message))

    print(f"Step {n} checks against {target}:")
    for name in passed:
        print(f"  ok      {name}")
    for name, doc, message in missing:
        print(f"  MISSING {name}")
        if doc:
            print(f"          what it checks: {doc}")
        if message:
            print(f"          what went wrong: {message}")
    if not cases:
        print("  (no test ran)")
        return 1
    if missing:
        print(
            f"{len(passed)} of {len(cases)} pass; {len(missing)} still to do. Rerun `make check-step {n}` after each change."
        )
        return 1
    print(f"All {len(cases)} pass: this is step {n}. Compare with the reference: `make diff-step {n}`.")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    start_parser = sub.add_parser("start", help="copy step N-1 into workspace/stepNN")
    start_parser.add_argument("n", type=int)
    start_parser.add_argument("--force", action="store_true", help="overwrite a workspace copy with changes")
    check_parser = sub.add_parser("check", help="run step N's tests against workspace/stepNN")
    check_parser.add_argument("n", type=int)
    check_parser.add_argument("--workspace", type=Path, help="another folder to check")
    # Anything after `--` goes to pytest (e.g. `-- -k interval`).
    args, extra = parser.parse_known_args(argv)
    if args.command == "start" and extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "start":
        return start(args.n, args.force)
    return check(args.n, args.workspace, [a for a in extra if a != "--"])


if __name__ == "__main__":
    sys.exit(main())
