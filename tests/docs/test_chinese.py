"""The Chinese pages read as written in Chinese (issue 17): one quote style, no 回答 for what a server or a
function returns, none of the calques a reader found. Only prose is read: fenced code, inline code and
snippet includes are the program's own words (a mermaid diagram's labels are prose; so is a NAME_zh
section a page includes, such as the bench's findings)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from tests.docs.pages import DOCS, ROOT, SNIPPET, chinese_pages, english_pages, fences, snippets


@dataclass(frozen=True)
class Banned:
    pattern: re.Pattern[str]
    instead: str  # what to write instead, shown in the failure
    example: str  # a line the check must flag: test_the_check_flags_each_banned_entry feeds it


def phrase(text: str, instead: str) -> Banned:
    return Banned(re.compile(re.escape(text)), instead, f"这里有{text}这几个字")


def regex(pattern: str, instead: str, example: str) -> Banned:
    return Banned(re.compile(pattern), instead, example)


# One line per entry: the phrase (or a regex, with a line it must catch) and what to write instead.
BANNED = [
    phrase("「", "“ ”：中文正文只用弯引号"),
    phrase("」", "“ ”：中文正文只用弯引号"),
    phrase("回答", "服务器、函数、网关：返回 / 响应 / 回复；表头写“响应”；回答问题：解答"),
    regex(r"说(?!明)[^，。；：、\s]{0,6}协议", "实现 / 遵循……协议", "本地网关说容联云的协议"),
    phrase("不必再争论", "直接写它定下了什么，如“……就有了定论”"),
    phrase("课文", "这一步的全部改动 / 这一步要讲的内容"),
    regex(r"施加.{0,8}负载", "压测 / 加压 / 让……承受……请求", "施加有上限的负载"),
    # step4.md's list (issue 17) goes below, one phrase(...) or regex(...) each.
    phrase("说规则不说状态", "讲规则，不讲状态"),
    phrase("只会说“不”", "只会拒绝"),
    phrase("这一圈", "整个流程"),
    phrase("服务商说了“好”", "服务商已经表示接受"),
    phrase("这次没接", "这次没有受理"),
    phrase("不回话", "不响应"),
    phrase("对坏日子", "对服务商出故障的时候"),
    phrase("线程等起来", "用线程等和用进程等效果一样"),
    phrase("对着真实的网关", "连接真实的网关 / 用真实的网关"),
    phrase("出门前", "返回给客户端之前"),
    phrase("乘以五十", "五十个请求同时到达"),
    phrase("发了疯的", "失控的 / 异常的"),
    phrase("发满短信", "用完当天的短信条数"),
    phrase("“老”过", "比……更早过期"),
    phrase("都是你付钱", "每条短信都要付费"),
]


def prose(text: str, first: int = 1) -> list[tuple[int, str]]:
    """The prose, as (line number, line) with inline code blanked. Fenced blocks (found by fences(), as
    code_blocks() finds them) and snippet includes are left out; a mermaid block's lines stay in, its
    labels being read."""
    code, diagram = set(), set()
    for start, end, language in fences(text):
        (diagram if language == "mermaid" else code).update(range(start + 1, end))
        code |= {start, end}
    return [
        (first + i, line if i in diagram else re.sub(r"(`+).+?\1", " ", line))
        for i, line in enumerate(text.splitlines())
        if i not in code and (i in diagram or not SNIPPET.match(line))
    ]


def included_chinese(text: str) -> list[tuple[str, int, str]]:
    """(file, line number, line) of the NAME_zh sections a page includes: Chinese written by code."""
    found = []
    for target in snippets(text):
        path, _, section = target.partition(":")
        if not section.endswith("_zh"):
            continue
        lines = (ROOT / path).read_text(encoding="utf-8").splitlines()
        start = next(n for n, line in enumerate(lines) if f"[start:{section}]" in line) + 1
        end = next(n for n, line in enumerate(lines) if f"[end:{section}]" in line)
        found += [(path, n, line) for n, line in prose("\n".join(lines[start:end]), first=start + 1)]
    return found


def flagged(lines: list[tuple[int, str]]) -> list[tuple[int, str, Banned]]:
    return [(n, m[0], b) for n, line in lines for b in BANNED for m in b.pattern.finditer(line)]


def report(where: str, hits: list[tuple[int, str, Banned]]) -> list[str]:
    return [f"{where}:{n}: “{found}” → {banned.instead}" for n, found, banned in hits]


@pytest.mark.parametrize("page", chinese_pages(), ids=lambda p: p.name)
def test_the_chinese_prose_has_no_calque_the_issue_found(page):
    text = page.read_text(encoding="utf-8")
    problems = report(f"docs/{page.name}", flagged(prose(text)))
    for path, n, line in included_chinese(text):
        problems += report(f"{path} (included by {page.name})", flagged([(n, line)]))
    assert not problems, "write these as a Chinese writer would:\n" + "\n".join(problems)


def test_no_page_quotes_with_corner_brackets():
    """One quote style: “ ” around Chinese, on the English pages and in the README too."""
    pages = [*english_pages(), ROOT / "README.md"]
    corners = [
        f"{page.relative_to(ROOT)}:{n}"
        for page in pages
        for n, line in prose(page.read_text(encoding="utf-8"))
        if "「" in line or "」" in line
    ]
    assert not corners, f"quote with “ ”, not 「」: {corners}"


# --- the check itself: it must catch each entry, and only in prose ----------------------------------


@pytest.mark.parametrize("banned", BANNED, ids=lambda b: b.pattern.pattern)
def test_the_check_flags_each_banned_entry(banned):
    hits = flagged(prose(f"# 标题\n\n{banned.example}\n"))
    assert (3, banned) in [(n, b) for n, _, b in hits], f"{banned.example!r} is not caught"


def test_code_inline_code_and_includes_are_not_prose_but_diagram_labels_are():
    text = "\n".join(
        [
            "```text",
            "网关回答了",
            "```",
            '=== "Windows"',
            "",
            "    ```powershell",
            "    Write-Output '回答'",
            "    ```",
            "见 `回答` 和 ``「x」``。",
            '--8<-- "docs/回答.md:x"',
            "这一节说明协议的细节。",
            "```mermaid",
            "A -->|网关回答| B",
            "```",
        ]
    )
    assert [(n, found) for n, found, _ in flagged(prose(text))] == [(13, "回答")]


def test_prose_leaves_out_every_code_block_on_every_page():
    """No line of a fenced block but a diagram's is read as prose: prose() skips the fences code_blocks(),
    and so the parity test, sees."""
    for page in [*chinese_pages(), *english_pages()]:
        text = page.read_text(encoding="utf-8")
        read = {n - 1 for n, _ in prose(text)}
        for start, end, language in fences(text):
            if language != "mermaid":
                assert not read & set(range(start, end + 1)), (
                    f"{page.name}: code at line {start + 1} read as prose"
                )


def test_a_zh_section_a_page_includes_is_read_too():
    """benchmarks.md includes the bench's findings_zh: those sentences are checked with the page."""
    text = (DOCS / "benchmarks.md").read_text(encoding="utf-8")
    included = included_chinese(text)
    assert included and all(path == "docs/benchmarks/results.md" for path, _, _ in included)
    assert any("步骤 4" in line for _, _, line in included)
