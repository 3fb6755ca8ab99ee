"""The producer side of ``make bench``: a process that calls ``.delay()`` the way the view does.

``workshop.bench`` starts it inside a step folder (so ``mycelery`` is the step's own) and sends it one
JSON command a line on stdin; it answers each with one line, "ANSWER " and JSON, and exits at end of input. One
process serves a whole phase, so Django and Celery load once, not once a measurement.

    {"op": "delay", "first": 0, "count": 2000, "warmup": 100}   time each send_sms.delay(...) alone
    {"op": "enqueue", "first": 0, "count": 100, "rate": 50}    send_sms.delay at a fixed pace (0: at once)
"""

from __future__ import annotations

import inspect
import json
import os
import sys
import time


def nth_mobile(n: int) -> str:
    """The n-th test number: distinct per message, and a valid mainland number for step 4's check."""
    return f"13{n % 10**9:09d}"


CODE = "123456"


def view_calls(task):
    """What the step's view does for one number, untimed, then the ``.delay()`` call it makes, timed.

    Step 4's task takes a reference to the number and the code, which the view keeps in Redis; the
    earlier steps' task takes the number and the code themselves.
    """
    from django_redis import get_redis_connection

    from mycelery.sms import constants

    redis = get_redis_connection("sms_code")
    takes_ref = "ref" in inspect.signature(task.run).parameters

    def remember(number):
        redis.setex(f"sms_{number}", constants.SMS_EXPIRE_TIME, CODE)
        if takes_ref:
            redis.setex(f"sms_send_ref{number}", constants.SMS_EXPIRE_TIME, number)

    if takes_ref:
        return remember, lambda number: task.delay(f"ref{number}")
    return remember, lambda number: task.delay(mobile=number, sms_code=CODE)


def delay_cost(task, remember, call, first: int, count: int, warmup: int) -> dict:
    for i in range(warmup):
        remember(nth_mobile(first + i))
        call(nth_mobile(first + i))
    durations = []
    clock = time.perf_counter
    for i in range(warmup, warmup + count):
        number = nth_mobile(first + i)
        remember(number)
        started = clock()
        call(number)
        durations.append(clock() - started)
    return {"durations": durations}


def enqueue(remember, call, first: int, count: int, rate: float) -> dict:
    sent = []
    started = time.monotonic()
    for i in range(count):
        if rate:
            # Fixed pace: message i leaves at i/rate, however long the earlier ones took.
            wait = started + i / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        number = nth_mobile(first + i)
        sent.append([number, time.time()])
        remember(number)
        call(number)
    return {"enqueued": sent, "elapsed": time.monotonic() - started}


def main() -> int:
    # Answers go to the real stdout; anything a library prints goes to stderr instead.
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    from mycelery.sms.tasks import send_sms as task

    remember, call = view_calls(task)

    for line in sys.stdin:
        command = json.loads(line)
        op = command["op"]
        if op == "ping":
            answer = {"ok": True}
        elif op == "delay":
            answer = delay_cost(
                task, remember, call, command["first"], command["count"], command.get("warmup", 0)
            )
        elif op == "enqueue":
            answer = enqueue(remember, call, command["first"], command["count"], command.get("rate", 0))
        else:
            answer = {"error": f"unknown op {op!r}"}
        answers.write("ANSWER " + json.dumps(answer) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
