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


def code_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced block, including those indented inside content tabs."""
    blocks, lines, i = [], text.splitlines(), 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        indent, fence = match["indent"], match["fence"]
        language = match["info"].strip().split(" ")[0].lstrip(".").lower()
        body, i = [], i + 1
        while i < len(lines) and lines[i].strip() != fence:
            body.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i].lstrip())
            i += 1
        blocks.append((language, "\n".join(body)))
        i += 1
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
