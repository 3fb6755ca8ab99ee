"""Exercises check themselves: an unchanged copy of step N-1 fails step N's checks, naming what is
missing; the reference step passes. `make start-step N` / `make check-step N`, as a student types them."""

import ast
import re
import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.harness import make, run
from workshop.exercise import docstrings_of_tests, parts_of
from workshop.steps import COPY_IGNORE, ROOT, step_folder


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


# For each step checked whole: a test that names what an unchanged copy of the step before lacks (kept
# to a few fast tests here; `make check-step N` runs them all). Step 4 is checked part by part: below.
MISSING = {
    2: ("test_the_step_has_the_mycelery_package", "Step 2 adds the Celery package mycelery/"),
    3: ("test_with_no_worker_the_message_waits_in_the_broker", "the SMS task should wait in the broker"),
}


def copy_of(tmp_path, n, name=None):
    copy = tmp_path / (name or f"step{n:02d}")
    shutil.copytree(step_folder(n), copy, ignore=COPY_IGNORE)
    return copy


@pytest.mark.parametrize("n", [2, 3])
def test_check_step_names_what_is_missing(tmp_path, n):
    copy = copy_of(tmp_path, n - 1, f"step{n:02d}")
    name, says = MISSING[n]

    result = check(n, copy, "-k", name)

    assert result.returncode != 0, result.stdout
    assert f"MISSING {name}" in result.stdout
    assert says in result.stdout
    assert "still to do" in result.stdout


def test_check_step_passes_the_reference_step(tmp_path):
    copy = copy_of(tmp_path, 2)

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


PARTS = parts_of(ROOT / "tests" / "step04")


def stair_states(output: str) -> dict[int, str]:
    """The stairs' lines ("  TODO  part  3  Validate ...  0/47 pass"): part number -> state."""
    return {int(m[2]): m[1] for m in re.finditer(r"^  (ok|TODO|wait)\s+part\s+(\d+)\s", output, re.M)}


def test_the_parts_are_the_sections_of_the_page_in_order():
    """Step 4's test modules test_NN_<part>.py are numbered 0, 1, 2, ... and each names a section of the
    step 4 page (both languages), in the page's order; a part stands only on parts before it."""
    assert [part.number for part in PARTS] == list(range(len(PARTS))) and len(PARTS) >= 10
    for page in ("step4.md", "step4.en.md"):
        text = (ROOT / "docs" / page).read_text()
        places = [text.find("{#" + part.section.partition("#")[2] + "}") for part in PARTS]
        assert all(place > 0 for place in places), f"{page}: a part names a section it lacks: {PARTS}"
        assert places == sorted(places), f"{page}: the parts are not in the page's order"
    for part in PARTS:
        needs = re.search(r"^NEEDS = \[([\d, ]*)\]", part.module.read_text(), re.M)
        before = [int(n) for n in needs[1].split(",")] if needs else []
        assert all(n < part.number for n in before), f"part {part.number} stands on a later part"


def test_the_stairs_on_an_unchanged_step_3_start_at_part_0(tmp_path):
    """`make check-step 4` on a copy of step 3: part 0 to do, with its first test, what it checks and the
    section to read; every later part waits for it, failing at once instead of waiting for a worker."""
    copy_of(tmp_path, 3, "step04")

    result = make_in(tmp_path, "check-step", "4")

    assert result.returncode != 0
    states = stair_states(result.stdout)
    assert states == {0: "TODO", **{part.number: "wait" for part in PARTS[1:]}}, result.stdout
    assert "Next: part 0, No SMS behind a GET" in result.stdout
    assert "test_the_chapters_get_sends_nothing_and_names_the_new_method[get]" in result.stdout
    assert "what it checks: GET and HEAD must be safe" in result.stdout
    assert "Read: docs/step4.md (中文) or docs/step4.en.md, section #post-not-get" in result.stdout
    shown = [" ".join(line.split()) for line in result.stdout.splitlines()]
    for page in ("step4.md", "step4.en.md"):  # the output the Exercise section shows is this output
        exercise = (ROOT / "docs" / page).read_text().partition("{#exercise}")[2]
        sample = exercise.partition("```text\n")[2].partition("```")[0]
        for line in filter(None, (" ".join(line.split()) for line in sample.splitlines())):
            start = line.split("...")[0]
            assert any(start in real for real in shown), (
                f"{page} shows {line!r}; the check printed:\n{result.stdout}"
            )


def test_each_part_is_checked_alone(tmp_path):
    """`make check-step 4 PART=N`, as each section of the page ends, on a copy of step 3: only that part
    runs; part 0 is to do, every other part cannot be checked before it and says so."""
    copy_of(tmp_path, 3, "step04")

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(
            pool.map(lambda part: make_in(tmp_path, "check-step", "4", f"PART={part.number}"), PARTS)
        )

    for part, result in zip(PARTS, results, strict=True):
        assert result.returncode != 0
        assert stair_states(result.stdout) == {part.number: "TODO" if part.number == 0 else "wait"}, (
            result.stdout
        )
        if part.number:
            assert "cannot be checked yet: it needs part 0 first" in result.stdout


def test_every_part_fails_on_step_3_by_its_own_tests(tmp_path):
    """Like rustlings' own check: with the parts' foundations not enforced, each part still fails on an
    unchanged copy of step 3 (tests/step04, run against step04_final/, proves that each passes there)."""
    copy = copy_of(tmp_path, 3, "step04")

    result = run(
        [ROOT / ".venv/bin/python", "-m", "workshop.exercise", "check", "4", "--workspace", copy],
        env={"PARTS_UNGATED": "1"},
        timeout=600,
    )

    assert result.returncode != 0
    assert stair_states(result.stdout) == {part.number: "TODO" for part in PARTS}, result.stdout


def test_one_part_of_the_reference_passes_alone(tmp_path):
    """`make check-step 4 PART=3` runs only that part's tests and says it passes."""
    copy_of(tmp_path, 4, "step04")

    result = make_in(tmp_path, "check-step", "4", "PART=3")

    assert result.returncode == 0, result.stdout + result.stderr
    assert stair_states(result.stdout) == {3: "ok"}
    assert "Part 3 passes" in result.stdout


def test_a_test_stops_waiting_once_the_worker_is_idle(tmp_path):
    """A student's copy where the worker sends without the claim: the test waiting for "already sent"
    fails as soon as the worker has nothing left in hand, saying so, not when its timeout runs out."""
    copy = copy_of(tmp_path, 4, "step04")
    tasks = copy / "mycelery" / "sms" / "tasks.py"
    source = tasks.read_text()
    claim = "held = redis.eval(CLAIM, 1, claim, self.request.retries, constants.SMS_EXPIRE_TIME)"
    assert claim in source
    tasks.write_text(source.replace(claim, "held = None  # no claim"))

    result = check(4, copy, "-k", "already_sent")

    assert result.returncode != 0
    assert "test_a_message_already_sent_is_not_sent_again" in result.stdout
    assert "waited for: the worker logged 'already sent" in result.stdout
    assert "but the worker finished every task it received without it" in result.stdout
