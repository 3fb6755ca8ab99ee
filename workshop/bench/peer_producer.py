"""The producer of the peers scenario: one process that enqueues ``--count`` jobs of one kind for one peer
as fast as a loop can, times that loop, and prints one line, "ANSWER " and JSON, before it exits.

    python -m workshop.bench.peer_producer --peer dramatiq --job noop --count 5000
    python -m workshop.bench.peer_producer --peer rq --job sms --count 1000 --first 42
    python -m workshop.bench.peer_producer --peer floor --job noop --count 5000 --bytes 1200

The broker is ``PEER_BROKER_URL``. A no-op run puts a ``mark("start")`` before its jobs and a
``mark("end")`` after them, untimed: the worker's runs of them time the drain. An SMS run sends one
untimed no-op first, so that the timed loop does not pay for the connection. The floor is raw redis-py: one
LPUSH a message of ``--bytes`` bytes, one round trip each, as a queue library sends one message at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from workshop.bench.producer import nth_mobile

PEERS = ("celery", "celery-threads", "celery-tuned", "rq", "dramatiq", "huey", "floor")


def floor(count: int, size: int) -> float:
    import redis

    from workshop.bench.peer_apps import FLOOR_KEY

    client = redis.Redis.from_url(os.environ["PEER_BROKER_URL"])
    client.ping()
    payload = b"x" * size
    started = time.perf_counter()
    for _ in range(count):
        client.lpush(FLOOR_KEY, payload)
    return time.perf_counter() - started


def enqueue(peer: str, job: str, count: int, first: int) -> float:
    from workshop.bench.peer_apps import senders

    send = senders(peer)
    if job == "noop":
        send["mark"]("start")  # also the warm-up: the connection, the first declarations
        call = send["noop"]
        started = time.perf_counter()
        for _ in range(count):
            call()
        elapsed = time.perf_counter() - started
        send["mark"]("end")
    else:
        send["noop"]()  # warm-up, untimed
        call = send["sms"]
        mobiles = [nth_mobile(first + i) for i in range(count)]
        started = time.perf_counter()
        for mobile in mobiles:
            call(mobile)
        elapsed = time.perf_counter() - started
    send["close"]()
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--peer", choices=PEERS, required=True)
    parser.add_argument("--job", choices=["noop", "sms"], required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--first", type=int, default=0, help="the first mobile number's index (sms)")
    parser.add_argument("--bytes", type=int, default=1000, help="the floor's message size")
    args = parser.parse_args(argv)

    if args.peer == "floor":
        elapsed = floor(args.count, args.bytes)
    else:
        elapsed = enqueue(args.peer, args.job, args.count, args.first)
    answer = {"count": args.count, "elapsed": elapsed, "per_s": args.count / elapsed if elapsed > 0 else None}
    print("ANSWER " + json.dumps(answer), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
