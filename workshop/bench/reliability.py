"""What step 4's reliability costs: the same job (N SMS through the gateway at 0.2 s, one worker with the
step 4 Procfile's pool) with Celery's defaults, with step 4's two settings, and as step 4 runs it.

1. Celery's defaults: ``jobs.send_sms`` as a plain Celery task, acknowledged on receipt, prefetch x4;
2. the same task with step 4's settings: ``task_acks_late`` and prefetch multiplier 1;
3. step 4 itself: its task reads the number and code from Redis, takes the send claim, logs (masked).

Each: the queue is loaded first, then the worker starts; SMS/s from the gateway's first receipt to its
last delivery, and the worker's CPU per SMS.
"""

from __future__ import annotations

import sys

from workshop.steps import ROOT

from . import stats
from .endpoint import cpu_seconds
from .peer_apps import CELERY
from .plan import DELIVERY_LATENCY
from .producer import nth_mobile
from .run import STEPS, Run, log
from .workers import worker_options


def drain(run: Run, worker_args: list[str], cwd, env: dict, mobiles: list[str], what: str) -> dict:
    """Start the worker on a loaded queue; measure until every SMS is delivered or the deadline passes."""
    baseline = run.gateway.control()["delivered"]
    worker = run.process(what, worker_args, cwd, env).start()
    try:
        worker.wait_for(" ready.", timeout=90)
        cpu_before = cpu_seconds(worker.pid)
        run.wait_delivered(baseline, len(mobiles), timeout=30 + len(mobiles) * DELIVERY_LATENCY / 10)
        cpu = cpu_seconds(worker.pid) - cpu_before
    finally:
        worker.stop()
    wanted = set(mobiles)
    inbox = [m for m in run.gateway.inbox() if m["to"] in wanted]
    received, delivered = [m["received_at"] for m in inbox], [m["delivered_at"] for m in inbox]
    sms_per_s = stats.rate(len(inbox), max(delivered) - min(received)) if inbox else None
    return {"sms_per_s": sms_per_s, "sent": len(mobiles), "delivered": len({m["to"] for m in inbox}),
            "duplicates": len(inbox) - len({m["to"] for m in inbox}),
            "cpu_ms_per_sms": 1000 * cpu / len(inbox) if inbox else None}  # fmt: skip


def reliability(run: Run) -> list[dict]:
    count = run.plan.peer_sms
    pool = [w for w in worker_options(STEPS[4]) if w.startswith(("--pool", "--concurrency", "-P", "-c"))]
    broker = f"{run.redis_url}/6"
    rows = []
    for label, acks_late, prefetch in (
        ("Celery's defaults", "0", "4"),
        ("+ acks_late, prefetch 1", "1", "1"),
    ):
        run.redis(6).flushdb()
        run.gateway_at(DELIVERY_LATENCY)
        first = run.numbers(count)
        env = run.env(PEER_BROKER_URL=broker, PEER_CELERY_ACKS_LATE=acks_late)
        producer = [sys.executable, "-m", "workshop.bench.peer_producer", "--peer", "celery", "--job", "sms",
                    "--count", str(count), "--first", str(first)]  # fmt: skip
        run.process("reliability-producer", producer, ROOT, env).start().wait_for("ANSWER ", timeout=120)
        args = [*CELERY, *pool, f"--prefetch-multiplier={prefetch}", "--loglevel=info"]
        result = drain(run, args, ROOT, env, [nth_mobile(first + i) for i in range(count)], "reliability")
        rows.append({"label": label, "settings": " ".join(pool) + f", acks_late {acks_late == '1'}, prefetch "
                     f"×{prefetch}", "baseline": acks_late == "0", **result})  # fmt: skip
    run.redis(15).delete("celery", "sms", "unacked", "unacked_index")
    run.redis(1).flushdb()
    run.gateway_at(DELIVERY_LATENCY)
    first = run.numbers(count)
    producer = run.producer(STEPS[4])
    try:
        producer.ask({"op": "enqueue", "first": first, "count": count, "rate": 0})
    finally:
        producer.stop()
    args = [sys.executable, "-m", "celery", "-A", "mycelery.main", "worker", *worker_options(STEPS[4]),
            "--loglevel=info"]  # fmt: skip
    result = drain(run, args, STEPS[4], run.env(), [nth_mobile(first + i) for i in range(count)], "step4")
    rows.append(
        {
            "label": "step 4 (its task: the claim, the reference, masked logs)",
            "settings": " ".join(pool) + ", acks_late True, prefetch ×1, the send claim",
            **result,
        }
    )
    for row in rows:
        log(
            f"reliability, {row['label']}: {row['sms_per_s'] or 0:.1f} SMS/s, "
            f"CPU {row['cpu_ms_per_sms'] or 0:.2f} ms/SMS, {row['delivered']}/{row['sent']}, "
            f"duplicates {row['duplicates']}"
        )
    return rows
