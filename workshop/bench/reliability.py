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

from .delivery import drain, load_queue
from .peer_apps import CELERY
from .plan import DELIVERY_LATENCY
from .producer import nth_mobile
from .run import STEPS, Run, log
from .workers import split_pool, worker_options

APP = CELERY[CELERY.index("-A") + 1]  # the peers' Celery app: jobs.send_sms as a plain task
LABELS = ("Celery's defaults", "+ acks_late, prefetch ×1", "step 4's task (reference, claim, masked logs)")


def reliability(run: Run) -> list[dict]:
    count = run.plan.peer_sms
    # The step 4 Procfile's pool and concurrency, for all three rows.
    pool = split_pool(STEPS[4])[0]
    rows = []
    for label, acks_late, prefetch in ((LABELS[0], "0", "4"), (LABELS[1], "1", "1")):
        broker = f"{run.redis_url}/6"
        env = {"PEER_BROKER_URL": broker, "CELERY_BROKER_URL": broker, "PEER_CELERY_ACKS_LATE": acks_late}
        run.redis(6).flushdb()
        run.gateway_at(DELIVERY_LATENCY)
        first = run.numbers(count)
        producer = run.process("reliability-producer", [sys.executable, "-m", "workshop.bench.peer_producer",
                               "--peer", "celery", "--job", "sms", "--count", str(count), "--first", str(first)],
                               ROOT, run.env(**env))  # fmt: skip
        run.answer(producer.start(), timeout=120, what="the producer")
        mobiles = [nth_mobile(first + i) for i in range(count)]
        start = lambda env=env, prefetch=prefetch: run.worker(  # noqa: E731
            ROOT, APP, *pool, f"--prefetch-multiplier={prefetch}", **env
        )
        rows.append({"label": label, "settings": f"{' '.join(pool)}, acks_late {acks_late == '1'}, prefetch ×{prefetch}",
                     "baseline": acks_late == "0", **drain(run, start, mobiles, 30 + count / 20)})  # fmt: skip
    producer = run.producer(STEPS[4])
    try:
        mobiles = load_queue(run, producer, count)
    finally:
        producer.stop()
    start = lambda: run.worker(STEPS[4], "mycelery.main", *worker_options(STEPS[4]))  # noqa: E731
    rows.append({"label": LABELS[2], "settings": f"{' '.join(pool)}, acks_late True, prefetch ×1, the send claim",
                 **drain(run, start, mobiles, 30 + count / 20)})  # fmt: skip
    for row in rows:
        log(f"reliability, {row['label']}: {report_rate(row)}")
    return rows


def report_rate(row: dict) -> str:
    return (f"{row['sms_per_s'] or 0:.1f} SMS/s, CPU {row['cpu_ms_per_sms'] or 0:.2f} ms/SMS, "
            f"{row['delivered']}/{row['sent']}, duplicates {row['duplicates']}")  # fmt: skip
