"""The benchmark harness's pure parts: statistics, targets, tables, JSON. No load, no timing here:
the figures come from ``make bench``, never from a test."""

from __future__ import annotations

import json
import os
import re

import psutil
import pytest

from tests.harness import left_running, make
from workshop import bench, bench_report
from workshop.bench_producer import nth_mobile
from workshop.bench_report import (
    check_targets,
    endpoint_ratios,
    percentile,
    ratio,
    render_markdown,
    spread_rate,
    summarise,
    table,
    to_json,
)


def point(step, latency, concurrency, p50, p99, per_s=100.0):
    return {"step": step, "gateway_latency_s": latency, "concurrency": concurrency, "count": 100,
            "errors": 0, "p50_ms": p50, "p95_ms": p99, "p99_ms": p99, "per_s": per_s,
            "gunicorn": "-w 5"}  # fmt: skip


def sample_results() -> dict:
    points = [
        point(1, 2.0, 10, 2010.0, 2030.0, per_s=4.9),
        point(3, 2.0, 10, 12.0, 30.0, per_s=700),
        point(4, 2.0, 10, 15.0, 40.0, per_s=600),
        point(1, 0.2, 1, 205.0, 207.0, per_s=4.8),
        point(4, 0.2, 1, 3.0, 5.0, per_s=300),
    ]
    results = {
        "meta": {
            "mode": "quick",
            "date": "2026-01-01 00:00 UTC",
            "duration_s": 90.0,
            "machine": {"cpu": "Test CPU", "cores": 2},
            "notes": ["a note"],
        },  # fmt: skip
        "endpoint": points,
        "ratios": endpoint_ratios(points),
        "delivery": [
            {
                "pool": "prefork",
                "concurrency": 2,
                "sms_per_s": 9.5,
                "ideal_per_s": 10,
                "sent": 40,
                "delivered": 40,
                "latency_p50_ms": 2700.0,
                "latency_p99_ms": 5200.0,
                "paced_sent": 50,
                "paced_delivered": 50,
                "failed_acks": 0,
                "http_pool_full": 0,
            },
            {
                "pool": "threads",
                "concurrency": 100,
                "sms_per_s": 250.0,
                "ideal_per_s": 500,
                "sent": 500,
                "delivered": 500,
                "latency_p50_ms": 205.0,
                "latency_p99_ms": 210.0,
                "paced_sent": 50,
                "paced_delivered": 50,
                "failed_acks": 3,
                "http_pool_full": 12,
            },
        ],  # fmt: skip
        "claim": {
            "producer": {"per_s": 2000.0, "per_min": 120_000.0},
            "workers": [{"pool": "solo", "concurrency": 1, "per_s": 1000.0, "per_min": 60_000.0}],
            "redis": [
                {
                    "what": "LPUSH, pipelined",
                    "short": "LPUSH\npipelined",
                    "per_s": 150_000.0,
                    "per_min": 9_000_000.0,
                }
            ],  # fmt: skip
        },
        "delay": [
            {"step": 4, "call": "send_sms.delay()", "count": 500, "p50_ms": 0.6, "p95_ms": 0.7, "p99_ms": 0.9}
        ],  # fmt: skip
    }
    results["targets"] = check_targets(results)
    return results


# --- statistics -------------------------------------------------------------------------------------


def test_percentile_interpolates_between_ranks_like_numpy():
    values = [4, 1, 3, 2]  # unordered on purpose
    assert percentile(values, 0) == 1
    assert percentile(values, 50) == 2.5
    assert percentile(values, 100) == 4
    assert percentile(list(range(1, 101)), 99) == pytest.approx(99.01)
    assert percentile([7.0], 99) == 7.0


def test_percentile_of_nothing_is_none_and_q_is_checked():
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile([1, 2], 101)


def test_summarise_turns_seconds_into_milliseconds_and_a_rate():
    summary = summarise([0.001, 0.002, 0.003], elapsed_s=0.5, errors=2)
    assert summary["count"] == 3
    assert summary["errors"] == 2
    assert summary["p50_ms"] == pytest.approx(2.0)
    assert summary["max_ms"] == pytest.approx(3.0)
    assert summary["per_s"] == pytest.approx(6.0)
    empty = summarise([], elapsed_s=0)
    assert empty["p50_ms"] is None and empty["per_s"] is None


def test_ratio_and_rates_give_none_rather_than_dividing_by_zero():
    assert ratio(2000.0, 10.0) == 200.0
    assert ratio(None, 10.0) is None
    assert ratio(2000.0, 0) is None
    assert spread_rate([3.0, 1.0, 2.0]) == pytest.approx(1.0)
    assert spread_rate([1.0]) is None
    assert bench_report.rate(0, 1.0) is None


def test_endpoint_ratios_compare_step_1_with_step_4_at_the_same_point():
    [at_2s, at_02s] = sorted(
        endpoint_ratios(sample_results()["endpoint"]), key=lambda r: -r["gateway_latency_s"]
    )
    assert (at_2s["gateway_latency_s"], at_2s["concurrency"]) == (2.0, 10)
    assert at_2s["ratio_p50"] == pytest.approx(2010 / 15)
    assert at_2s["ratio_p50_step3"] == pytest.approx(2010 / 12)
    assert at_02s["ratio_p50_step3"] is None  # no step 3 point there


def test_targets_say_which_are_met_and_which_are_not():
    targets = {t["target"]: t for t in sample_results()["targets"]}
    assert len(targets) == 5
    p50 = next(t for name, t in targets.items() if "p50, concurrency 10" in name)
    assert p50["met"] and p50["measured"] == 15.0
    assert all(t["met"] for t in targets.values())

    results = sample_results()
    results["endpoint"][2]["p99_ms"] = 80.0
    results["delivery"][1]["sms_per_s"] = 60.0
    failed = [t["target"] for t in check_targets(results) if not t["met"]]
    assert len(failed) == 2
    assert any("p99" in name for name in failed) and any("SMS/s" in name for name in failed)


def test_the_enqueue_target_is_judged_on_the_call_the_view_makes():
    results = sample_results()
    results["delay"] = [
        {"step": 4, "form": "delay", "call": "delay", "count": 9, "p50_ms": 0.5, "p95_ms": 1, "p99_ms": 1},
        {
            "step": 4,
            "form": "view",
            "call": "apply_async",
            "count": 9,
            "p50_ms": 2.5,
            "p95_ms": 3,
            "p99_ms": 3,
        },
    ]
    [target] = [t for t in check_targets(results) if "enqueue" in t["target"]]
    assert target["measured"] == 2.5 and not target["met"]


# --- tables and JSON --------------------------------------------------------------------------------


def test_table_aligns_numbers_right_and_escapes_pipes():
    text = table(["what", "n"], [["a|b", "1"]])
    assert text.splitlines() == ["| what | n |", "| --- | ---: |", "| a\\|b | 1 |"]
    with pytest.raises(ValueError):
        table(["a", "b"], [["only one"]])


def test_markdown_has_one_named_section_a_table_each_balanced():
    text = render_markdown(sample_results())
    starts = re.findall(r"<!-- --8<-- \[start:(\w+)\] -->", text)
    ends = re.findall(r"<!-- --8<-- \[end:(\w+)\] -->", text)
    assert starts == ends
    assert set(starts) <= set(bench_report.SECTIONS)
    assert {"machine", "endpoint", "ratios", "delivery", "claim", "delay", "targets", "notes"} <= set(starts)
    assert "Test CPU, 2 cores" in text
    assert "134×" in text  # 2010 ms / 15 ms
    assert bench_report.CELERY_CLAIM in text


def test_markdown_leaves_out_the_phases_that_did_not_run():
    results = sample_results()
    del results["delivery"], results["claim"]
    text = render_markdown(results)
    assert "[start:delivery]" not in text and "[start:claim]" not in text
    assert "[start:endpoint]" in text


def test_json_keeps_the_shape_the_docs_and_the_plots_read():
    data = json.loads(to_json(sample_results()))
    assert set(data) == {"meta", "endpoint", "ratios", "delivery", "claim", "delay", "targets"}
    assert {"step", "gateway_latency_s", "concurrency", "p50_ms", "p95_ms", "p99_ms", "per_s"} <= set(
        data["endpoint"][0]
    )
    assert {"target", "wanted", "measured", "met"} <= set(data["targets"][0])


def test_write_outputs_writes_the_four_files(tmp_path):
    written = bench_report.write_outputs(sample_results(), tmp_path)
    assert sorted(p.name for p in written) == ["latency.png", "results.json", "results.md", "throughput.png"]
    for png in ("latency.png", "throughput.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_formatting_of_small_and_large_figures():
    assert bench_report.fmt_ms(0.61) == "0.61 ms"
    assert bench_report.fmt_ms(17.26) == "17.3 ms"
    assert bench_report.fmt_ms(2012.0) == "2.01 s"
    assert bench_report.fmt_ratio(134.2) == "134×"
    assert bench_report.fmt_share(0.12) == "12 %"
    assert bench_report.fmt_share(8.2) == "8.2×"
    assert bench_report.fmt_num(None) == "–"


# --- the load's inputs ------------------------------------------------------------------------------


def test_every_request_has_its_own_valid_mobile_number_and_client_address():
    numbers = [nth_mobile(i) for i in range(0, 200_000, 7)]
    assert len(set(numbers)) == len(numbers)
    assert all(re.fullmatch(r"1[3-9]\d{9}", n) for n in numbers)  # step 4's mainland check
    addresses = [bench.client_address(i) for i in range(100_000)]
    assert len(set(addresses)) == len(addresses)
    assert "127.0.0.1" not in addresses
    assert all(
        re.fullmatch(r"127\.\d+\.\d+\.\d+", a) and max(map(int, a.split("."))) < 256 for a in addresses
    )


def test_plans_stay_within_what_the_page_promises():
    threads = int(bench.GUNICORN_ARGS[1][bench.GUNICORN_ARGS[1].index("--threads") + 1])
    assert threads >= max(bench.CONCURRENCIES)  # step 1 never queues in one gunicorn process
    assert set(bench.QUICK.delivery_pools) <= set(bench.DELIVERY_POOLS)
    assert set(bench.FULL.delivery_pools) == set(bench.DELIVERY_POOLS)
    assert {pool for pool, _ in bench.DELIVERY_POOLS} == {"prefork", "threads", "gevent"}


def test_the_bench_runs_end_to_end_in_smoke_mode(tmp_path):
    """`make bench` through every phase with tiny counts (figures meaningless, written to a temp dir):
    the harness starts its processes, measures, writes every output, and leaves nothing running."""
    # Every process the run starts inherits this marker: leftovers are found by it, not by guessing.
    marker = f"smoke-{os.getpid()}-{tmp_path.name}"
    result = make("bench", f"SMOKE_OUT={tmp_path}", WORKSHOP_BENCH_MARKER=marker)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for name in ("results.md", "results.json", "latency.png", "throughput.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    figures = json.loads((tmp_path / "results.json").read_text())
    assert figures["meta"]["mode"] == "smoke"
    assert "step 1 ÷ step 4" in (tmp_path / "results.md").read_text()

    def marked(process):
        try:
            return process.environ().get("WORKSHOP_BENCH_MARKER") == marker
        except psutil.Error:
            return False

    # Give what is still exiting a moment; anything alive after that was left behind.
    leftovers = left_running([p for p in psutil.process_iter() if marked(p)])
    assert leftovers == [], [p.cmdline() for p in leftovers]


def test_only_a_full_run_writes_the_figures_the_page_quotes(tmp_path):
    """`make bench QUICK=1` writes into bench-results/, never over docs/benchmarks/; a smoke run only where
    told; a full run into docs/benchmarks/ unless told otherwise."""
    assert bench.out_folder("full", None) == bench.OUT
    assert bench.out_folder("quick", None) == bench.QUICK_OUT
    assert bench.out_folder("quick", tmp_path) == tmp_path
    for mode, given in (("quick", bench.OUT), ("smoke", bench.OUT), ("smoke", None)):
        with pytest.raises(SystemExit):
            bench.out_folder(mode, given)
    with pytest.raises(SystemExit):  # part of a full run would replace only some of the page's tables
        bench.main(["--only", "endpoint"])


def test_the_published_run_names_its_commit():
    """The machine table says which commit was measured (and whether the tree differed from it)."""
    assert re.fullmatch(r"[0-9a-f]{12}( \+ uncommitted changes)?", bench.commit())
    table = bench_report.machine_table({"commit": "0123456789ab", "mode": "full"})
    assert "| commit | `0123456789ab` |" in table
