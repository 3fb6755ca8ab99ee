"""The worker options the benchmark starts step workers with: the Procfile's, so it measures what runs."""

from __future__ import annotations

from pathlib import Path

from workshop.steps import worker_options

POOL_FLAGS = ("-P", "--pool", "-c", "--concurrency")


def without_pool(folder: Path) -> list[str]:
    """The Procfile's worker options without its pool and concurrency, for a row that sets its own."""
    options, skip = [], False
    for word in worker_options(folder):
        if skip:
            skip = False
        elif word in POOL_FLAGS:
            skip = True
        elif not word.startswith(tuple(f"{flag}=" for flag in POOL_FLAGS if flag.startswith("--"))):
            options.append(word)
    return options


__all__ = ["worker_options", "without_pool"]
