"""The pure half of ``make bench``: statistics, targets, the Markdown tables, the JSON and the plots.

Nothing here starts a process or times anything, so ``tests/workshop/test_bench.py`` can check it fast.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

# Celery's own introduction (README, "Fast"), quoted beside our figure.
CELERY_CLAIM = (
    "A single Celery process can process millions of tasks a minute, with sub-millisecond "
    "round-trip latency (using RabbitMQ, py-librabbitmq, and optimized settings)."
)
CLAIM_PER_MINUTE = 1_000_000

# The targets the benchmarks page sets, checked against the figures of every run.
TARGET_STEP4_P50_MS = 20.0
TARGET_STEP4_P99_MS = 50.0
TARGET_RATIO = 100.0
TARGET_SMS_PER_S = 100.0
TARGET_DELAY_P50_MS = 2.0
TARGET_POINT = {"gateway_latency_s": 2.0, "concurrency": 10}

SECTIONS = ("machine", "endpoint", "ratios", "delivery", "claim", "delay", "targets", "notes")


# --- statistics -------------------------------------------------------------------------------------


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
    """How many times ``fast`` beats ``slow``; None when either figure is missing or zero."""
    if not slow or not fast:
        return None
    return slow / fast


def summarise(latencies_s, elapsed_s: float, errors: int = 0) -> dict:
    """Latencies (seconds) of the successful requests of one point, as milliseconds and a rate."""
    ms = [value * 1000 for value in latencies_s]
    return {
        "count": len(ms),
        "errors": errors,
        "p50_ms": percentile(ms, 50),
        "p95_ms": percentile(ms, 95),
        "p99_ms": percentile(ms, 99),
        "mean_ms": sum(ms) / len(ms) if ms else None,
        "max_ms": max(ms) if ms else None,
        "per_s": len(ms) / elapsed_s if elapsed_s > 0 else None,
    }


def rate(count: int, elapsed_s: float) -> float | None:
    return count / elapsed_s if count and elapsed_s > 0 else None


def spread_rate(timestamps) -> float | None:
    """Events per second between the first and the last timestamp (n events make n-1 gaps)."""
    stamps = sorted(timestamps)
    if len(stamps) < 2 or stamps[-1] <= stamps[0]:
        return None
    return (len(stamps) - 1) / (stamps[-1] - stamps[0])


def endpoint_ratios(points: list[dict]) -> list[dict]:
    """Step 1 against step 4 (and step 3) at every (gateway latency, concurrency) measured for both."""
    by_key = {(p["step"], p["gateway_latency_s"], p["concurrency"]): p for p in points}
    rows = []
    for latency, concurrency in sorted({(p["gateway_latency_s"], p["concurrency"]) for p in points}):
        step1, step3, step4 = (by_key.get((s, latency, concurrency)) for s in (1, 3, 4))
        if not step1 or not step4:
            continue
        rows.append(
            {
                "gateway_latency_s": latency,
                "concurrency": concurrency,
                "step1_p50_ms": step1["p50_ms"],
                "step4_p50_ms": step4["p50_ms"],
                "ratio_p50": ratio(step1["p50_ms"], step4["p50_ms"]),
                "ratio_p99": ratio(step1["p99_ms"], step4["p99_ms"]),
                "ratio_per_s": ratio(step4["per_s"], step1["per_s"]),
                "ratio_p50_step3": ratio(step1["p50_ms"], step3["p50_ms"]) if step3 else None,
            }
        )
    return rows


def check_targets(results: dict) -> list[dict]:
    """The page's targets against this run's figures: what was asked, what was measured, met or not."""
    targets = []

    def add(name, wanted, measured, met, unit=""):
        targets.append({"target": name, "wanted": wanted, "measured": measured, "unit": unit, "met": met})

    point = next(
        (
            p
            for p in results.get("endpoint", [])
            if p["step"] == 4 and all(p[k] == v for k, v in TARGET_POINT.items())
        ),
        None,
    )
    if point:
        p50, p99 = point["p50_ms"], point["p99_ms"]
        add("step 4 endpoint p50, concurrency 10, gateway 2 s", f"< {TARGET_STEP4_P50_MS:g} ms", p50,
            p50 is not None and p50 < TARGET_STEP4_P50_MS, "ms")  # fmt: skip
        add("step 4 endpoint p99, concurrency 10, gateway 2 s", f"< {TARGET_STEP4_P99_MS:g} ms", p99,
            p99 is not None and p99 < TARGET_STEP4_P99_MS, "ms")  # fmt: skip
    row = next(
        (r for r in results.get("ratios", []) if all(r[k] == v for k, v in TARGET_POINT.items())),
        None,
    )
    if row:
        value = row["ratio_p50"]
        add("step 1 ÷ step 4 (p50), concurrency 10, gateway 2 s", f"≥ {TARGET_RATIO:g}×", value,
            value is not None and value >= TARGET_RATIO, "×")  # fmt: skip
    delivered = [d["sms_per_s"] for d in results.get("delivery", []) if d.get("sms_per_s")]
    if delivered:
        best = max(delivered)
        add("SMS/s from one worker, best pool, gateway 0.2 s", f"≥ {TARGET_SMS_PER_S:g}/s", best,
            best >= TARGET_SMS_PER_S, "/s")  # fmt: skip
    # The call the view really makes, when measured; else the plain .delay().
    step4 = sorted(
        (d for d in results.get("delay", []) if d["step"] == 4), key=lambda d: d.get("form") != "view"
    )
    if step4:
        p50 = step4[0]["p50_ms"]
        add("step 4 enqueue in the view (`.delay()` / `apply_async`) p50", f"< {TARGET_DELAY_P50_MS:g} ms", p50,
            p50 is not None and p50 < TARGET_DELAY_P50_MS, "ms")  # fmt: skip
    return targets


# --- formatting -------------------------------------------------------------------------------------


def fmt_ms(value: float | None) -> str:
    if value is None:
        return "–"
    if value >= 1000:
        return f"{value / 1000:.2f} s"
    if value >= 100:
        return f"{value:.0f} ms"
    if value >= 10:
        return f"{value:.1f} ms"
    return f"{value:.2f} ms"


def fmt_num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "–"
    if digits == 0 and abs(value) >= 10:
        return f"{value:,.0f}"
    return f"{value:,.{max(digits, 1)}f}"


def fmt_share(value: float | None) -> str:
    """A fraction of the claim: 8.2× above it, 13 % below it."""
    if value is None:
        return "–"
    return (
        f"{value:.1f}×" if value >= 1 else f"{value * 100:.0f} %" if value >= 0.01 else f"{value * 100:.1f} %"
    )


def fmt_ratio(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f}×" if value >= 10 else f"{value:.1f}×"


def fmt_seconds(value: float) -> str:
    return f"{value:g} s"


def table(header: list[str], rows: list[list[str]], align: str | None = None) -> str:
    """A Markdown table; ``align`` is one letter a column, l or r (numbers read best on the right)."""
    align = align or "l" + "r" * (len(header) - 1)
    if len(align) != len(header) or any(len(row) != len(header) for row in rows):
        raise ValueError("every row needs one cell a column")
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = [header, rule, *rows]
    return "\n".join(
        "| " + " | ".join(str(cell).replace("|", "\\|") for cell in line) + " |" for line in lines
    )


def section(name: str, body: str) -> str:
    # Snippet markers, so docs/benchmarks.md can include one table at a time.
    return f"<!-- --8<-- [start:{name}] -->\n{body}\n<!-- --8<-- [end:{name}] -->"


def machine_table(meta: dict) -> str:
    m = meta.get("machine", {})
    rows = [
        ["date", meta.get("date", "–")],
        [
            "run",
            f"{meta.get('mode', '–')} (`python -m workshop.bench{' --quick' if meta.get('mode') == 'quick' else ''}`), "
            f"{meta.get('duration_s', 0):.0f} s",
        ],  # fmt: skip
        ["commit", f"`{meta.get('commit', '–')}`"],
        ["CPU", f"{m.get('cpu', '–')}, {m.get('cores', '–')} cores"],
        ["memory", m.get("memory", "–")],
        ["OS", m.get("os", "–")],
        ["load average before / after", f"{m.get('load_before', '–')} / {m.get('load_after', '–')}"],
        ["Python", m.get("python", "–")],
        ["Django / DRF", f"{m.get('django', '–')} / {m.get('djangorestframework', '–')}"],
        ["Celery / kombu", f"{m.get('celery', '–')} / {m.get('kombu', '–')}"],
        ["redis-py / Redis server", f"{m.get('redis', '–')} / {m.get('redis_server', '–')}"],
        ["gunicorn / gevent", f"{m.get('gunicorn', '–')} / {m.get('gevent', '–')}"],
    ]
    return table(["machine", ""], rows, "ll")


def endpoint_table(points: list[dict]) -> str:
    rows = [
        [
            f"step {p['step']}",
            fmt_seconds(p["gateway_latency_s"]),
            str(p["concurrency"]),
            str(p["count"]),
            fmt_ms(p["p50_ms"]),
            fmt_ms(p["p95_ms"]),
            fmt_ms(p["p99_ms"]),
            fmt_num(p["per_s"], 1),
            str(p["errors"]),
            f"`{p['gunicorn']}`" if p.get("gunicorn") else "–",
        ]  # fmt: skip
        for p in sorted(points, key=lambda p: (p["gateway_latency_s"], p["concurrency"], p["step"]))
    ]
    header = ["step", "gateway latency", "concurrency", "requests", "p50", "p95", "p99", "requests/s", "errors",
              "gunicorn"]  # fmt: skip
    return table(header, rows, "lrrrrrrrrl")


def ratios_table(rows: list[dict]) -> str:
    body = [
        [
            fmt_seconds(r["gateway_latency_s"]),
            str(r["concurrency"]),
            fmt_ms(r["step1_p50_ms"]),
            fmt_ms(r["step4_p50_ms"]),
            fmt_ratio(r["ratio_p50"]),
            fmt_ratio(r["ratio_p99"]),
            fmt_ratio(r["ratio_per_s"]),
        ]  # fmt: skip
        for r in rows
    ]
    header = ["gateway latency", "concurrency", "step 1 p50", "step 4 p50", "step 1 ÷ step 4 (p50)",
              "(p99)", "requests/s, step 4 ÷ step 1"]  # fmt: skip
    return table(header, body)


def worker_said(row: dict) -> str:
    said = []
    if row.get("failed_acks"):
        said.append(f"{row['failed_acks']} failed acks")
    if row.get("http_pool_full"):
        said.append(f"{row['http_pool_full']}× HTTP pool full")
    return ", ".join(said) or "–"


def delivery_table(rows: list[dict]) -> str:
    body = [
        [
            r["pool"],
            str(r["concurrency"]),
            fmt_num(r["sms_per_s"], 1),
            fmt_num(r["ideal_per_s"]),
            f"{r['delivered']}/{r['sent']}",
            fmt_ms(r["latency_p50_ms"]),
            fmt_ms(r["latency_p99_ms"]),
            f"{r['paced_delivered']}/{r['paced_sent']}",
            worker_said(r),
        ]  # fmt: skip
        for r in rows
    ]
    header = ["pool", "concurrency", "SMS/s", "ceiling (concurrency ÷ 0.2 s)", "burst delivered",
              "request → phone p50", "p99", "paced delivered", "worker log"]  # fmt: skip
    return table(header, body, "lrrrrrrrl")


def claim_table(claim: dict) -> str:
    rows = []
    producer = claim.get("producer")
    if producer:
        rows.append(["Celery: `noop.delay()` from one producer process", fmt_num(producer["per_s"]),
                     fmt_num(producer["per_min"]), fmt_share(ratio(producer["per_min"], CLAIM_PER_MINUTE))])  # fmt: skip
    for worker in claim.get("workers", []):
        label = f"Celery: one worker drains, `-P {worker['pool']} -c {worker['concurrency']}`"
        rows.append([label, fmt_num(worker["per_s"]), fmt_num(worker["per_min"]),
                     fmt_share(ratio(worker["per_min"], CLAIM_PER_MINUTE))])  # fmt: skip
    for row in claim.get("redis", []):
        rows.append([f"Redis ceiling: {row['what']}", fmt_num(row["per_s"]), fmt_num(row["per_min"]),
                     fmt_share(ratio(row["per_min"], CLAIM_PER_MINUTE))])  # fmt: skip
    rows.append(["Celery's claim (RabbitMQ, librabbitmq, optimized settings)", "–", "millions", "–"])
    return table(["no-op tasks", "per second", "per minute", "of 1,000,000/min"], rows)


def delay_table(rows: list[dict]) -> str:
    body = [
        [
            f"step {r['step']}",
            r["call"],
            str(r["count"]),
            fmt_ms(r["p50_ms"]),
            fmt_ms(r["p95_ms"]),
            fmt_ms(r["p99_ms"]),
        ]  # fmt: skip
        for r in rows
    ]
    return table(["step", "call", "calls", "p50", "p95", "p99"], body, "llrrrr")


def fmt_measured(target: dict) -> str:
    value, unit = target["measured"], target["unit"]
    if value is None:
        return "–"
    if unit == "ms":
        return fmt_ms(value)
    if unit == "×":
        return fmt_ratio(value)
    return f"{fmt_num(value, 1)}{unit}"


def targets_table(targets: list[dict]) -> str:
    rows = [
        [t["target"], t["wanted"], fmt_measured(t), "met" if t["met"] else "**not met**"] for t in targets
    ]
    return table(["target", "wanted", "measured", ""], rows, "lrrl")


def render_markdown(results: dict) -> str:
    """results.md: one table a section, each between snippet markers named as in ``SECTIONS``."""
    meta = results.get("meta", {})
    parts = [
        "# Benchmark results",
        "",
        f"Written by `python -m workshop.bench` (`make bench`) on {meta.get('date', '–')}. "
        "Do not edit: rerun the benchmark.",
        "",
        section("machine", machine_table(meta)),
    ]
    if results.get("endpoint"):
        parts += ["", "## Endpoint latency", "", section("endpoint", endpoint_table(results["endpoint"]))]
    if results.get("ratios"):
        parts += ["", "## Step 1 ÷ step 4", "", section("ratios", ratios_table(results["ratios"]))]
    if results.get("delivery"):
        parts += ["", "## Delivery throughput", "", section("delivery", delivery_table(results["delivery"]))]
    if results.get("claim"):
        parts += ["", "## Millions of tasks a minute?", "", f"> {CELERY_CLAIM}", "",
                  section("claim", claim_table(results["claim"]))]  # fmt: skip
    if results.get("delay"):
        parts += ["", "## Enqueue cost", "", section("delay", delay_table(results["delay"]))]
    if results.get("targets"):
        parts += ["", "## Targets", "", section("targets", targets_table(results["targets"]))]
    notes = meta.get("notes")
    if notes:
        parts += ["", "## How it was measured", "", section("notes", "\n".join(f"- {n}" for n in notes))]
    return "\n".join(parts) + "\n"


def to_json(results: dict) -> str:
    return json.dumps(results, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


# --- plots ------------------------------------------------------------------------------------------


def plot_latency(points: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    latencies = sorted({p["gateway_latency_s"] for p in points})
    steps = sorted({p["step"] for p in points})
    concurrencies = sorted({p["concurrency"] for p in points})
    fig, axes = plt.subplots(1, len(latencies), figsize=(5 * len(latencies), 4.2), sharey=True, squeeze=False)
    colours = {1: "#d62728", 3: "#1f77b4", 4: "#2ca02c"}
    width = 0.8 / max(len(steps), 1)
    for ax, latency in zip(axes[0], latencies, strict=True):
        for i, step in enumerate(steps):
            xs, p50s, p99s = [], [], []
            for j, concurrency in enumerate(concurrencies):
                p = next(
                    (q for q in points if (q["step"], q["gateway_latency_s"], q["concurrency"]) == (step, latency, concurrency)),
                    None,
                )  # fmt: skip
                if p and p["p50_ms"]:
                    xs.append(j + (i - (len(steps) - 1) / 2) * width)
                    p50s.append(p["p50_ms"])
                    p99s.append(p["p99_ms"])
            ax.bar(xs, p50s, width, color=colours.get(step, "grey"), label=f"step {step} p50")
            ax.scatter(xs, p99s, marker="_", s=300, color="black", zorder=3, label="p99" if i == 0 else None)
        ax.set_yscale("log")
        ax.set_xticks(range(len(concurrencies)), [f"concurrency {c}" for c in concurrencies])
        ax.set_title(f"gateway latency {latency:g} s")
        ax.axhline(latency * 1000, color="grey", linestyle=":", linewidth=1)
        ax.grid(axis="y", which="both", alpha=0.3)
    axes[0][0].set_ylabel("response time (ms, log scale)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.suptitle("GET /users/sms/<mobile>/ under gunicorn: bars p50, black dash p99, dotted line the gateway")
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_throughput(delivery: list[dict], claim: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [p for p in (delivery, claim) if p]
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.4), squeeze=False)
    axes = list(axes[0])
    if delivery:
        ax = axes.pop(0)
        labels = [f"{d['pool']}\n-c {d['concurrency']}" for d in delivery]
        values = [d["sms_per_s"] or 0 for d in delivery]
        colours = ["#d62728" if d["pool"] == "prefork" else "#1f77b4" if d["pool"] == "threads" else "#2ca02c"
                   for d in delivery]  # fmt: skip
        ax.bar(range(len(values)), values, color=colours)
        ax.set_xticks(range(len(values)), labels, fontsize=8)
        ax.axhline(TARGET_SMS_PER_S, color="grey", linestyle="--", linewidth=1)
        ax.text(len(values) - 0.5, TARGET_SMS_PER_S, "target 100/s", ha="right", va="bottom", fontsize=8)
        ax.set_ylabel("SMS per second delivered")
        ax.set_title("One step 4 worker, gateway 0.2 s")
        ax.grid(axis="y", alpha=0.3)
    if claim:
        ax = axes.pop(0)
        rows = []
        if claim.get("producer"):
            rows.append(("producer: noop.delay()", claim["producer"]["per_min"], "#9467bd"))
        for w in claim.get("workers", []):
            rows.append((f"worker -P {w['pool']} -c {w['concurrency']}", w["per_min"], "#2ca02c"))
        for r in claim.get("redis", []):
            rows.append((r["short"].replace("\n", " "), r["per_min"], "#7f7f7f"))
        rows.reverse()  # barh draws bottom-up; keep the table's order top-down
        ax.barh(range(len(rows)), [r[1] or 0 for r in rows], color=[r[2] for r in rows])
        ax.set_yticks(range(len(rows)), [r[0] for r in rows], fontsize=8)
        ax.set_xscale("log")
        ax.axvline(CLAIM_PER_MINUTE, color="black", linestyle="--", linewidth=1)
        ax.text(CLAIM_PER_MINUTE * 1.1, len(rows) - 0.6, "1,000,000 / min", fontsize=8)
        ax.set_xlabel("no-op tasks (or Redis operations) per minute, log scale")
        ax.set_title("\u201cMillions of tasks a minute\u201d, through Redis")
        ax.grid(axis="x", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(results: dict, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "results.json", out / "results.md"]
    written[0].write_text(to_json(results), encoding="utf-8")
    written[1].write_text(render_markdown(results), encoding="utf-8")
    if results.get("endpoint"):
        plot_latency(results["endpoint"], out / "latency.png")
        written.append(out / "latency.png")
    if results.get("delivery") or results.get("claim"):
        plot_throughput(results.get("delivery", []), results.get("claim", {}), out / "throughput.png")
        written.append(out / "throughput.png")
    return written
