"""The benchmark harness: its arithmetic, tables and rules, its open-loop load generator against a server
that holds every request, and one tiny end-to-end run. No figure here comes from timing: the figures come
from ``make bench``, never from a test."""

from __future__ import annotations

import http.server
import json
import os
import re
import threading

import psutil
import pytest

from tests.harness import left_running, make
from workshop.bench import __main__ as cli
from workshop.bench import findings, load, plan, report, run, stats
from workshop.bench.delivery import timeline
from workshop.bench.endpoint import GUNICORN, WORKERS
from workshop.bench.producer import nth_mobile
from workshop.bench.workers import split_pool, without_pool
from workshop.steps import step_folder


def point(step, rate, repeat, p50, p99, cpu=1.0):
    return {"step": step, "rate": rate, "repeat": repeat, "count": 220, "errors": 0, "p50_ms": p50,
            "p95_ms": p99, "p99_ms": p99, "cpu_ms_per_request": cpu}  # fmt: skip


def sample_results() -> dict:
    points = [point(1, 20, r, 2010.0 + r, 2030.0) for r in (1, 2, 3)]
    points += [point(3, 20, r, p50, 9.0, cpu=4.0) for r, p50 in ((1, 4.0), (2, 4.2), (3, 4.4))]
    points += [point(4, 20, r, p50, 12.0, cpu=5.0) for r, p50 in ((1, 5.0), (2, 5.5), (3, 5.2))]
    capacity = [{"step": 3, "concurrency": 10, "count": 3000, "per_s": 500.0, "p50_ms": 19.0, "p99_ms": 30.0,
                 "errors": 0}, {"step": 4, "concurrency": 10, "count": 3000, "per_s": 400.0, "p50_ms": 24.0,
                 "p99_ms": 40.0, "errors": 0}]  # fmt: skip
    summary = stats.open_loop_summary(points)
    pool = {"sent": 500, "delivered": 500, "measured_over": 480, "cpu_ms_per_sms": 3.0, "timeline": [250, 250],
            "offered_per_s": 50, "paced_sent": 50, "paced_delivered": 50, "latency_p50_ms": 205.0,
            "latency_p99_ms": 210.0, "failed_acks": 0, "http_pool_full": 0}  # fmt: skip
    results = {
        "meta": {"mode": "quick", "date": "2026-01-01 00:00 UTC", "duration_s": 90.0, "commit": "0123456789ab",
                 "machine": {"cpu": "Test CPU", "cores": 2, "versions": {"celery": "5.7.0"}}, "notes": ["a note"]},
        "endpoint": {"points": points, "summary": summary, "ratios": stats.ratios(summary),
                     "capacity": capacity, "gunicorn": {}, "gateway_latency_s": 2.0},
        "delay": [{"step": 4, "call": "send_sms.delay(ref)", "count": 500, "p50_ms": 0.6, "p95_ms": 0.7,
                   "p99_ms": 0.9}],
        "delivery": {"gateway_latency_s": 0.2, "ceilings": [{"concurrency": 50, "per_s": 245.0, "ideal_per_s": 250,
                                                             "errors": 0}],
                     "pools": [{**pool, "pool": "threads", "concurrency": 50, "options": "", "sms_per_s": 220.0,
                                "ceiling_per_s": 245.0, "of_ceiling": 220 / 245},
                               {**pool, "pool": "gevent", "concurrency": 50, "options": "", "sms_per_s": 25.0,
                                "ceiling_per_s": 245.0, "of_ceiling": 25 / 245}]},
        "reliability": [
            {"label": "defaults", "settings": "x", "baseline": True, "sms_per_s": 240.0, "cpu_ms_per_sms": 2.0,
             "sent": 100, "delivered": 100, "duplicates": 0},
            {"label": "late", "settings": "y", "sms_per_s": 230.0, "cpu_ms_per_sms": 2.2, "sent": 100,
             "delivered": 100, "duplicates": 0},
            {"label": "step 4", "settings": "z", "sms_per_s": 220.0, "cpu_ms_per_sms": 3.0, "sent": 100,
             "delivered": 100, "duplicates": 0},
        ],
    }  # fmt: skip
    results["targets"] = stats.check_targets(results)
    return results


# --- arithmetic -------------------------------------------------------------------------------------


def test_percentile_interpolates_between_ranks_like_numpy():
    assert stats.percentile([4, 1, 3, 2], 50) == 2.5  # unordered on purpose
    assert stats.percentile(list(range(1, 101)), 99) == pytest.approx(99.01)
    assert stats.percentile([], 50) is None
    with pytest.raises(ValueError):
        stats.percentile([1, 2], 101)


def test_summarise_ratio_and_rate_never_divide_by_zero():
    summary = stats.summarise([0.001, 0.002, 0.003], elapsed_s=0.5, errors=2)
    assert (summary["count"], summary["errors"]) == (3, 2)
    assert summary["p50_ms"] == pytest.approx(2.0) and summary["per_s"] == pytest.approx(6.0)
    assert stats.summarise([], elapsed_s=0)["per_s"] is None
    assert stats.ratio(2000.0, 10.0) == 200.0
    assert stats.ratio(None, 10.0) is None and stats.ratio(1.0, 0) is None
    assert stats.rate(0, 1.0) is None


def test_rounds_are_summarised_by_their_median_and_their_spread():
    summary = {(r["rate"], r["step"]): r for r in sample_results()["endpoint"]["summary"]}
    four = summary[(20, 4)]
    assert four["p50_ms"] == 5.2  # the median of 5.0, 5.5, 5.2
    assert (four["p50_min_ms"], four["p50_max_ms"]) == (5.0, 5.5)
    assert four["p50_spread"] == pytest.approx(1.1)
    assert four["repeats"] == 3 and four["samples"] == 220
    assert stats.spread([3.0]) is None  # one round says nothing about agreement


def test_ratios_compare_the_steps_at_the_same_offered_rate():
    [row] = sample_results()["endpoint"]["ratios"]
    assert row["step1_over_step4_p50"] == pytest.approx(2012.0 / 5.2)
    assert row["step4_over_step3_cpu"] == pytest.approx(5.0 / 4.0)
    assert stats.capacity_ratio(sample_results()["endpoint"]["capacity"]) == pytest.approx(500 / 400)


def test_targets_say_which_are_met_and_which_are_not():
    targets = sample_results()["targets"]
    assert len(targets) == 4 and all(t["met"] for t in targets), targets

    results = sample_results()
    results["endpoint"]["points"][4]["p50_ms"] = 6.0  # step 3's rounds now 4.0 .. 6.0: 1.5 apart
    results["endpoint"]["summary"] = stats.open_loop_summary(results["endpoint"]["points"])
    results["delivery"]["pools"][0]["of_ceiling"] = 0.5
    failed = [t["target"] for t in stats.check_targets(results) if not t["met"]]
    assert len(failed) == 2, failed
    assert any("step 3 at 20/s" in name for name in failed) and any("threads" in name for name in failed)


def test_the_timeline_counts_deliveries_by_second():
    assert timeline([10.1, 10.2, 12.5, 9.0], since=10.0) == [2, 0, 1]
    assert timeline([], since=0.0) == []


# --- tables and sentences ---------------------------------------------------------------------------


def test_markdown_has_one_named_section_a_table_each_balanced():
    results = sample_results()
    extra = {"findings": ("found", "- a finding")}
    text = report.render_markdown(results, extra)
    starts = re.findall(r"<!-- --8<-- \[start:(\w+)\] -->", text)
    assert starts == re.findall(r"<!-- --8<-- \[end:(\w+)\] -->", text)
    assert starts == [s for s in report.SECTIONS if s in starts]  # in the page's order
    assert {"findings", "machine", "latency", "ratios", "capacity", "delay", "ceiling", "delivery", "reliability",
            "targets", "notes"} <= set(starts)  # fmt: skip
    assert "Test CPU, 2 cores" in text and "`0123456789ab`" in text
    del results["delivery"]
    assert "[start:delivery]" not in report.render_markdown(results, {})


def test_the_findings_quote_the_run_in_both_languages_and_skip_what_it_did_not_measure():
    results = sample_results()
    english, chinese = findings.sentences(results, findings.EN), findings.sentences(results, findings.ZH)
    assert len(english) == len(chinese) >= 4
    assert any("387×" in s for s in english) and any("387×" in s for s in chinese)  # 2012 ms ÷ 5.2 ms
    assert any("Celery's defaults" in s for s in english)
    del results["reliability"]
    fewer = findings.sentences(results, findings.EN)
    assert len(fewer) < len(english) and not any("Celery's defaults" in s for s in fewer)


def test_write_outputs_writes_the_tables_the_figures_and_the_plots(tmp_path):
    written = report.write_outputs(sample_results(), tmp_path, {})
    assert sorted(p.name for p in written) == ["delivery.png", "latency.png", "results.json", "results.md"]
    for png in ("latency.png", "delivery.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "results.json").read_text())["meta"]["commit"] == "0123456789ab"


# --- the rules of a run -----------------------------------------------------------------------------


def test_the_full_plan_keeps_the_promises_of_the_page():
    for rate, seconds in plan.FULL.open_seconds.items():
        assert rate * seconds >= 200, "step 1 needs at least 200 requests a point for its p99"
    assert plan.FULL.repeats >= 3
    threads = int(GUNICORN[1][GUNICORN[1].index("--threads") + 1])
    # Step 1 holds a thread a request for the provider's whole latency: never let one queue.
    assert WORKERS * threads >= max(plan.OPEN_RATES) * plan.OPEN_GATEWAY_LATENCY
    assert {pool for pool, _ in plan.DELIVERY_POOLS} == {"prefork", "threads", "gevent"}
    assert stats.TARGET_CONCURRENCY in {c for _, c in plan.DELIVERY_POOLS}
    # The peers run the SMS job as many at once as step 4's worker does.
    assert f"--concurrency={plan.FULL.peer_concurrency}" in step_folder(4).joinpath("Procfile").read_text()


def test_step_4s_procfile_runs_the_pool_the_benchmark_recommends():
    """docs/benchmarks.md#gevent: threads, 50 at once. The bench sets each row's pool itself."""
    words = " ".join(step_folder(4).joinpath("Procfile").read_text().split())
    assert "--pool=threads --concurrency=50" in words
    assert without_pool(step_folder(4)) == ["-Q", "sms,celery"]


def test_only_a_whole_full_run_writes_the_figures_the_page_quotes(tmp_path):
    """`make bench QUICK=1` writes into bench-results/, never over docs/benchmarks/; a smoke run or part
    of a run only where told."""
    assert cli.out_folder("full", None, partial=False) == cli.OUT
    assert cli.out_folder("quick", None, partial=False) == cli.QUICK_OUT
    assert cli.out_folder("quick", tmp_path, partial=False) == tmp_path
    assert cli.out_folder("full", tmp_path, partial=True) == tmp_path
    for mode, given, partial in (("quick", cli.OUT, False), ("smoke", cli.OUT, False), ("smoke", None, False),
                                 ("full", None, True), ("full", cli.OUT, True)):  # fmt: skip
        with pytest.raises(SystemExit):
            cli.out_folder(mode, given, partial)


def test_the_run_names_its_commit():
    assert re.fullmatch(r"[0-9a-f]{12}( \+ uncommitted changes)?", run.commit(cli.OUT))


# --- the open loop ----------------------------------------------------------------------------------


def test_every_request_has_its_own_valid_mobile_number_and_client_address():
    numbers = [nth_mobile(i) for i in range(0, 200_000, 7)]
    assert len(set(numbers)) == len(numbers)
    assert all(re.fullmatch(r"1[3-9]\d{9}", n) for n in numbers)  # step 4's mainland check
    addresses = [load.client_address(i) for i in range(100_000)]
    assert len(set(addresses)) == len(addresses) and "127.0.0.1" not in addresses


def test_the_open_loop_sends_on_schedule_while_no_request_has_answered():
    """The server holds every request until all have arrived: a closed loop would stop at its concurrency
    and wait forever; the open loop sends every one, and each latency counts from its scheduled time, so
    the wait the server imposed is in the figures."""
    arrived, released, release, count = [], [], threading.Event(), 10

    class Holding(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            arrived.append(self.path)
            if len(arrived) == count:
                release.set()
            # True only if the last request arrived while this one was still waiting for its answer.
            released.append(release.wait(10))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Holding)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        result = load.open_loop(
            1, server.server_address[1], 0, rate=100, seconds=count / 100, many_addresses=False
        )
    finally:
        server.shutdown()
    assert len(arrived) == count and result["count"] == count and result["statuses"] == {"200": count}
    assert released == [True] * count, "every request must have been in flight at once"
    # The first request waited for the last to be sent: (count - 1) / rate after its own schedule, at least.
    assert result["max_ms"] >= (count - 1) / 100 * 1000


# --- end to end -------------------------------------------------------------------------------------


def test_the_bench_runs_end_to_end_in_smoke_mode(tmp_path):
    """`make bench` through every scenario with tiny counts (figures meaningless, written to a temp dir):
    the harness starts its processes, measures, writes every output, and leaves nothing running."""
    # Every process the run starts inherits this marker: leftovers are found by it, not by guessing.
    marker = f"smoke-{os.getpid()}-{tmp_path.name}"
    result = make("bench", f"SMOKE_OUT={tmp_path}", WORKSHOP_BENCH_MARKER=marker)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for name in ("results.md", "results.json", "latency.png", "delivery.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    figures = json.loads((tmp_path / "results.json").read_text())
    assert figures["meta"]["mode"] == "smoke"
    assert set(cli.SCENARIOS) <= set(figures)
    text = (tmp_path / "results.md").read_text()
    for name in ("findings", "findings_zh", "latency", "ceiling", "delivery", "reliability", "peers"):
        assert f"[start:{name}]" in text, name

    # The tables and sentences can be written again from the figures alone, measuring nothing.
    (tmp_path / "results.md").unlink()
    assert cli.main(["--render", str(tmp_path / "results.json")]) == 0
    assert (tmp_path / "results.md").read_text() == text

    def marked(process):
        try:
            return process.environ().get("WORKSHOP_BENCH_MARKER") == marker
        except psutil.Error:
            return False

    # Give what is still exiting a moment; anything alive after that was left behind.
    leftovers = left_running([p for p in psutil.process_iter() if marked(p)])
    assert leftovers == [], [p.cmdline() for p in leftovers]


def test_the_pool_options_are_split_off_in_both_spellings(tmp_path):
    (tmp_path / "Procfile").write_text(
        "worker: celery -A m worker -Q sms -P gevent --concurrency=20 -c 5 -E\n"
    )
    assert split_pool(tmp_path) == (["-P", "gevent", "--concurrency=20", "-c", "5"], ["-Q", "sms", "-E"])
