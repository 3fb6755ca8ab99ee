"""Reading the docs pages: code blocks, snippet includes, heading ids, shell commands."""

from __future__ import annotations

import re
from pathlib import Path

from workshop.steps import ROOT

DOCS = ROOT / "docs"

FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>```+|~~~+)(?P<info>[^\n`]*)$")
SNIPPET = re.compile(r'^[ \t]*--8<--[ \t]+"(?P<target>[^"]+)"[ \t]*$', re.MULTILINE)
HEADING_ID = re.compile(r"^#{1,6} .*\{#(?P<id>[\w-]+)\}[ \t]*$", re.MULTILINE)
SHELLS = {"bash", "sh", "shell", "console", "powershell", "ps1", "pwsh"}


def chinese_pages() -> list[Path]:
    return sorted(p for p in DOCS.glob("*.md") if not p.name.endswith(".en.md"))


def english_pages() -> list[Path]:
    return sorted(DOCS.glob("*.en.md"))


def english_of(page: Path) -> Path:
    return page.with_name(page.name[: -len(".md")] + ".en.md")


def fences(text: str) -> list[tuple[int, int, str]]:
    """(opening line, closing line, language) of every fenced block, including those indented inside
    content tabs: indexes into ``text.splitlines()`` (an unclosed block ends after the last line)."""
    found, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        start, fence = i, match["fence"]
        language = match["info"].strip().split(" ")[0].lstrip(".").lower()
        i += 1
        while i < len(lines) and lines[i].strip() != fence:
            i += 1
        found.append((start, i, language))
        i += 1
    return found


def code_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced block, including those indented inside content tabs."""
    lines, blocks = text.splitlines(), []
    for start, end, language in fences(text):
        indent = FENCE.match(lines[start])["indent"]
        body = [
            line[len(indent) :] if line.startswith(indent) else line.lstrip()
            for line in lines[start + 1 : end]
        ]
        blocks.append((language, "\n".join(body)))
    return blocks


def snippets(text: str) -> list[str]:
    return [m["target"] for m in SNIPPET.finditer(text)]


def heading_ids(text: str) -> list[str]:
    return [m["id"] for m in HEADING_ID.finditer(text)]


def shell_commands(text: str) -> list[str]:
    """Every command a page asks a student to type: the lines of its shell code blocks."""
    commands = []
    for language, body in code_blocks(text):
        if language not in SHELLS:
            continue
        pending = ""
        for line in body.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            line = re.sub(r"^(\$|PS>|>)\s+", "", line)
            if line.endswith("\\"):
                pending += line[:-1].strip() + " "
                continue
            commands.append(pending + line)
            pending = ""
    return commands


def make_targets_mentioned(text: str) -> set[str]:
    """`make x` in inline code or a code block (prose may say "make it")."""
    pieces = re.findall(r"`([^`\n]+)`", text) + [
        line for _, body in code_blocks(text) for line in body.splitlines()
    ]
    return {target for piece in pieces for target in re.findall(r"\bmake[ \t]+([a-z][a-z-]*)\b", piece)}
