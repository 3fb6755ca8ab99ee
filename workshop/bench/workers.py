"""The worker options the benchmark starts step workers with: the Procfile's, so it measures what runs."""

from __future__ import annotations

from pathlib import Path

from workshop.steps import worker_options

POOL_FLAGS = ("-P", "--pool", "-c", "--concurrency")


def split_pool(folder: Path) -> tuple[list[str], list[str]]:
    """The Procfile's worker options in two: its pool and concurrency (``-P x`` or ``--pool=x``), and the rest."""
    pool, rest, taking = [], [], False
    for word in worker_options(folder):
        if taking or word in POOL_FLAGS or word.startswith(tuple(f"{flag}=" for flag in POOL_FLAGS)):
            pool.append(word)
            taking = word in POOL_FLAGS  # the value follows as the next word
        else:
            rest.append(word)
    return pool, rest


def without_pool(folder: Path) -> list[str]:
    """The Procfile's worker options without its pool and concurrency, for a row that sets its own."""
    return split_pool(folder)[1]


__all__ = ["split_pool", "worker_options", "without_pool"]
