"""The pictures of ``make bench``: latency per step and rate, SMS/s per pool, and the delivery timeline."""

from __future__ import annotations

from pathlib import Path

SHORT = {"--prefetch-multiplier=2": "prefetch\n×2", "--disable-prefetch": "disable-\nprefetch"}
COLOURS = {1: "#d62728", 3: "#1f77b4", 4: "#2ca02c", "prefork": "#d62728", "threads": "#1f77b4",
           "gevent": "#2ca02c"}  # fmt: skip


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_latency(endpoint: dict, path: Path) -> None:
    plt = pyplot()
    summary = endpoint["summary"]
    rates = sorted({r["rate"] for r in summary})
    steps = sorted({r["step"] for r in summary})
    fig, ax = plt.subplots(figsize=(8, 4.4))
    width = 0.8 / len(steps)
    for i, step in enumerate(steps):
        rows = [next(r for r in summary if (r["rate"], r["step"]) == (rate, step)) for rate in rates]
        xs = [j + (i - (len(steps) - 1) / 2) * width for j in range(len(rates))]
        p50 = [r["p50_ms"] or 0 for r in rows]
        low = [(r["p50_ms"] or 0) - (r["p50_min_ms"] or 0) for r in rows]
        high = [(r["p50_max_ms"] or 0) - (r["p50_ms"] or 0) for r in rows]
        ax.bar(xs, p50, width, color=COLOURS[step], label=f"step {step}: p50 (median of rounds, range)",
               yerr=[low, high], capsize=3)  # fmt: skip
        ax.scatter(xs, [r["p99_ms"] for r in rows], marker="_", s=300, color="black", zorder=3,
                   label="p99" if i == 0 else None)  # fmt: skip
    ax.set_yscale("log")
    ax.set_xticks(range(len(rates)), [f"{rate} requests/s offered" for rate in rates])
    ax.axhline(endpoint["gateway_latency_s"] * 1000, color="grey", linestyle=":", linewidth=1)
    ax.set_ylabel("response time from the scheduled send (ms, log)")
    ax.set_title(
        f"The send endpoint under gunicorn, open loop, gateway {endpoint['gateway_latency_s']:g} s (dotted)"
    )
    ax.grid(axis="y", which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="center right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_delivery(delivery: dict, path: Path) -> None:
    """Left: each pool's SMS/s beside the gateway's ceiling. Right: SMS per second over the burst."""
    plt = pyplot()
    rows = delivery["pools"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [1.3, 1]})
    labels = [f"{r['pool']}\n-c {r['concurrency']}" + (f"\n{SHORT.get(r['options'], r['options'])}" if r["options"]
              else "") for r in rows]  # fmt: skip
    left.bar(range(len(rows)), [r["sms_per_s"] or 0 for r in rows], color=[COLOURS[r["pool"]] for r in rows])
    left.scatter(range(len(rows)), [r["ceiling_per_s"] or 0 for r in rows], marker="_", s=400, color="black",
                 zorder=3, label="the gateway's own ceiling at that concurrency")  # fmt: skip
    left.set_xticks(range(len(rows)), labels, fontsize=7)
    left.set_ylabel("SMS per second")
    left.set_title(f"One step 4 worker, gateway {delivery['gateway_latency_s']:g} s")
    left.legend(fontsize=8)
    left.grid(axis="y", alpha=0.3)
    shown = [r for r in rows if r["concurrency"] == 20 and r["pool"] in ("gevent", "threads")] or rows
    styles = ["-", "--", ":", "-."]
    for i, r in enumerate(shown):
        label = f"{r['pool']} -c {r['concurrency']} " + (r["options"] or "(step 4's settings)")
        right.step(range(len(r["timeline"])), r["timeline"], where="post", label=label,
                   linestyle=styles[i % len(styles)], linewidth=2.5 - 0.5 * (i % 3))  # fmt: skip
    right.set_xlabel("seconds since the burst was queued")
    right.set_ylabel("SMS delivered in that second")
    right.set_title("The burst, second by second")
    right.legend(fontsize=8)
    right.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_plots(results: dict, out: Path) -> list[Path]:
    written = []
    if results.get("endpoint"):
        plot_latency(results["endpoint"], out / "latency.png")
        written.append(out / "latency.png")
    if results.get("delivery"):
        plot_delivery(results["delivery"], out / "delivery.png")
        written.append(out / "delivery.png")
    return written
