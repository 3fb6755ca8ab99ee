"""Exercises check themselves: an unchanged copy of step N-1 fails step N's checks, naming what is
missing; the reference step passes. `make start-step N` / `make check-step N`, as a student types them."""

import ast
import shutil

import pytest

from tests.harness import make, run
from workshop.exercise import docstrings_of_tests
from workshop.steps import ROOT


def make_in(workspace, *args):
    return make(*args, timeout=600, WORKSPACE=str(workspace))


def check(n, folder, *pytest_args):
    command = [ROOT / ".venv/bin/python", "-m", "workshop.exercise", "check", n, "--workspace", folder, "--"]
    return run([*command, *pytest_args], timeout=600)


def test_start_step_copies_the_previous_step(tmp_path):
    first = make_in(tmp_path, "start-step", "3")
    assert first.returncode == 0, first.stderr
    copy = tmp_path / "step03"
    assert (copy / "mycelery" / "main.py").read_text() == (
        ROOT / "step02_celery_intro/mycelery/main.py"
    ).read_text()
    assert not list(copy.rglob("__pycache__"))

    (copy / "users" / "views.py").write_text("# my work\n")
    refused = make_in(tmp_path, "start-step", "3")
    assert refused.returncode != 0
    assert "FORCE=1" in refused.stderr
    assert (copy / "users" / "views.py").read_text() == "# my work\n", "a student's work is never overwritten"

    forced = make_in(tmp_path, "start-step", "3", "FORCE=1")
    assert forced.returncode == 0
    assert (copy / "users" / "views.py").read_text() == (
        ROOT / "step02_celery_intro/users/views.py"
    ).read_text()


# For each step: a test that names what an unchanged copy of the step before lacks (kept to a few
# fast tests here; `make check-step N` runs them all).
MISSING = {
    2: ("test_the_step_has_the_mycelery_package", "Step 2 adds the Celery package mycelery/"),
    3: ("test_with_no_worker_the_message_waits_in_the_broker", "the SMS task should wait in the broker"),
    4: ("test_the_sms_task_goes_to_the_sms_queue", "POST /users/sms/ is not there"),
}


@pytest.mark.parametrize("n", [2, 3, 4])
def test_check_step_names_what_is_missing(tmp_path, n):
    copy = tmp_path / f"step{n:02d}"
    shutil.copytree(next(ROOT.glob(f"step{n - 1:02d}_*")), copy, ignore=shutil.ignore_patterns("__pycache__"))
    name, says = MISSING[n]

    result = check(n, copy, "-k", name)

    assert result.returncode != 0, result.stdout
    assert f"MISSING {name}" in result.stdout
    assert says in result.stdout
    assert "still to do" in result.stdout


def test_check_step_passes_the_reference_step(tmp_path):
    copy = tmp_path / "step02"
    shutil.copytree(ROOT / "step02_celery_intro", copy, ignore=shutil.ignore_patterns("__pycache__"))

    result = check(2, copy)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "All 7 pass: this is step 2" in result.stdout


def test_check_step_without_a_workspace_says_what_to_do(tmp_path):
    result = make_in(tmp_path, "check-step", "2")

    assert result.returncode != 0
    assert "Run `make start-step 2` first" in result.stderr


def test_every_check_a_student_runs_says_what_it_checks():
    """Each test of tests/step0N (what `make check-step N` runs) has a docstring whose first paragraph
    fits on one line: the check prints it next to a failure."""
    for folder in sorted((ROOT / "tests").glob("step0*")):
        names = {
            node.name
            for path in folder.glob("test_*.py")
            for node in ast.parse(path.read_text()).body
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
        }
        docs = docstrings_of_tests(folder)

        assert names, f"no tests in {folder}"
        assert not names - docs.keys(), (
            f"{folder.name}: tests without a docstring: {sorted(names - docs.keys())}"
        )
        too_long = sorted(name for name, doc in docs.items() if len(doc) > 200)
        assert not too_long, f"{folder.name}: a first paragraph longer than 200 characters: {too_long}"
