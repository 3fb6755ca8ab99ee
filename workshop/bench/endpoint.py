"""The send endpoint of steps 1, 3 and 4 under gunicorn: latency at fixed offered rates, capacity, and
the cost of ``.delay()`` alone.

The three steps run side by side (each with its own Redis, and for steps 3 and 4 a worker draining the
queue, as in production, with the same pool for both) so the points can be interleaved: 1, 3, 4, 1, 3, 4, ... in every round. A
change in the machine's speed during the run then touches every step alike, and the spread across
rounds shows how far one run's figure can be trusted.
"""

from __future__ import annotations

import os

import psutil

from . import load, report, stats
from .plan import OPEN_GATEWAY_LATENCY, OPEN_RATES
from .run import STEPS, Run, log, wait_http
from .workers import without_pool

# gunicorn's advice, 2 x cores + 1 processes. Step 1 holds a thread per request for the provider's whole
# latency: 50 requests/s x 2 s = 100 in flight, so threads enough for all of them (its best case).
# Steps 3 and 4 only use the CPU: gunicorn's default sync workers, for both (step 4's own gunicorn.conf.py,
# which gunicorn reads from the folder, asks for gthread: the command line wins).
WORKERS = 2 * (os.cpu_count() or 1) + 1
SYNC = ("-w", str(WORKERS), "-k", "sync")
GUNICORN = {1: ("-w", str(WORKERS), "-k", "gthread", "--threads", "40"), 3: SYNC, 4: SYNC}
# The workers of steps 3 and 4 during the measurement: the same pool, so neither step's machine is busier.
DRAIN_POOL = ("--pool=threads", "--concurrency=50")
CAPACITY_CONCURRENCY = 10


def cpu_seconds(*pids: int) -> float:
    """CPU time (user + system) so far of these processes and their children (gunicorn's master and
    workers, a step's Redis server)."""
    total = 0.0
    procs = [p for pid in pids for p in (psutil.Process(pid), *psutil.Process(pid).children(recursive=True))]
    for proc in procs:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def start_steps(run: Run, started: list) -> tuple[dict[int, int], dict[int, tuple[int, int]]]:
    """gunicorn for steps 1, 3 and 4, and a worker for 3 and 4, all starting at once: step -> port, and
    step -> the pids of its gunicorn and its Redis. What it starts goes into ``started``."""
    ports, pids, workers = {}, {}, []
    for step in (1, 3, 4):
        redis = run.new_redis()
        web, ports[step] = run.gunicorn(step, GUNICORN[step], redis.url)
        pids[step] = (web.pid, redis.process.pid)  # the request's cost: the web server's and its Redis's
        started.append(web)
        if step != 1:
            options = [*without_pool(STEPS[step]), *DRAIN_POOL]
            workers.append(run.worker(STEPS[step], "mycelery.main", *options, redis_url=redis.url))
    started += workers
    for worker in workers:
        worker.wait_for(" ready.", timeout=90)
    run.gateway_at(0)  # the warm-up need not wait for the provider
    for step, port in ports.items():
        wait_http(port, "/", timeout=60)
        # Warm-up, not counted: each gunicorn process imports the view on its first request.
        load.closed_loop(step, port, run.numbers(40), 40, 10, 30, run.many_addresses)
    run.gateway_at(OPEN_GATEWAY_LATENCY)
    return ports, pids


def endpoint(run: Run) -> dict:
    started = []
    try:
        return measure(run, *start_steps(run, started))
    finally:
        # The workers would go on sending what was queued, through the gateway the next scenario uses;
        # their queues are in Redis servers of their own that nothing reads again: no need to wait for them.
        for process in reversed(started):
            process.kill()


def measure(run: Run, ports: dict[int, int], pids: dict[int, tuple[int, int]]) -> dict:
    points = []
    for repeat in range(run.plan.repeats):
        for rate in OPEN_RATES:
            for step in (1, 3, 4):
                seconds = run.plan.open_seconds[rate]
                cpu_before = cpu_seconds(*pids[step])
                result = load.open_loop(step, ports[step], run.numbers(round(rate * seconds) + 1), rate, seconds,
                                        run.many_addresses)  # fmt: skip
                cpu = cpu_seconds(*pids[step]) - cpu_before
                result["cpu_ms_per_request"] = 1000 * cpu / result["count"] if result["count"] else None
                points.append({"step": step, "rate": rate, "repeat": repeat + 1, **result})
                log(
                    f"open loop, round {repeat + 1}, {rate}/s, step {step}: {result['count']}/{result['sent']} "
                    f"ok, p50 {report.fmt_ms(result['p50_ms'])}, p99 {report.fmt_ms(result['p99_ms'])}, "
                    f"CPU {report.fmt_ms(result['cpu_ms_per_request'])}/request {result['statuses']}"
                )
    capacity = []
    for step in (3, 4):
        result = load.closed_loop(step, ports[step], run.numbers(run.plan.capacity_requests),
                                  run.plan.capacity_requests, CAPACITY_CONCURRENCY, run.plan.capacity_seconds,
                                  run.many_addresses)  # fmt: skip
        capacity.append({"step": step, **result})
        log(
            f"capacity, step {step}: {report.fmt_num(result['per_s'], 1)} requests/s with "
            f"{CAPACITY_CONCURRENCY} in flight, errors {result['errors']}"
        )
    summary = stats.open_loop_summary(points)
    return {"points": points, "summary": summary, "ratios": stats.ratios(summary), "capacity": capacity,
            "gunicorn": {step: " ".join(args) for step, args in GUNICORN.items()},
            "gateway_latency_s": OPEN_GATEWAY_LATENCY}  # fmt: skip


DELAY_CALLS = {3: "send_sms.delay(mobile=..., sms_code=...)", 4: "send_sms.delay(ref), as the view calls it"}


def delay(run: Run) -> list[dict]:
    """``send_sms.delay(...)`` timed alone, one call at a time, no worker running, after 100 warm-up calls."""
    rows = []
    for step, call in DELAY_CALLS.items():
        producer = run.producer(STEPS[step], run.new_redis().url)
        try:
            count, warmup = run.plan.delay_calls, 100
            answer = producer.ask({"op": "delay", "first": run.numbers(count + warmup), "count": count,
                                   "warmup": warmup})  # fmt: skip
        finally:
            producer.stop()
        summary = stats.summarise(answer["durations"], sum(answer["durations"]))
        rows.append({"step": step, "call": call, **summary})
        log(
            f"delay, step {step}: p50 {report.fmt_ms(summary['p50_ms'])}, p99 {report.fmt_ms(summary['p99_ms'])}"
        )
    return rows
