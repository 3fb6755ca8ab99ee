"""How each figure was measured, written into the run's results beside the figures themselves."""

from __future__ import annotations

from .endpoint import CAPACITY_CONCURRENCY, GUNICORN, WORKERS
from .plan import DELIVERY_LATENCY, OPEN_GATEWAY_LATENCY
from .run import LIFTED_LIMITS, Run


def method(run: Run, results: dict) -> list[str]:
    plan, said = run.plan, []
    addresses = (
        "each request comes from its own 127.x.y.z address, like a new user, so step 4 keeps its per-IP and "
        "per-number limits"
        if run.many_addresses
        else "every request comes from 127.0.0.1 (this system has no other loopback address), so step 4 runs "
        "with " + " and ".join(f"`{k}={v}`" for k, v in LIFTED_LIMITS.items())
    )
    if "endpoint" in results:
        said += [
            f"Endpoint, open loop: requests leave on a fixed schedule ({', '.join(f'{r}/s' for r in plan.open_seconds)}"
            f" offered, for {', '.join(f'{s:g} s' for s in plan.open_seconds.values())}) whether or not earlier "
            "ones have answered, each on a new connection from a thread of its own; latency counts from the "
            f"scheduled time. Gateway at {OPEN_GATEWAY_LATENCY:g} s; {addresses}.",
            f"Interleaved: steps 1, 3 and 4 run side by side (each its own Redis; steps 3 and 4 with the "
            f"Procfile's worker draining the queue) and are measured 1, 3, 4 at each rate, in {plan.repeats} "
            "rounds; the tables give the median over rounds and the range.",
            f"gunicorn: {WORKERS} processes (2 × cores + 1); step 1 `{' '.join(GUNICORN[1])}` (a thread for "
            f"each request in flight: its best case), steps 3 and 4 `{' '.join(GUNICORN[4])}`. CPU per "
            "request: the user + system time of gunicorn's processes and of the step's own Redis over the point ÷ requests answered.",
            f"Capacity: closed loop, {CAPACITY_CONCURRENCY} requests in flight, each sent as soon as one "
            "answers; on 2 shared cores this saturates the CPU, so it is requests/s at saturation, and its "
            "latency is mostly queueing.",
        ]
    if "delay" in results:
        said.append(
            "`.delay()` alone: timed one call at a time in a process inside the step folder, no worker "
            "running, after 100 warm-up calls; what the view writes first is written too, untimed."
        )
    if "delivery" in results:
        said += [
            f"Gateway ceiling: c threads in one process, each sending the Ronglian request in a loop over "
            f"kept-alive connections for {plan.ceiling_seconds:g} s, gateway at {DELIVERY_LATENCY:g} s: what "
            "the gateway and the machine allow at that concurrency with no broker and no Celery.",
            "Delivery: one step 4 worker (the Procfile's options with its own `-P` and `-c`). First a paced run "
            "on an empty queue (request → phone, from `.delay()` to the gateway's `delivered_at`); then the burst: "
            f"as many SMS as the gateway's ceiling at that concurrency takes in {plan.burst_work_seconds:g} s, "
            "queued before the worker starts; SMS/s from the gateway's first receipt to its last delivery, within "
            f"{plan.burst_seconds:g} s. The reliability rows are measured the same way. The timeline counts the "
            "burst's deliveries by second.",
        ]
    return said
