"""The arithmetic of ``make bench``: percentiles, summaries over repeats, and the page's targets.

Nothing here starts a process or times anything, so ``tests/workshop/test_bench.py`` checks it fast.
"""

from __future__ import annotations

import math
import statistics

# The targets the benchmarks page sets (issue 15), as ratios: they hold on any 2-core machine or none.
TARGET_RATIO = 100.0  # step 1 ÷ step 4, p50, at TARGET_RATE with the 2 s gateway
TARGET_RATE = 20
TARGET_SPREAD = 1.2  # max ÷ min of a p50 across the rounds
TARGET_COST = 1.3  # step 4 ÷ step 3, CPU per request (gunicorn and the step's Redis)
TARGET_OF_CEILING = 0.8  # the best pool's SMS/s ÷ the gateway's own ceiling
TARGET_CONCURRENCY = 50


def percentile(values, q: float) -> float | None:
    """The q-th percentile (0-100), interpolating between closest ranks (numpy's default method)."""
    if not values:
        return None
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, not {q}")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def ratio(slow: float | None, fast: float | None) -> float | None:
    """``slow`` ÷ ``fast``; None when either figure is missing or zero."""
    if not slow or not fast:
        return None
    return slow / fast


def rate(count: int, elapsed_s: float) -> float | None:
    return count / elapsed_s if count and elapsed_s > 0 else None


def summarise(latencies_s, elapsed_s: float, errors: int = 0) -> dict:
    """Latencies (seconds) of the successful requests of one point, as milliseconds and a rate."""
    ms = [value * 1000 for value in latencies_s]
    return {
        "count": len(ms),
        "errors": errors,
        "p50_ms": percentile(ms, 50),
        "p95_ms": percentile(ms, 95),
        "p99_ms": percentile(ms, 99),
        "max_ms": max(ms) if ms else None,
        "per_s": len(ms) / elapsed_s if elapsed_s > 0 else None,
    }


def spread(values) -> float | None:
    """max ÷ min across repeats: 1.0 when every round agreed."""
    values = [v for v in values if v]
    return max(values) / min(values) if len(values) > 1 else None


def median(values) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def open_loop_summary(points: list[dict]) -> list[dict]:
    """One row per (rate, step): the median over rounds, and how far the rounds were apart."""
    rows = []
    for rate_, step in sorted({(p["rate"], p["step"]) for p in points}):
        mine = [p for p in points if (p["rate"], p["step"]) == (rate_, step)]
        p50s = [p["p50_ms"] for p in mine]
        rows.append({
            "rate": rate_, "step": step, "repeats": len(mine),
            "samples": min(p["count"] for p in mine), "errors": sum(p["errors"] for p in mine),
            "p50_ms": median(p50s), "p50_min_ms": min(filter(None, p50s), default=None),
            "p50_max_ms": max(filter(None, p50s), default=None), "p50_spread": spread(p50s),
            "p99_ms": median(p["p99_ms"] for p in mine), "p99_spread": spread(p["p99_ms"] for p in mine),
            "cpu_ms_per_request": median(p.get("cpu_ms_per_request") for p in mine),
        })  # fmt: skip
    return rows


def ratios(summary: list[dict]) -> list[dict]:
    """Per offered rate: step 1 ÷ step 4 (p50, p99), and step 4 ÷ step 3 (p50, CPU per request)."""
    at = {(r["rate"], r["step"]): r for r in summary}
    rows = []
    for rate_ in sorted({r["rate"] for r in summary}):
        one, three, four = (at.get((rate_, s), {}) for s in (1, 3, 4))
        rows.append({
            "rate": rate_,
            "step1_over_step4_p50": ratio(one.get("p50_ms"), four.get("p50_ms")),
            "step1_over_step4_p99": ratio(one.get("p99_ms"), four.get("p99_ms")),
            "step4_over_step3_p50": ratio(four.get("p50_ms"), three.get("p50_ms")),
            "step4_over_step3_cpu": ratio(four.get("cpu_ms_per_request"), three.get("cpu_ms_per_request")),
        })  # fmt: skip
    return rows


def capacity_ratio(capacity: list[dict]) -> float | None:
    """Requests a second at saturation, step 3 ÷ step 4: one figure, not one per offered rate."""
    per_s = {c["step"]: c["per_s"] for c in capacity}
    return ratio(per_s.get(3), per_s.get(4))


def check_targets(results: dict) -> list[dict]:
    """The page's targets against this run's figures: what was asked, what was measured, met or not."""
    targets = []

    def add(name, wanted, measured, met, unit):
        targets.append({"target": name, "wanted": wanted, "measured": measured, "unit": unit,
                        "met": bool(met) and measured is not None})  # fmt: skip

    endpoint = results.get("endpoint") or {}
    row = next((r for r in endpoint.get("ratios", []) if r["rate"] == TARGET_RATE), None)
    if row:
        value = row["step1_over_step4_p50"]
        add(f"step 1 ÷ step 4, p50, {TARGET_RATE} requests/s, gateway 2 s", f"≥ {TARGET_RATIO:g}×", value,
            value and value >= TARGET_RATIO, "×")  # fmt: skip
        value = row["step4_over_step3_cpu"]
        add(f"step 4 ÷ step 3, CPU per request (gunicorn + Redis), {TARGET_RATE} requests/s", f"≤ {TARGET_COST:g}×",
            value, value and value <= TARGET_COST, "×")  # fmt: skip
    spreads = [(r["p50_spread"], r) for r in endpoint.get("summary", []) if r["p50_spread"]]
    if spreads:
        worst, where = max(spreads, key=lambda s: s[0])
        add(f"max ÷ min of every endpoint p50 across rounds (worst: step {where['step']} at {where['rate']}/s)",
            f"≤ {TARGET_SPREAD:g}", worst, worst <= TARGET_SPREAD, "")  # fmt: skip
    pools = [r for r in (results.get("delivery") or {}).get("pools", [])
             if r["concurrency"] == TARGET_CONCURRENCY and not r.get("options")]  # fmt: skip
    fractions = [(r["of_ceiling"], r) for r in pools if r.get("of_ceiling")]
    if fractions:
        best, where = max(fractions, key=lambda f: f[0])
        add(f"best pool ÷ the gateway's ceiling, concurrency {TARGET_CONCURRENCY} (best: {where['pool']})",
            f"≥ {TARGET_OF_CEILING:g}", best, best >= TARGET_OF_CEILING, "")  # fmt: skip
    return targets
