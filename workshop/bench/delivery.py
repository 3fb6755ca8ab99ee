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


def drain(run: Run, start_worker, mobiles: list[str], deadline_s: float) -> dict:
    """The queue holds ``mobiles``' SMS; start the worker and measure it until all are delivered or the
    deadline: SMS/s from the gateway's first receipt to its last delivery, the worker's CPU per SMS, each
    number counted (twice is a duplicate), and the deliveries second by second."""
    baseline = run.gateway.control()["delivered"]
    worker = start_worker()
    try:
        worker.wait_for(" ready.", timeout=90)
        cpu_before = cpu_seconds(worker.pid)
        run.wait_delivered(baseline, len(mobiles), timeout=deadline_s)
        cpu = cpu_seconds(worker.pid) - cpu_before
    finally:
        worker.stop()
    wanted = set(mobiles)
    inbox = [m for m in run.gateway.inbox() if m["to"] in wanted]
    received, delivered = [m["received_at"] for m in inbox], sorted(m["delivered_at"] for m in inbox)
    distinct = len({m["to"] for m in inbox})
    return {"sms_per_s": stats.rate(len(inbox), delivered[-1] - min(received)) if len(inbox) > 1 else None,
            "sent": len(mobiles), "delivered": distinct, "duplicates": len(inbox) - distinct,
            "cpu_ms_per_sms": 1000 * cpu / len(inbox) if inbox else None,
            "timeline": timeline(delivered, min(received)) if inbox else [],
            # What the worker said: acks that failed, HTTP connections thrown away for want of room.
            "failed_acks": worker.output.count("Couldn't ack"),
            "http_pool_full": worker.output.count("Connection pool is full")}  # fmt: skip


def empty_queues(run: Run) -> None:
    """Nothing left by an earlier row: a burst cut short by its deadline leaves messages queued and held."""
    run.redis(15).delete("celery", "sms", "unacked", "unacked_index")
    run.redis(1).flushdb()  # step 4's "already sent" markers
    run.gateway_at(DELIVERY_LATENCY)


def paced(run: Run, producer, options: list[str], concurrency: int) -> dict:
    """On an empty queue, SMS offered at a steady rate: each timed from .delay() to the gateway's delivery."""
    empty_queues(run)
    worker = run.worker(STEPS[4], "mycelery.main", *options)
    try:
        worker.wait_for(" ready.", timeout=90)
        count = run.plan.paced_messages
        baseline = run.gateway.control()["delivered"]
        answer = producer.ask(
            {"op": "enqueue", "first": run.numbers(count), "count": count, "rate": OFFERED_PER_S}
        )
        slowest = min(concurrency / DELIVERY_LATENCY, OFFERED_PER_S)
        run.wait_delivered(baseline, count, timeout=max(20, 2 * count / slowest))
    finally:
        worker.stop()
    enqueued = dict(answer["enqueued"])
    latencies = [m["delivered_at"] - enqueued[m["to"]] for m in run.gateway.inbox() if m["to"] in enqueued]
    if not latencies:
        # Nothing reached the phone: a broken run, not a figure. Say why, with the worker's words.
        raise RuntimeError(
            f"the worker {' '.join(options)} delivered no SMS; its log:\n{worker.output[-4000:]}"
        )
    return {"paced_sent": count, **stats.summarise(latencies, answer["elapsed"])}


def load_queue(run: Run, producer, count: int) -> list[str]:
    """``count`` SMS queued for step 4's worker (none running), to numbers nobody has used."""
    empty_queues(run)
    first = run.numbers(count)
    producer.ask({"op": "enqueue", "first": first, "count": count, "rate": 0})
    return [nth_mobile(first + i) for i in range(count)]


def deliver_with(run: Run, producer, ceiling_per_s: float, pool: str, concurrency: int, *extra: str) -> dict:
    options = [*without_pool(STEPS[4]), "-P", pool, "-c", str(concurrency), *extra]
    steady = paced(run, producer, options, concurrency)
    # The burst: enough for the plan's seconds of work at the gateway's own ceiling, loaded before the
    # worker starts; measured until delivered or the deadline, whichever comes first.
    mobiles = load_queue(run, producer, max(concurrency, round(ceiling_per_s * run.plan.burst_work_seconds)))
    burst = drain(
        run, lambda: run.worker(STEPS[4], "mycelery.main", *options), mobiles, run.plan.burst_seconds
    )
    row = {"pool": pool, "concurrency": concurrency, "options": " ".join(extra), **burst,
           "ceiling_per_s": ceiling_per_s, "of_ceiling": stats.ratio(burst["sms_per_s"], ceiling_per_s),
           "offered_per_s": OFFERED_PER_S, "paced_sent": steady["paced_sent"], "paced_delivered": steady["count"],
           "latency_p50_ms": steady["p50_ms"], "latency_p99_ms": steady["p99_ms"]}  # fmt: skip
    log(
        f"delivery {pool} -c {concurrency} {row['options']}: {report.fmt_num(row['sms_per_s'], 1)} SMS/s "
        f"({row['delivered']}/{row['sent']}), paced {steady['count']}/{steady['paced_sent']}, "
        f"p50 {report.fmt_ms(steady['p50_ms'])}, p99 {report.fmt_ms(steady['p99_ms'])}"
    )
    return row


def delivery(run: Run) -> dict:
    rows_to_run = [*run.plan.delivery_pools, *run.plan.gevent_variants]
    ceilings = {c: ceiling(run, c) for c in sorted({row[1] for row in rows_to_run})}
    rows = []
    producer = run.producer(STEPS[4])
    try:
        for pool, concurrency, *extra in rows_to_run:
            rows.append(
                deliver_with(run, producer, ceilings[concurrency]["per_s"], pool, concurrency, *extra)
            )
    finally:
        producer.stop()
    return {"ceilings": list(ceilings.values()), "pools": rows, "gateway_latency_s": DELIVERY_LATENCY}
