"""The hostile matrix: what a bad day in production does to step 4 (faults), under what an attacker or a
crowd sends (loads), through a threaded production server. After each cell the same invariants:

- every accepted request gives exactly one SMS (at most one where the provider may have it already:
  the documented choice for an ambiguous send; none where the provider refuses);
- no 5xx but the documented 503s, and every request answered within 2 s;
- the provider never receives a code that is no longer current;
- no code, full number or signature in any log line, event, `inspect` reply, Flower's API, the result
  backend or the broker's stored messages.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass

import pytest
import redis

from tests.brokers import stored
from tests.harness import NO_HANG
from workshop.gateway import leaks

from .stack import LOADS, READ_TIMEOUT, WORKER_CONCURRENCY, burst, flower_api, inspect_replies

EXACT, AT_MOST, NONE = "exactly one SMS", "at most one SMS", "no SMS"
# The read timeout of the crash cells' worker: longer than the gateway ever holds an SMS there.
HELD = 30.0


@dataclass
class Fault:
    """What goes wrong, and what may then be promised."""

    sms: str = EXACT
    may_503: bool = False  # Redis or the broker unreachable: "try again shortly"
    gateway: dict | None = None  # the gateway's settings for the cell
    observe: bool = False  # read inspect and Flower while SMS are in flight

    def during(self, stack, load):
        stack.use_worker(READ_TIMEOUT)
        if self.gateway:
            stack.gateway.configure(**self.gateway)
        return load(stack)


class WorkerStopped(Fault):
    """The worker gets a signal while the provider holds its SMS: SIGTERM (warm shutdown, the SMS in
    flight is finished) or SIGKILL (a crash: the message comes back, the claim stops a second call)."""

    def __init__(self, signum):
        super().__init__(observe=True)
        self.signum = signum

    def during(self, stack, load):
        # A worker that waits for the held provider as long as it takes (the stack's gives up after
        # READ_TIMEOUT): the signal must find the SMS in flight.
        stack.use_worker(HELD)
        stack.gateway.configure(hold=True)
        answers = load(stack)
        # Every task the worker runs is at the provider (its claim taken, its request sent): a crash
        # between the two, a few microseconds, would lose that SMS (at most once, as "answer lost").
        accepted = sum(a.status == 200 and a.path == "/users/sms/" for a in answers)
        stack.gateway.wait_until_held(min(accepted, WORKER_CONCURRENCY), timeout=10)
        self.seen = observe(stack)
        worker = stack.worker
        if self.signum == signal.SIGTERM:
            worker.signal(signal.SIGTERM, group=False)
            threading.Timer(0.3, stack.gateway.release).start()
            worker.stop(timeout=20, group=False)
            stack.start_worker(HELD)
        else:
            worker.kill()
            stack.gateway.release()
            stack.hand_out_again()
            stack.start_worker(HELD)
        return answers


class RedisKilled(Fault):
    """kill -9 both Redis servers (or Redis and RabbitMQ) with messages queued and no worker running; restart
    them, then the worker. The append-only file (appendfsync everysec) brings back what was written a
    second before; RabbitMQ writes a durable queue's persistent messages to disk as they come."""

    def __init__(self):
        super().__init__(may_503=True)

    def during(self, stack, load):
        stack.use_worker(READ_TIMEOUT)
        stack.worker.stop()
        answers = load(stack)
        time.sleep(1.2)  # everysec: what was written a second ago is on disk
        for server in (stack.services.redis, stack.services.broker):
            server.kill()
        answers += [stack.send("13600136000", source="127.0.5.1")]  # Redis down: a quick 503
        for server in (stack.services.redis, stack.services.broker):
            server.start()
        stack.start_worker(READ_TIMEOUT)
        return answers


class RedisPaused(Fault):
    """The cache's Redis stops answering (CLIENT PAUSE) during the load: overloaded, or cut off."""

    def __init__(self):
        super().__init__(may_503=True)

    def during(self, stack, load):
        pauser = redis.Redis.from_url(stack.services.redis_url)
        pauser.execute_command("CLIENT", "PAUSE", 1500, "ALL")
        try:
            answers = load(stack)
        finally:
            pauser.execute_command("CLIENT", "UNPAUSE")
            pauser.close()
        # Refused ones may still hold their interval (Redis failed in the middle of the request, the
        # interval was taken and could not be given back): new numbers show the service is back.
        return answers + [stack.send(f"1350013500{i}", source="127.0.5.3") for i in range(3)]


class BrokerDown(Fault):
    """The broker is gone when the view publishes: 503, and the number is free to try again."""

    def __init__(self):
        super().__init__(may_503=True)

    def during(self, stack, load):
        stack.services.broker.kill()
        try:
            answers = load(stack)
        finally:
            stack.services.broker.start()
        return answers + ask_again(stack, answers)


FAULTS = {
    "none": Fault(),
    "provider slower than the read timeout": Fault(sms=AT_MOST, gateway={"latency": 2 * READ_TIMEOUT}),
    "sent, answer lost": Fault(sms=AT_MOST, gateway={"fail_rate": 1.0, "fail_mode": "answer_lost"}),
    "5xx": Fault(gateway={"fail_next": 3, "fail_mode": "http503"}, observe=True),
    "provider busy": Fault(gateway={"fail_next": 3, "fail_mode": "111120"}),
    # Ronglian's own caps (too frequent; the number's daily limit; the code's daily limit), bad credentials.
    **{
        f"refused {code}": Fault(sms=NONE, gateway={"fail_rate": 1.0, "fail_mode": code})
        for code in ("160039", "160038", "160040", "111109")
    },
    "worker SIGTERM mid-send": WorkerStopped(signal.SIGTERM),
    "worker SIGKILL mid-send": WorkerStopped(signal.SIGKILL),
    "Redis kill -9, messages queued": RedisKilled(),
    "Redis paused": RedisPaused(),
    "broker down at publish": BrokerDown(),
}


def ask_again(stack, answers):
    """The numbers refused with a 503, asked for again once the broker is back: a 503 gave everything
    back, so they get a code at once, with no interval to wait out."""
    sends = [a for a in answers if a.path == "/users/sms/"]
    refused = sorted(
        {a.mobile for a in sends if a.status == 503} - {a.mobile for a in sends if a.status == 200}
    )
    assert refused, "the broker was down: some sends should have been refused"
    again = [stack.send(mobile, source="127.0.5.2") for mobile in refused[:5]]
    assert [a.status for a in again] == [200] * len(again), [a.body for a in again]
    return again


def observe(stack) -> str:
    """What monitoring shows while SMS are in flight: inspect's replies, Flower's API, the broker."""
    return "\n".join([inspect_replies(), flower_api(stack), broker_stored(stack)])


def broker_stored(stack) -> str:
    queues = stack.services.queues()
    try:
        return queues.stored()
    finally:
        queues.close()


# Refusals differ only in their code: one of them meets every load, the others the burst.
ONE_LOAD = {"refused 160038", "refused 160040", "refused 111109"}
# Faults in the broker, or in how it hands a dead worker's messages out again: `make test` runs these
# cells on RabbitMQ too (BROKER=rabbitmq, marker "broker").
IN_THE_BROKER = {"worker SIGKILL mid-send", "Redis kill -9, messages queued", "broker down at publish"}
CELLS = [
    pytest.param(
        fault,
        load,
        id=f"{fault_name}-{load_name}",
        marks=[pytest.mark.broker] if fault_name in IN_THE_BROKER else [],
    )
    for fault_name, fault in FAULTS.items()
    for load_name, load in LOADS.items()
    if fault_name not in ONE_LOAD or load is burst
]


@pytest.mark.parametrize(("fault", "load"), CELLS)
def test_cell(stack, fault, load):
    """One cell of the matrix: the fault, the load, then every invariant."""
    stack.reset()
    fault.seen = ""

    answers = fault.during(stack, load)
    seen = fault.seen or (observe(stack) if fault.observe else "")
    stack.settle()

    sends = [a for a in answers if a.path == "/users/sms/"]
    accepted = Counter(a.mobile for a in sends if a.status == 200)
    inbox = stack.gateway.inbox()
    delivered = Counter(m["to"] for m in inbox)
    for mobile in accepted.keys() | delivered.keys():
        promised = {EXACT: accepted[mobile], AT_MOST: min(accepted[mobile], delivered[mobile]), NONE: 0}
        assert delivered[mobile] == promised[fault.sms], (
            f"{mobile}: {accepted[mobile]} accepted, {delivered[mobile]} delivered; expected {fault.sms}; "
            f"answers: {Counter(a.status for a in sends if a.mobile == mobile)}"
        )
    assert accepted, "no request was accepted: the cell tested nothing"

    allowed = {200, 429} | ({503} if fault.may_503 else set())  # every number the loads send is valid
    health_allowed = {200} | ({503} if fault.may_503 else set())
    for answer in answers:
        expected = allowed if answer.path == "/users/sms/" else health_allowed
        assert answer.status in expected, f"{answer.path} {answer.mobile}: {answer.status} {answer.body}"
        assert answer.elapsed < NO_HANG, f"{answer.path} took {answer.elapsed:.2f} s: {answer.body}"

    cache = stack.cache_client()
    current = {key.removeprefix("sms_"): cache.get(key) for key in cache.keys("sms_1*")}
    cache.close()
    stale = [m for m in inbox if str(m["datas"][0]) != current.get(m["to"])]
    assert not stale, f"the provider received codes that were no longer current: {stale}"

    codes = {str(m["datas"][0]) for m in inbox} | {c for c in current.values() if c}
    mobiles = {a.mobile for a in sends if a.mobile}
    places = {
        "logs": "".join(process.output for process in stack.processes),
        "events": repr(stack.events),
        "inspect, Flower, broker (in flight)": seen,
        "the broker's stored messages": broker_stored(stack),
        "the result backend": stored(f"{stack.services.redis_url}/14"),
    }
    for place, text in places.items():
        assert not leaks(text, codes, mobiles), f"{place} show {leaks(text, codes, mobiles)}"
