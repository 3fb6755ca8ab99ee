"""Exercises: do a step yourself, then let its tests tell you what is still missing.

python -m workshop.exercise start 3     # copy step 2 into workspace/step03/ (make start-step 3)
python -m workshop.exercise check 3     # step 3's tests against workspace/step03/ (make check-step 3)
"""

from __future__ import annotations

import argparse
import ast
import filecmp
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from workshop.steps import COPY_IGNORE, ROOT, step_folder, workspace_copy


def same_tree(a: Path, b: Path) -> bool:
    compare = filecmp.dircmp(a, b, ignore=["__pycache__"])
    if compare.left_only or compare.right_only or compare.funny_files:
        return False
    _, mismatch, errors = filecmp.cmpfiles(a, b, compare.common_files, shallow=False)
    return not mismatch and not errors and all(same_tree(a / d, b / d) for d in compare.common_dirs)


def start(n: int, force: bool) -> int:
    if n < 2:
        sys.exit("Step 1 is where everyone starts: there is nothing before it to copy. Try start 2.")
    source, target = step_folder(n - 1), workspace_copy(n)
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
    print(run_hint(n, target))
    return 0


def run_hint(n: int, target: Path) -> str:
    """How to see this copy in the browser, with the same Redis, gateway and worker as the reference."""
    default = workspace_copy(n).resolve()
    where = "" if target.resolve() == default else f" STEP_DIR={target}"
    return f"See your copy in the browser: `make run-step {n}{where}`."


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
    # A fixture's pytest.fail() reads 'failed on setup with "Failed: ..."' in the report.
    if message.startswith('failed on setup with "'):
        message = message.removeprefix('failed on setup with "').removesuffix('"')
    message = message.removeprefix("Failed: ")
    for line in message.splitlines():
        line = line.strip()
        if line and not line.startswith(("assert ", "+", "-", "where ")):
            return line[:300]
    return message.strip().splitlines()[0][:300] if message.strip() else ""


NEEDS = re.compile(r"needs part \d+")


@dataclass
class Part:
    """One stair of a step: a test module test_NN_<name>.py and the page section it checks."""

    number: int
    module: Path
    title: str
    section: str  # "step4.md#interval-race"


def parts_of(tests: Path) -> list[Part]:
    """The parts of a step whose tests are cut into test_NN_<name>.py modules (step 4); none otherwise."""
    parts = []
    for module in sorted(tests.glob("test_[0-9][0-9]_*.py")):
        doc = ast.get_docstring(ast.parse(module.read_text())) or ""
        section = re.search(r"step\d\.md#[\w-]+", doc)
        parts.append(
            Part(
                int(module.name[5:7]),
                module,
                doc.split("\n")[0].rstrip("."),
                section.group(0) if section else "",
            )
        )
    return parts


@dataclass
class Result:
    name: str
    module: str  # "test_05_worker_crash"
    problem: str | None  # None: it passed
    waiting: bool = False  # failed because a part it stands on is missing


def run_tests(tests: Path, target: Path, selected: list[Path], pytest_args: list[str]) -> list[Result] | None:
    with tempfile.TemporaryDirectory() as tmp:
        junit = Path(tmp) / "report.xml"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                *[str(path) for path in selected or [tests]],
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
            return None
        cases = list(ET.parse(junit).getroot().iter("testcase"))
    results = []
    for case in cases:
        if case.find("skipped") is not None:
            continue
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        message = None if problem is None else first_line(problem.get("message") or problem.text or "")
        results.append(
            Result(
                case.get("name", ""),
                case.get("classname", "").rpartition(".")[2],
                message,
                waiting=bool(message and NEEDS.match(message)),
            )
        )
    return results


def check(n: int, workspace: Path | None, part: int | None, pytest_args: list[str]) -> int:
    target = (workspace or workspace_copy(n)).resolve()
    if not (target / "manage.py").exists():
        print(f"There is no step folder at {target}. Run `make start-step {n}` first.", file=sys.stderr)
        return 2
    tests = ROOT / "tests" / f"step{n:02d}"
    parts = parts_of(tests)
    if part is not None:
        chosen = [p for p in parts if p.number == part]
        if not chosen:
            numbers = ", ".join(str(p.number) for p in parts) or "none: this step is checked whole"
            print(f"Step {n} has no part {part} (its parts: {numbers}).", file=sys.stderr)
            return 2
        parts = chosen
    results = run_tests(tests, target, [p.module for p in parts], pytest_args)
    if results is None:
        print(f"The step {n} tests could not run at all against {target}.", file=sys.stderr)
        return 2
    if not results:
        print(f"Step {n} checks against {target}: no test ran.")
        return 1
    docs = docstrings_of_tests(tests)
    code = climb(n, part, parts, results, docs, target) if parts else whole(n, results, docs, target)
    print(run_hint(n, target))
    return code


def whole(n: int, results: list[Result], docs, target: Path) -> int:
    """Print each test's state; the missing ones with what they check and what went wrong."""
    passed = [r for r in results if r.problem is None]
    missing = [r for r in results if r.problem is not None]
    print(f"Step {n} checks against {target}:")
    for r in passed:
        print(f"  ok      {r.name}")
    for r in missing:
        explain(r, docs, "  MISSING ")
    if missing:
        print(
            f"{len(passed)} of {len(results)} pass; {len(missing)} still to do. Rerun `make check-step {n}` after each change."
        )
        return 1
    print(f"All {len(results)} pass: this is step {n}. Compare with the reference: `make diff-step {n}`.")
    return 0


def explain(result: Result, docs: dict[str, str], head: str) -> None:
    pad = " " * len(head)
    print(f"{head}{result.name}")
    doc = docs.get(result.name.split("[")[0])
    if doc:
        print(f"{pad}what it checks: {doc}")
    if result.problem:
        print(f"{pad}what went wrong: {result.problem}")


def climb(n: int, only: int | None, parts: list[Part], results: list[Result], docs, target: Path) -> int:
    """Print the stairs: each part's state, then the first part to do, its first failing test and the
    section to read."""
    print(f"Step {n}, part by part, against {target}:")
    first = waiting = None
    width = max(len(p.title) for p in parts)
    for part in parts:
        mine = [r for r in results if r.module == part.module.stem]
        failed = [r for r in mine if r.problem]
        if not failed:
            state = "ok  "
        elif all(r.waiting for r in failed):
            state = "wait"
            waiting = waiting or failed[0].problem
        else:
            state = "TODO"
            first = first or (part, failed)
        ok = len(mine) - len(failed)
        note = f"  ({NEEDS.match(failed[0].problem).group(0)} first)" if state == "wait" else ""
        print(f"  {state}  part {part.number:>2}  {part.title:<{width}}  {ok:>2}/{len(mine)} pass{note}")
    if first is None and waiting:
        print(f"\nThis part cannot be checked yet: it {waiting}")
        return 1
    if first is None:
        if only is None:
            print(f"Every part passes: this is step {n}. Compare with the reference: `make diff-step {n}`.")
        else:
            print(f"Part {only} passes. The whole stairs: `make check-step {n}`.")
        return 0
    part, failed = first
    real = [r for r in failed if not r.waiting]
    print(f"\nNext: part {part.number}, {part.title} ({len(real)} test(s) still failing). The first:")
    explain(real[0], docs, "  ")
    for other in real[1:]:
        print(f"  also: {other.name}")
    page, _, anchor = part.section.partition("#")
    english = page.replace(".md", ".en.md")
    print(f"Read: docs/{page} (中文) or docs/{english}, section #{anchor}")
    print(f"  (on the site, `make docs-serve`: /{page[:-3]}/#{anchor} or /en/{page[:-3]}/#{anchor}).")
    print(
        f"Check this part alone: `make check-step {n} PART={part.number}`; all parts: `make check-step {n}`."
    )
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    start_parser = sub.add_parser("start", help="copy step N-1 into workspace/stepNN")
    start_parser.add_argument("n", type=int)
    start_parser.add_argument("--force", action="store_true", help="overwrite a workspace copy with changes")
    check_parser = sub.add_parser("check", help="run step N's tests against workspace/stepNN")
    check_parser.add_argument("n", type=int)
    check_parser.add_argument("--workspace", type=Path, help="another folder to check")
    check_parser.add_argument("--part", type=int, help="check one part of a step cut into parts (step 4)")
    # Anything after `--` goes to pytest (e.g. `-- -k interval`).
    args, extra = parser.parse_known_args(argv)
    if args.command == "start" and extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "start":
        return start(args.n, args.force)
    return check(args.n, args.workspace, args.part, [a for a in extra if a != "--"])


if __name__ == "__main__":
    sys.exit(main())
