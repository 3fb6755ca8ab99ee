"""``make bench``: measure what Celery buys, and write the figures the benchmarks page includes.

    python -m workshop.bench            # the full run (under 15 minutes on 2 cores), into docs/benchmarks/
    python -m workshop.bench --quick    # a rough look (under 2 minutes), into bench-results/
    python -m workshop.bench --only delivery --out /tmp/bench    # part of it, elsewhere

It starts its own Redis servers, SMS gateway, gunicorn, workers (and a RabbitMQ node where the machine
has one) on 127.0.0.1, offers bounded load, stops everything it started, and writes ``results.md``,
``results.json`` and the plots. The scenarios are in ``endpoint.py``, ``delivery.py``, ``reliability.py``
and ``peers.py``; the load generator in ``load.py``; the tables in ``report.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import signal
import sys
import time
from importlib import metadata
from pathlib import Path

from workshop.steps import ROOT

from . import endpoint, findings, notes, peers, reliability, report, report_peers, stats
from .delivery import delivery
from .plan import PLANS
from .run import Run, commit, log

OUT = ROOT / "docs" / "benchmarks"
# A quick look goes here, never over the figures the page quotes (those come from a full run).
QUICK_OUT = ROOT / "bench-results"
SCENARIOS = {"endpoint": endpoint.endpoint, "delay": endpoint.delay, "delivery": delivery,
             "reliability": reliability.reliability, "peers": peers.peers}  # fmt: skip
PACKAGES = ("django", "djangorestframework", "celery", "kombu", "redis", "gunicorn", "gevent", "rq",
            "dramatiq", "huey", "pika")  # fmt: skip


def machine(run: Run) -> dict:
    def version(name: str) -> str:
        with contextlib.suppress(metadata.PackageNotFoundError):
            return metadata.version(name)
        return "not installed"

    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))  # fmt: skip
    memory = "–"
    with contextlib.suppress(OSError, StopIteration):
        kb = next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))  # fmt: skip
        memory = f"{int(kb) / 1024 / 1024:.1f} GiB"
    versions = {name: version(name) for name in PACKAGES}
    versions["Redis server"] = run.redis().info("server").get("redis_version", "–")
    return {"cpu": cpu, "cores": os.cpu_count(), "memory": memory, "os": platform.platform(),
            "python": platform.python_version(), "versions": versions, "load_before": load_average()}  # fmt: skip


def load_average() -> str:
    with contextlib.suppress(OSError, AttributeError):
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    return "–"


def measure(run: Run, scenarios: tuple[str, ...], out: Path) -> dict:
    started = time.monotonic()
    meta = {"mode": run.plan.mode, "commit": commit(out), "scenarios": list(scenarios),
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "command": "python -m workshop.bench" + ("" if run.plan.mode == "full" else f" --{run.plan.mode}"),
            "machine": machine(run), "plan": vars(run.plan)}  # fmt: skip
    results: dict = {"meta": meta}
    busy = None
    with contextlib.suppress(OSError, AttributeError):
        cores, load = os.cpu_count() or 1, os.getloadavg()[0]
        if load > cores:
            busy = f"The machine was busy when the run began: load average {load:.2f} on {cores} cores."
            log(f"warning: {busy} The figures will be lower than on a quiet machine.")
    seconds = {}
    for name in scenarios:
        log(f"scenario {name}")
        began = time.monotonic()
        results[name] = SCENARIOS[name](run)
        seconds[name] = round(time.monotonic() - began, 1)
    meta["machine"]["load_after"] = load_average()
    if busy:
        run.note(busy)
    meta.update(scenario_seconds=seconds, duration_s=round(time.monotonic() - started, 1))
    meta["notes"] = notes.method(run, results) + run.notes
    results["targets"] = stats.check_targets(results)
    return results


def sections(results: dict) -> dict[str, tuple[str, str]]:
    """The sections rendered outside report.py: the findings in both languages, and the peers."""
    said = {"findings": ("What this run found", findings.EN), "findings_zh": ("这次运行的发现", findings.ZH)}
    extra = {name: (title, "\n".join(f"- {s}" for s in findings.sentences(results, language)))
             for name, (title, language) in said.items()}  # fmt: skip
    return {**extra, **report_peers.sections(results.get("peers"))}


def out_folder(mode: str, given: Path | None, partial: bool) -> Path:
    """docs/benchmarks/ only from a whole full run; a quick run into bench-results/ unless told; a smoke
    or partial run only where told."""
    if given is not None and given.resolve() == OUT.resolve() and (mode != "full" or partial):
        raise SystemExit(
            f"bench: only a whole full run writes {OUT.relative_to(ROOT)}/, the figures the page quotes"
        )
    if given is not None:
        return given
    if mode == "smoke" or partial:
        raise SystemExit("bench: a smoke run or part of a run must be written elsewhere: give --out")
    return OUT if mode == "full" else QUICK_OUT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a rough look (under 2 minutes on 2 cores)")
    parser.add_argument("--smoke", action="store_true", help="a tiny run that only proves the harness works")
    parser.add_argument("--only", default=",".join(SCENARIOS), help=f"among {','.join(SCENARIOS)}")
    parser.add_argument("--out", type=Path, default=None, help="where to write")
    parser.add_argument("--render", type=Path, metavar="RESULTS_JSON",
                        help="measure nothing: write the tables, sentences and plots again from a run's figures")  # fmt: skip
    args = parser.parse_args(argv)
    if args.render:
        results = json.loads(args.render.read_text(encoding="utf-8"))
        results["targets"] = stats.check_targets(results)
        results["meta"]["rendered"] = commit(args.render.parent)  # the tables' code, if not the measured one
        for path in report.write_outputs(results, args.render.parent, sections(results)):
            print(f"wrote {path}")
        return 0
    scenarios = tuple(s.strip() for s in args.only.split(",") if s.strip())
    if unknown := set(scenarios) - set(SCENARIOS):
        parser.error(f"unknown scenario(s) {', '.join(sorted(unknown))}; choose among {', '.join(SCENARIOS)}")
    mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    out = out_folder(mode, args.out, partial=set(scenarios) != set(SCENARIOS))
    # SIGTERM (a stopped CI job, a `kill`) unwinds like Ctrl-C, so the finally below stops the children.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    run, ok = Run(PLANS[mode]), False
    try:
        results = measure(run, scenarios, out)
        written = report.write_outputs(results, out, sections(results))
        ok = True
    finally:
        run.close(keep_logs=not ok)
        if not ok:
            print(f"bench: the processes' logs are kept in {run.logdir}", file=sys.stderr)
    for path in written:
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    print(report.targets_table(results["targets"]))
    print(f"bench: {mode} run took {results['meta']['duration_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
