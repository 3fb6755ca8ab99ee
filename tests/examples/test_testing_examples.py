"""docs/examples/testing: the tests docs/testing.md gives a student, run as the page says. The files go into
a copy of step 4 (pytest.ini next to manage.py, the rest in tests/), `pytest -v` is typed there, with a Redis
on REDIS_URL. Each example must pass by name: one renamed, skipped or gone fails here."""

from __future__ import annotations

import shutil
import sys
import uuid
import xml.etree.ElementTree as ET
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from kombu.utils import json

from tests.harness import run
from workshop.redis_server import RedisServer
from workshop.steps import COPY_IGNORE, ROOT, step_folder

EXAMPLES = ROOT / "docs" / "examples" / "testing"
# Every example test, by file: exactly these must run, and pass.
EXPECTED = {
    "test_call_directly": [
        "test_send_sms_sends_the_stored_code_to_the_stored_number",
        "test_the_same_message_twice_sends_one_sms",
        "test_called_directly_a_transient_error_is_raised_not_retried",
    ],
    "test_apply": [
        "test_apply_retries_a_busy_provider_at_once",
        "test_apply_hands_back_the_failure_without_raising_it",
    ],
    "test_worker": ["test_a_worker_sends_what_delay_queued"],
    "test_eager_mode": [
        "test_in_eager_mode_it_passes",
        "test_on_a_real_worker_it_fails",
        "test_eager_delay_does_encode_the_arguments",
    ],
}


def outcomes(junit: Path) -> dict[tuple[str, str], str]:
    """(module, test) -> passed, failed, error or skipped, from pytest's JUnit XML."""
    found = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        result = next((child.tag for child in case if child.tag in ("failure", "error", "skipped")), "passed")
        found[(case.get("classname").rsplit(".", 1)[-1], case.get("name"))] = result
    return found


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A student's project: a copy of step 4 with the example files where the page puts them."""
    project = tmp_path_factory.mktemp("student") / "step04_final"
    shutil.copytree(step_folder(4), project, ignore=COPY_IGNORE)
    shutil.copy(EXAMPLES / "pytest.ini", project)
    (project / "tests").mkdir()
    for example in EXAMPLES.glob("*.py"):
        shutil.copy(example, project / "tests")
    return project


@pytest.fixture(scope="module")
def session(project, tmp_path_factory):
    """`pytest -v` in the project, with REDIS_URL naming a Redis of this module's own (the JUnit XML is only
    for reading the outcomes)."""
    junit = tmp_path_factory.mktemp("junit") / "examples.xml"
    with RedisServer() as server:
        result = run(
            [Path(sys.executable).with_name("pytest"), "-v", f"--junitxml={junit}"],
            cwd=project,
            env={"REDIS_URL": server.url},
            # A student's shell has none of these; the ones a test run exports would point elsewhere.
            without=("CELERY_", "DJANGO_", "REDIS_URL", "PYTEST_ADDOPTS"),
            timeout=120,
        )
    output = result.stdout + result.stderr
    assert junit.exists(), output
    return result.returncode, outcomes(junit), output


def check(session, module):
    _, found, output = session
    assert {test: found.get((module, test)) for test in EXPECTED[module]} == dict.fromkeys(
        EXPECTED[module], "passed"
    ), output


def test_pytest_v_in_the_project_runs_exactly_the_examples_and_passes(session):
    code, found, output = session
    assert code == 0, output
    assert set(found) == {(module, test) for module, tests in EXPECTED.items() for test in tests}, output
    assert "configfile: pytest.ini" in output and "settings: renranapi.settings (from ini)" in output


def test_calling_send_sms_directly_with_the_client_replaced(session):
    check(session, "test_call_directly")


def test_apply_retries_at_once_and_hands_back_the_failure(session):
    check(session, "test_apply")


def test_celerys_fixtures_run_a_real_worker_that_sends_what_delay_queued(session):
    check(session, "test_worker")


def test_the_eager_trap_passes_in_eager_mode_and_fails_on_a_worker(session):
    """Both sides: the same task's .delay().get() returns its set in eager mode (one test), and raises
    EncodeError from a real worker (the other; it fails if eager mode leaked into it)."""
    check(session, "test_eager_mode")


def test_kombu_brings_datetime_decimal_and_uuid_back_as_the_page_says():
    """testing.md#eager-mode: the arguments tutorials warn about come back from JSON as the same types."""
    sent = [datetime(2024, 1, 2, 3, 4, 5), Decimal("1.50"), uuid.uuid4()]
    assert json.loads(json.dumps(sent)) == sent
