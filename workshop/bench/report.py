"""The tables of ``make bench``: ``results.md``, one table a section between snippet markers, so the page
includes each table (and each figure its prose quotes) from the run instead of copying it.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import stats

SECTIONS = ("findings", "findings_zh", "machine", "latency", "ratios", "capacity", "delay", "ceiling", "delivery", "reliability",
            "peers", "claim", "targets", "notes")  # fmt: skip


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


def fmt_ratio(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f}×" if value >= 10 else f"{value:.2f}×"


def fmt_share(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f} %"


def table(header: list[str], rows: list[list[str]], align: str | None = None) -> str:
    """A Markdown table; ``align`` is one letter a column, l or r (numbers read best on the right)."""
    align = align or "l" + "r" * (len(header) - 1)
    if len(align) != len(header) or any(len(row) != len(header) for row in rows):
        raise ValueError("every row needs one cell a column")
    rule = ["---:" if a == "r" else "---" for a in align]
    return "\n".join("| " + " | ".join(str(c).replace("|", "\\|") for c in line) + " |"
                     for line in [header, rule, *rows])  # fmt: skip


def section(name: str, body: str) -> str:
    return f"<!-- --8<-- [start:{name}] -->\n{body}\n<!-- --8<-- [end:{name}] -->"


def machine_table(meta: dict) -> str:
    m = meta.get("machine", {})
    rows = [
        ["date", meta.get("date", "–")],
        ["run", f"{meta.get('mode', '–')} (`{meta.get('command', 'python -m workshop.bench')}`), "
                f"{meta.get('duration_s', 0):.0f} s"],
        ["commit", f"`{meta.get('commit', '–')}`"
                   + (f" (tables written again at `{meta['rendered']}`)" if meta.get("rendered", meta.get("commit"))
                      != meta.get("commit") else "")],
        ["CPU", f"{m.get('cpu', '–')}, {m.get('cores', '–')} cores"],
        ["memory", m.get("memory", "–")],
        ["OS", m.get("os", "–")],
        ["load average before / after", f"{m.get('load_before', '–')} / {m.get('load_after', '–')}"],
        ["Python", m.get("python", "–")],
        ["versions", ", ".join(f"{k} {v}" for k, v in m.get("versions", {}).items())],
    ]  # fmt: skip
    return table(["machine", ""], rows, "ll")


def latency_table(summary: list[dict]) -> str:
    rows = [[f"{r['rate']}/s", f"step {r['step']}", str(r["repeats"]), str(r["samples"]), fmt_ms(r["p50_ms"]),
             f"{fmt_ms(r['p50_min_ms'])} – {fmt_ms(r['p50_max_ms'])}", fmt_num(r["p50_spread"], 2),
             fmt_ms(r["p99_ms"]), str(r["errors"]), fmt_ms(r["cpu_ms_per_request"])] for r in summary]  # fmt: skip
    header = ["offered", "step", "rounds", "requests a round (least)", "p50 (median of rounds)",
              "p50 range", "max ÷ min", "p99 (median)", "errors", "CPU per request (gunicorn + Redis)"]  # fmt: skip
    return table(header, rows, "llrrrrrrrr")


def ratios_table(rows: list[dict]) -> str:
    body = [[f"{r['rate']}/s", fmt_ratio(r["step1_over_step4_p50"]), fmt_ratio(r["step1_over_step4_p99"]),
             fmt_ratio(r["step4_over_step3_p50"]), fmt_ratio(r["step4_over_step3_cpu"])] for r in rows]  # fmt: skip
    header = ["offered", "step 1 ÷ step 4 (p50)", "(p99)", "step 4 ÷ step 3 (p50)", "(CPU per request)"]
    return table(header, body)


def capacity_table(rows: list[dict]) -> str:
    body = [[f"step {r['step']}", str(r["concurrency"]), str(r["count"]), fmt_num(r["per_s"], 1),
             fmt_ms(r["p50_ms"]), fmt_ms(r["p99_ms"]), str(r["errors"])] for r in rows]  # fmt: skip
    header = ["step", "in flight (closed loop)", "requests", "capacity, requests/s", "p50", "p99", "errors"]
    ratio = stats.capacity_ratio(rows)
    return table(header, body) + (
        f"\n\nStep 3 ÷ step 4: {fmt_ratio(ratio)} the requests a second." if ratio else ""
    )


def delay_table(rows: list[dict]) -> str:
    body = [[f"step {r['step']}", f"`{r['call']}`", str(r["count"]), fmt_ms(r["p50_ms"]), fmt_ms(r["p95_ms"]),
             fmt_ms(r["p99_ms"])] for r in rows]  # fmt: skip
    return table(["step", "call", "calls", "p50", "p95", "p99"], body, "llrrrr")


def ceiling_table(rows: list[dict]) -> str:
    body = [[str(r["concurrency"]), fmt_num(r["per_s"], 1), fmt_num(r["ideal_per_s"]),
             fmt_share(stats.ratio(r["per_s"], r["ideal_per_s"])), str(r["errors"])] for r in rows]  # fmt: skip
    header = ["senders (kept-alive connections)", "gateway ceiling, SMS/s", "concurrency ÷ 0.2 s", "of that",
              "errors"]  # fmt: skip
    return table(header, body)


def worker_said(row: dict) -> str:
    said = [f"{row['failed_acks']} failed acks"] if row.get("failed_acks") else []
    said += [f"{row['http_pool_full']}× HTTP pool full"] if row.get("http_pool_full") else []
    return ", ".join(said) or "–"


def delivery_table(rows: list[dict]) -> str:
    body = [[r["pool"], str(r["concurrency"]), f"`{r['options']}`" if r["options"] else "step 4's",
             fmt_num(r["sms_per_s"], 1), fmt_num(r["ceiling_per_s"], 1), fmt_share(r["of_ceiling"]),
             f"{r['delivered']}/{r['sent']}", fmt_ms(r["cpu_ms_per_sms"]), fmt_ms(r["latency_p50_ms"]),
             fmt_ms(r["latency_p99_ms"]), f"{r['paced_delivered']}/{r['paced_sent']}", worker_said(r)]
            for r in rows]  # fmt: skip
    header = ["pool", "concurrency", "settings", "SMS/s", "gateway ceiling", "of ceiling", "burst delivered",
              "worker CPU per SMS", "request → phone p50", "p99", "paced delivered", "worker log"]  # fmt: skip
    return table(header, body, "lrlrrrrrrrrl")


def reliability_table(rows: list[dict]) -> str:
    base = next((r for r in rows if r.get("baseline")), rows[0] if rows else {})
    body = [[r["label"], f"`{r['settings']}`", fmt_num(r["sms_per_s"], 1),
             fmt_ratio(stats.ratio(base.get("sms_per_s"), r["sms_per_s"])), fmt_ms(r["cpu_ms_per_sms"]),
             fmt_ratio(stats.ratio(r["cpu_ms_per_sms"], base.get("cpu_ms_per_sms"))),
             f"{r['delivered']}/{r['sent']}", str(r.get("duplicates", 0))] for r in rows]  # fmt: skip
    header = ["worker", "settings", "SMS/s", "time ÷ defaults'", "worker CPU per SMS", "CPU ÷ defaults'",
              "delivered", "sent twice"]  # fmt: skip
    return table(header, body, "llrrrrrr")


def fmt_measured(target: dict) -> str:
    value, unit = target["measured"], target["unit"]
    if value is None:
        return "–"
    return fmt_ratio(value) if unit == "×" else fmt_num(value, 2)


def targets_table(targets: list[dict]) -> str:
    rows = [
        [t["target"], t["wanted"], fmt_measured(t), "met" if t["met"] else "**not met**"] for t in targets
    ]
    return table(["target", "wanted", "measured", ""], rows, "lrrl")


def render_markdown(results: dict, extra: dict[str, str]) -> str:
    """results.md; ``extra`` holds sections rendered elsewhere (the peers), by name."""
    meta = results.get("meta", {})
    endpoint, delivery = results.get("endpoint") or {}, results.get("delivery") or {}
    parts = {
        "machine": ("The run", machine_table(meta)),
        "latency": endpoint and ("Endpoint latency at a fixed offered rate", latency_table(endpoint["summary"])),
        "ratios": endpoint and ("Ratios", ratios_table(endpoint["ratios"])),
        "capacity": endpoint and ("Capacity (closed loop)", capacity_table(endpoint["capacity"])),
        "delay": results.get("delay") and ("The cost of `.delay()` alone", delay_table(results["delay"])),
        "ceiling": delivery and ("The gateway's own ceiling", ceiling_table(delivery["ceilings"])),
        "delivery": delivery and ("What one step 4 worker delivers", delivery_table(delivery["pools"])),
        "reliability": results.get("reliability") and ("The cost of step 4's reliability settings",
                                                       reliability_table(results["reliability"])),
        **{name: (title, body) for name, (title, body) in extra.items()},
        "targets": results.get("targets") and ("Targets", targets_table(results["targets"])),
        "notes": meta.get("notes") and ("How it was measured", "\n".join(f"- {n}" for n in meta["notes"])),
    }  # fmt: skip
    lines = ["# Benchmark results", "", f"Written by `{meta.get('command', 'python -m workshop.bench')}` on "
             f"{meta.get('date', '–')}. Do not edit: rerun the benchmark."]  # fmt: skip
    for name in SECTIONS:
        if parts.get(name):
            title, body = parts[name]
            lines += ["", f"## {title}", "", section(name, body)]
    return "\n".join(lines) + "\n"


def write_outputs(results: dict, out: Path, extra: dict[str, str]) -> list[Path]:
    from . import plots

    out.mkdir(parents=True, exist_ok=True)
    written = [out / "results.json", out / "results.md"]
    written[0].write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    written[1].write_text(render_markdown(results, extra), encoding="utf-8")
    return written + plots.write_plots(results, out)
