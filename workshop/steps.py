"""What the tools know about the step folders: where they are, what their Procfile starts, and the
environment that points a step at a Redis and an SMS gateway. Each fact is written here once."""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
# What a copy of a step leaves out: caches and what running it writes.
COPY_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.sqlite3", "celerybeat-schedule*")


def step_folder(n: int | str) -> Path:
    """The folder of step ``n`` (``step04_final`` for 4); a clear exit when there is no such step."""
    matches = sorted(ROOT.glob(f"step{int(n):02d}_*"))
    if not matches:
        raise SystemExit(f"There is no step {n}.")
    return matches[0]


def workspace_root() -> Path:
    """Where a student's copies of the steps go (make start-step): workspace/, or WORKSPACE."""
    return Path(os.environ.get("WORKSPACE") or ROOT / "workspace")


def workspace_copy(n: int | str) -> Path:
    """Where a student's copy of step ``n`` goes: workspace/step04 for 4."""
    return workspace_root() / f"step{int(n):02d}"


def procfile(folder: Path) -> dict[str, str]:
    """The step's Procfile: process name -> command, as honcho reads it."""
    lines = (folder / "Procfile").read_text().splitlines()
    return {
        name.strip(): command.strip()
        for name, _, command in (line.partition(":") for line in lines)
        if command
    }


def worker_options(folder: Path) -> list[str]:
    """The options of the Procfile's worker line after ``worker`` (``-Q sms,celery`` in step 4): the tests,
    the browser and the bench start their workers as the Procfile does."""
    words = shlex.split(procfile(folder)["worker"])
    return [word for word in words[words.index("worker") + 1 :] if not word.startswith("--loglevel")]


def step_environment(redis_url: str, gateway_url: str, broker_url: str | None = None) -> dict[str, str]:
    """The variables the steps read, pointing at this Redis (the cache in databases 0 and 1, results in
    14), this broker (database 15 of the same Redis unless given: a RabbitMQ's amqp:// URL, say) and
    this SMS gateway."""
    return {
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": broker_url or f"{redis_url}/15",
        "CELERY_RESULT_BACKEND": f"{redis_url}/14",
        "RONGLIAN_BASE_URL": gateway_url,
        "SMS_GATEWAY_INBOX_URL": f"{gateway_url}/_inbox",
    }


def current_code(redis_url: str, mobile: str) -> str | None:
    """The code a step keeps for ``mobile``: the key sms_<mobile> in database 1 (the cache alias sms_code)."""
    client = redis.Redis.from_url(f"{redis_url}/1", decode_responses=True)
    try:
        return client.get(f"sms_{mobile}")
    finally:
        client.close()
