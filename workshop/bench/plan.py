"""How much load each scenario of ``make bench`` offers: the full run, the quick look, and the smoke run.

Every loop of the benchmark stops at a count or a deadline taken from here.
"""

from __future__ import annotations

from dataclasses import dataclass

# Open loop: requests leave on schedule at these rates whether or not earlier ones have answered.
OPEN_RATES = (20, 50)
# The slow provider the lesson is about: step 1 waits for it inside the request.
OPEN_GATEWAY_LATENCY = 2.0
# Delivery: the provider's latency while workers send, and the pools tried.
DELIVERY_LATENCY = 0.2
DELIVERY_POOLS = (("prefork", 2), ("threads", 20), ("threads", 50), ("threads", 100),
                  ("gevent", 20), ("gevent", 50), ("gevent", 100))  # fmt: skip
# The gevent anomaly, one setting at a time (step 4 runs acks_late with prefetch multiplier 1).
GEVENT_VARIANTS = (
    ("gevent", 20, "--prefetch-multiplier=2"),
    ("gevent", 20, "--disable-prefetch"),
)


@dataclass(frozen=True)
class Plan:
    mode: str
    repeats: int  # rounds of the interleaved open-loop measurement
    open_seconds: dict  # rate -> seconds a point lasts (step 1 needs >= 200 samples for its p99)
    capacity_requests: int  # closed loop, concurrency 10, steps 3 and 4
    capacity_seconds: float
    delay_calls: int
    delivery_pools: tuple
    gevent_variants: tuple
    burst_work_seconds: float  # the burst: this many seconds of work at the gateway's ceiling
    burst_seconds: float  # its deadline: a slow pool is measured on what it delivered by then
    paced_messages: int
    ceiling_seconds: float  # the gateway's own ceiling, per concurrency
    peer_noop: int  # no-op tasks per peer
    peer_sms: int  # SMS per peer
    peer_concurrency: int  # SMS at once, every peer (the same as step 4's Procfile in a real run)
    rabbitmq: bool  # peers on RabbitMQ too (where the machine has it)


FULL = Plan("full", repeats=3, open_seconds={20: 11, 50: 5}, capacity_requests=3000, capacity_seconds=30,
            delay_calls=3000, delivery_pools=DELIVERY_POOLS, gevent_variants=GEVENT_VARIANTS,
            burst_work_seconds=5, burst_seconds=15, paced_messages=200, ceiling_seconds=5, peer_noop=5000,
            peer_sms=1000, peer_concurrency=50, rabbitmq=True)  # fmt: skip
# One round and one of each kind of pool: a rough picture in under 2 minutes, never the page's figures.
QUICK = Plan("quick", repeats=1, open_seconds={20: 2.5, 50: 1.5}, capacity_requests=300, capacity_seconds=8,
             delay_calls=300, delivery_pools=(("prefork", 2), ("threads", 50), ("gevent", 50)),
             gevent_variants=(), burst_work_seconds=1.5, burst_seconds=4, paced_messages=30, ceiling_seconds=1.5,
             peer_noop=300, peer_sms=100, peer_concurrency=50, rabbitmq=False)  # fmt: skip
# For the test suite: every scenario and every output, with counts too small to mean anything.
SMOKE = Plan("smoke", repeats=2, open_seconds={20: 0.5, 50: 0.3}, capacity_requests=30, capacity_seconds=5,
             delay_calls=20, delivery_pools=(("threads", 10),), gevent_variants=(), burst_work_seconds=0.3,
             burst_seconds=4, paced_messages=5, ceiling_seconds=0.5, peer_noop=20, peer_sms=10,
             peer_concurrency=4, rabbitmq=False)  # fmt: skip
PLANS = {plan.mode: plan for plan in (FULL, QUICK, SMOKE)}
