"""`make diff-step N`: what step N changes from step N-1, renames detected, caches left out."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from workshop.steps import COPY_IGNORE, step_folder


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].isdigit() or int(argv[0]) < 2:
        sys.exit("usage: python -m workshop.stepdiff N   (N >= 2: the diff from step N-1 to step N)")
    n = int(argv[0])
    before, after = step_folder(n - 1), step_folder(n)
    with tempfile.TemporaryDirectory() as tmp:
        for folder in (before, after):
            shutil.copytree(folder, Path(tmp) / folder.name, ignore=COPY_IGNORE)
        args = ["git", "diff", "--no-index", "--find-renames", "--color=auto"]
        subprocess.call([*args, "--stat", before.name, after.name], cwd=tmp)
        subprocess.call([*args, before.name, after.name], cwd=tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
