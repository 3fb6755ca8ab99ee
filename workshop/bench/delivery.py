"""What one step 4 worker delivers, per pool, against what the gateway itself can take.

The gateway's ceiling is measured first, in the same run: a client with ``c`` kept-alive connections,
no Celery, no broker. Each pool's SMS/s is then a fraction of the ceiling at its own concurrency. Every
delivery is also kept as a per-second timeline: a pool that stalls shows it as gaps, not only as a
lower average.
"""

from __future__ import annotations

import os
import threading
import time

from . import jobs, report, stats
from .endpoint import cpu_seconds
from .plan import DELIVERY_LATENCY
from .producer import nth_mobile
from .run import STEPS, Run, log
from .workers import without_pool

OFFERED_PER_S = 50  # the paced run: a busy sign-up hour, more than prefork -c 2 can deliver (10/s)


def ceiling(run: Run, concurrency: int) -> dict:
    """SMS/s the gateway answers with ``concurrency`` senders in a loop, for the plan's seconds."""
    run.gateway_at(DELIVERY_LATENCY)
    os.environ["RONGLIAN_BASE_URL"] = run.gateway_url  # where jobs.send_sms sends, from this process
    first = run.numbers(100_000)
    done, errors, lock = [0], [0], threading.Lock()
    stop_at = time.monotonic() + run.plan.ceiling_seconds

    def sender(k: int) -> None:
        i = 0
        while time.monotonic() < stop_at:
            try:
                jobs.send_sms(nth_mobile(first + k * 1000 + i % 1000))
                with lock:
                    done[0] += 1
            except Exception:  # noqa: BLE001 - counted, and the row says how many
                with lock:
                    errors[0] += 1
            i += 1

    threads = [threading.Thread(target=sender, args=(k,), daemon=True) for k in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(run.plan.ceiling_seconds + 15)
    per_s = stats.rate(done[0], time.perf_counter() - started)
    log(f"gateway ceiling, {concurrency} senders: {report.fmt_num(per_s, 1)} SMS/s, errors {errors[0]}")
    return {"concurrency": concurrency, "per_s": per_s, "ideal_per_s": concurrency / DELIVERY_LATENCY,
            "errors": errors[0]}  # fmt: skip


def timeline(stamps: list[float], since: float) -> list[int]:
    """SMS delivered in each second after ``since``."""
    counts: list[int] = []
    for stamp in stamps:
        second = int(stamp - since)
        if second >= 0:
            counts.extend([0] * (second + 1 - len(counts)))
            counts[second] += 1
    return counts


def deliver_with(run: Run, producer, pool: str, concurrency: int, *extra: str) -> dict:
    run.redis(15).delete("celery", "sms", "unacked", "unacked_index")
    run.redis(1).flushdb()  # step 4's "already sent" markers
    run.gateway_at(DELIVERY_LATENCY)
    options = [*without_pool(STEPS[4]), "-P", pool, "-c", str(concurrency), *extra]
    worker = run.worker(STEPS[4], "mycelery.main", *options)
    try:
        worker.wait_for(" ready.", timeout=90)
        # Paced, on an empty queue: each message timed from .delay() to the gateway's delivered_at.
        count = run.plan.paced_messages
        baseline = run.gateway.control()["delivered"]
        answer = producer.ask(
            {"op": "enqueue", "first": run.numbers(count), "count": count, "rate": OFFERED_PER_S}
        )
        run.wait_delivered(baseline, count, timeout=max(20, 2 * count / min(concurrency / DELIVERY_LATENCY,
                                                                             OFFERED_PER_S)))  # fmt: skip
        enqueued = dict(answer["enqueued"])
        latencies = [
            m["delivered_at"] - enqueued[m["to"]] for m in run.gateway.inbox() if m["to"] in enqueued
        ]
        if not latencies:
            # Nothing reached the phone: a broken run, not a figure. Say why, with the worker's words.
            raise RuntimeError(f"the {pool} worker delivered no SMS; its log:\n{worker.output[-4000:]}")
        paced = stats.summarise(latencies, answer["elapsed"])

        # Burst: far more than the pool holds. Only what is delivered after the producer finished counts,
        # so its CPU is not taken from the worker, and the queue never runs dry while measured.
        run.gateway_at(DELIVERY_LATENCY)
        burst = concurrency * run.plan.burst_waves * (4 if pool == "prefork" else 1)
        first = run.numbers(burst)
        baseline = run.gateway.control()["delivered"]
        answer = producer.ask({"op": "enqueue", "first": first, "count": burst, "rate": 0})
        began, done = answer["enqueued"][0][1], answer["enqueued"][-1][1]
        cpu_before = cpu_seconds(worker.pid)
        run.wait_delivered(baseline, burst, timeout=run.plan.burst_seconds)
        cpu = cpu_seconds(worker.pid) - cpu_before
        sent = {nth_mobile(first + i) for i in range(burst)}
        delivered_at = sorted(m["delivered_at"] for m in run.gateway.inbox() if m["to"] in sent)
    finally:
        worker.stop()
    after = [t for t in delivered_at if t > done]
    sms_per_s = stats.rate(len(after), max(after) - done) if after else None
    row = {
        "pool": pool, "concurrency": concurrency, "options": " ".join(extra), "sms_per_s": sms_per_s,
        "sent": burst, "delivered": len(delivered_at), "measured_over": len(after),
        "cpu_ms_per_sms": 1000 * cpu / len(after) if after else None,
        "timeline": timeline(delivered_at, began), "offered_per_s": OFFERED_PER_S,
        "paced_sent": count, "paced_delivered": paced["count"],
        "latency_p50_ms": paced["p50_ms"], "latency_p99_ms": paced["p99_ms"],
        # What the worker said: acks that failed, HTTP connections thrown away for want of room.
        "failed_acks": worker.output.count("Couldn't ack"),
        "http_pool_full": worker.output.count("Connection pool is full"),
    }  # fmt: skip
    log(
        f"delivery {pool} -c {concurrency} {row['options']}: {report.fmt_num(sms_per_s, 1)} SMS/s "
        f"({len(delivered_at)}/{burst} in {run.plan.burst_seconds:g} s), paced {paced['count']}/{count}, "
        f"p50 {report.fmt_ms(paced['p50_ms'])}, p99 {report.fmt_ms(paced['p99_ms'])}"
    )
    return row


def delivery(run: Run) -> dict:
    rows_to_run = [*run.plan.delivery_pools, *run.plan.gevent_variants]
    ceilings = {c: ceiling(run, c) for c in sorted({row[1] for row in rows_to_run})}
    rows = []
    producer = run.producer(STEPS[4])
    try:
        for pool, concurrency, *extra in rows_to_run:
            row = deliver_with(run, producer, pool, concurrency, *extra)
            row["ceiling_per_s"] = ceilings[concurrency]["per_s"]
            row["of_ceiling"] = (
                stats.ratio(row["sms_per_s"], row["ceiling_per_s"]) if row["sms_per_s"] else None
            )
            rows.append(row)
    finally:
        producer.stop()
    return {"ceilings": list(ceilings.values()), "pools": rows, "gateway_latency_s": DELIVERY_LATENCY}
