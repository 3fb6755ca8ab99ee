"""The peers of the bench's "peers" scenario: Celery, RQ, Dramatiq and Huey, each wrapping the same jobs
(``workshop.bench.jobs``), and the floor, raw redis-py with no queue library at all.

The broker is ``PEER_BROKER_URL`` (a redis:// or amqp:// URL). A library that is not installed leaves its
peer as None; the bench then says "not installed". How each worker is started, with the documentation
that makes it that project's best setting, is ``WORKERS`` below; ``workshop.bench.peers`` runs them.

    python -m workshop.bench.peer_apps floor COUNT     # the floor's consumer: BRPOP COUNT messages
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from workshop.bench import jobs

BROKER_URL = os.environ.get("PEER_BROKER_URL", "redis://127.0.0.1:6379/5")
ON_RABBITMQ = BROKER_URL.startswith(("amqp://", "amqps://", "pyamqp://"))
# Celery's "millions of tasks a minute" settings (docs/userguide/optimizing.rst), for the row that checks
# the claim on RabbitMQ. The producer needs them too: the delivery mode is set when a message is sent.
CELERY_TUNED = os.environ.get("PEER_CELERY_TUNED") == "1"
CELERY_TUNED_PREFETCH = 128
FLOOR_KEY = "floor"
CORES = os.cpu_count() or 1

# --- Celery -----------------------------------------------------------------------------------------------
try:
    from celery import Celery
except ImportError:
    celery_app = None
else:
    celery_app = Celery("peers", broker=BROKER_URL)
    celery_app.conf.update(
        broker_url=BROKER_URL,
        # Nothing reads a result. Celery's Tasks guide, "Performance and Strategies": "If you don't care
        # about the results of a task, be sure to set the ignore_result option".
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    if os.environ.get("PEER_CELERY_ACKS_LATE") == "1":
        # Step 4's setting, for workshop.bench.reliability: acknowledged after the task ran.
        celery_app.conf.task_acks_late = True
    if CELERY_TUNED:
        celery_app.conf.update(
            # Optimizing guide, "Prefetch Limits": many short tasks want a large multiplier, "say 64, or 128".
            worker_prefetch_multiplier=CELERY_TUNED_PREFETCH,
            # Early acknowledgement, Celery's default ("Reserve one task at a time"), said out loud.
            task_acks_late=False,
            # Optimizing guide, "Using Transient Queues": messages not written to disk.
            task_default_delivery_mode="transient",
        )
    celery_noop = celery_app.task(jobs.noop, name="peer.noop")
    celery_sms = celery_app.task(jobs.send_sms, name="peer.send_sms")
    celery_mark = celery_app.task(jobs.mark, name="peer.mark")

# --- Dramatiq ---------------------------------------------------------------------------------------------
try:
    import dramatiq

    if ON_RABBITMQ:
        from dramatiq.brokers.rabbitmq import RabbitmqBroker as DramatiqBroker
    else:
        from dramatiq.brokers.redis import RedisBroker as DramatiqBroker
except ImportError:
    dramatiq_broker = None
else:
    # Its default middleware (retries, time limits...) as shipped: that is Dramatiq as people run it.
    # The vhost "/" is "//" at the end of a URL for kombu, "/%2F" for pika.
    url = BROKER_URL[:-1] + "%2F" if ON_RABBITMQ and BROKER_URL.endswith("//") else BROKER_URL
    dramatiq_broker = DramatiqBroker(url=url)
    dramatiq.set_broker(dramatiq_broker)
    dramatiq_noop = dramatiq.actor(jobs.noop, actor_name="noop", broker=dramatiq_broker)
    dramatiq_sms = dramatiq.actor(jobs.send_sms, actor_name="send_sms", broker=dramatiq_broker)
    dramatiq_mark = dramatiq.actor(jobs.mark, actor_name="mark", broker=dramatiq_broker)

# --- Huey (Redis only) ------------------------------------------------------------------------------------
try:
    from huey import RedisHuey
except ImportError:
    huey = None
else:
    # blocking=True (the default, said out loud): workers wait in BRPOP, so the polling delay (-d) plays no
    # part. results=False: nothing reads them, as task_ignore_result for Celery.
    huey = None if ON_RABBITMQ else RedisHuey("peers", url=BROKER_URL, blocking=True, results=False)
    if huey is not None:
        huey_noop = huey.task(name="noop")(jobs.noop)
        huey_sms = huey.task(name="send_sms")(jobs.send_sms)
        huey_mark = huey.task(name="mark")(jobs.mark)

# --- RQ ---------------------------------------------------------------------------------------------------
# RQ enqueues a function by its import path (workshop.bench.jobs.send_sms): it needs no task definitions.
try:
    from rq.worker import Worker as _RQWorker
except ImportError:
    RQWorker = None
else:

    class RQWorker(_RQWorker):
        """RQ's default Worker (a fork per job), loaded from this module, so that the jobs' modules
        (requests, the gateway's helpers) are imported once, before the forks: RQ's workers.md,
        "Performance Notes". Without it every job imports them again, and 50 workers sent 13 SMS/s."""


RQ_QUEUE = "default"
# RQ keeps a job's result 500 s unless told; result_ttl=0 keeps none (RQ's docs, "Results").
RQ_RESULT_TTL = 0

PY = sys.executable
BIN = Path(PY).parent  # the libraries' own commands, installed beside this Python
N = "{concurrency}"  # the plan's (peers.Peers.command fills it in)
CELERY = [PY, "-m", "celery", "-A", "workshop.bench.peer_apps:celery_app", "worker", "--loglevel=warning",
          "--without-gossip", "--without-mingle", "--without-heartbeat"]  # fmt: skip
# Huey's troubleshooting page: greenlet workers need gevent's monkey-patch first thing in the entry point.
HUEY_GEVENT = [PY, "-c", "from gevent import monkey; monkey.patch_all(); import sys; "
               "from huey.bin.huey_consumer import consumer_main; sys.exit(consumer_main())"]  # fmt: skip
HUEY = [str(BIN / "huey_consumer")]
DRAMATIQ_APP = "workshop.bench.peer_apps:dramatiq_broker"
RQ_POOL = [str(BIN / "rq"), "worker-pool", "--logging-level", "WARNING"]

# (peer, job) -> the worker's command line, the broker URL appended where a peer takes it as an argument.
# Each line's comment is the documentation that makes it that project's choice for this kind of job.
WORKERS = {
    # Celery's defaults (prefork, -c the number of CPUs, prefetch x4): its docs name no other pool for short
    # tasks; the Optimizing guide's settings have a row of their own, on RabbitMQ, where the claim is made.
    ("celery", "noop"): [*CELERY, "-P", "prefork", "-c", str(CORES)],
    # Celery's "Concurrency with gevent" page: -P gevent -c N for I/O-bound tasks, green threads by hundreds.
    ("celery", "sms"): [*CELERY, "-P", "gevent", "-c", N],
    # The Optimizing guide's settings (prefetch 128, early acks, transient messages, no results) in one
    # process: the README's claim is "a single Celery process can process millions of tasks a minute".
    # Celery's threads pool (since 5.0): no monkey-patching; the pool step 4's Procfile runs.
    ("celery-threads", "sms"): [*CELERY, "-P", "threads", "-c", N],
    ("celery-tuned", "noop"): [*CELERY, "-P", "solo", f"--prefetch-multiplier={CELERY_TUNED_PREFETCH}"],
    # RQ's workers.md: one job at a time per worker, "if you want to perform jobs concurrently, simply
    # start more workers" (rq worker-pool, since 1.14); benchmark.md: SimpleWorker (no fork per job) only
    # for jobs of single-digit milliseconds, so the no-op gets it and the SMS keeps the forking Worker, with
    # the modules preloaded (RQWorker above).
    ("rq", "noop"): [*RQ_POOL, "-n", str(CORES), "-w", "rq.worker.SimpleWorker"],
    ("rq", "sms"): [*RQ_POOL, "-n", N, "-w", "workshop.bench.peer_apps.RQWorker"],
    # Dramatiq's defaults: one process a CPU, 8 threads each.
    ("dramatiq", "noop"): [str(BIN / "dramatiq"), DRAMATIQ_APP, "-p", str(CORES), "-t", "8"],
    # Dramatiq's "Advanced" page, "Using gevent": dramatiq-gevent for tasks that spend their time in network IO.
    ("dramatiq", "sms"): [str(BIN / "dramatiq-gevent"), DRAMATIQ_APP, "-p", "1", "-t", N],
    # Huey's consumer page: "CPU heavy loads: use process", as many as CPU cores; -n: no periodic tasks.
    ("huey", "noop"): [*HUEY, "workshop.bench.peer_apps.huey", "-k", "process", "-w", str(CORES), "-n", "-q"],
    # Huey's consumer page: "IO heavy loads: use greenlet ... you can easily run tens or hundreds of them".
    ("huey", "sms"): [*HUEY_GEVENT, "workshop.bench.peer_apps.huey", "-k", "greenlet", "-w", N, "-n", "-q"],
}


def senders(peer: str) -> dict:
    """How a producer enqueues for this peer: ``{"noop": f(), "sms": f(mobile), "mark": f(name), "close": f()}``,
    each the peer's ordinary call (``.delay()``, ``.send()``, ``enqueue()``, calling the task)."""
    if peer in ("celery", "celery-threads", "celery-tuned"):
        send = {"noop": celery_noop.delay, "sms": celery_sms.delay, "mark": celery_mark.delay}
    elif peer == "dramatiq":
        send = {"noop": dramatiq_noop.send, "sms": dramatiq_sms.send, "mark": dramatiq_mark.send,
                "close": dramatiq_broker.close}  # fmt: skip
    elif peer == "huey":
        send = {"noop": huey_noop, "sms": huey_sms, "mark": huey_mark}
    elif peer == "rq":
        from redis import Redis
        from rq import Queue

        queue = Queue(RQ_QUEUE, connection=Redis.from_url(BROKER_URL))
        send = {
            "noop": lambda: queue.enqueue(jobs.noop, result_ttl=RQ_RESULT_TTL),
            "sms": lambda mobile: queue.enqueue(jobs.send_sms, mobile, result_ttl=RQ_RESULT_TTL),
            "mark": lambda name: queue.enqueue(jobs.mark, name, result_ttl=RQ_RESULT_TTL),
        }
    else:
        raise ValueError(f"unknown peer {peer!r}")
    return {"close": lambda: None, **send}


def floor_consume(count: int, timeout: float) -> dict:
    """The floor's worker: BRPOP one message at a time, as a queue's consumer does, ``count`` of them."""
    import redis

    client = redis.Redis.from_url(BROKER_URL)
    first = last = None
    taken = 0
    deadline = time.monotonic() + timeout
    while taken < count and time.monotonic() < deadline:
        if client.brpop(FLOOR_KEY, timeout=1) is None:
            continue
        last = time.perf_counter()
        first = first or last
        taken += 1
    return {"taken": taken, "elapsed": (last - first) if taken > 1 else None}


if __name__ == "__main__":
    if sys.argv[1:2] == ["floor"]:
        print("ANSWER " + json.dumps(floor_consume(int(sys.argv[2]), float(sys.argv[3]))), flush=True)
    else:
        sys.exit(__doc__)
