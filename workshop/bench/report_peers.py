"""The peers scenario's table and notes (``workshop.bench.peers`` measures; this only renders)."""

from __future__ import annotations

from .report import fmt_num, fmt_ratio, table

NAMES = {"celery": "Celery", "celery-threads": "Celery, threads", "celery-tuned": "Celery, Optimizing guide", "rq": "RQ", "dramatiq": "Dramatiq",
         "huey": "Huey", "floor": "floor: redis-py"}  # fmt: skip
BROKERS = {"redis": "Redis", "rabbitmq": "RabbitMQ"}
CLAIM = ("A single Celery process can process millions of tasks a minute, with sub-millisecond round-trip "
         "latency (using RabbitMQ, py-librabbitmq, and optimized settings).")  # fmt: skip
CLAIM_PER_MINUTE = 1_000_000
# Why each peer lands where it does: what its own design says it does for every message.
DESIGN = {
    "celery": "Celery builds a message of protocol 2 (headers, properties, a JSON body: about {bytes} B "
    "for a no-op) and sends it through kombu. On Redis kombu emulates AMQP: one BRPOP a message, then the "
    "message kept in an `unacked` hash until acknowledged, so that it can be restored after a crash; each "
    "task goes through a Request, signals and the pool (pipes to child processes with prefork). All of that "
    "is paid per message: it weighs on a no-op task, hardly on an SMS that waits 0.2 s for the gateway.",
    "rq": "RQ saves each job as a Redis hash and moves it through registries as it runs, several round "
    "trips a job; its default Worker forks a work horse for every job (isolation from leaks "
    "and crashes, by design), so every SMS pays a fork and a new HTTP connection, and its only concurrency "
    "is more processes.",
    "dramatiq": "Dramatiq's Redis broker runs Lua scripts that fetch a batch of messages (prefetch: twice the "
    "threads) and acknowledge each after it ran; the worker is a thread pool (or greenlets) per process.",
    "huey": "Huey does the least per task: it LPUSHes a small pickled message and each worker BRPOPs it, with "
    "no acknowledgement (a task taken by a worker that dies is lost) and little else per task.",
}


def row_cells(row: dict) -> list[str]:
    failure = row.get("failure")
    sms = row["job"] == "sms"
    delivered = f"{row['delivered']}/{row['expected']}" if sms and row.get("delivered") is not None else "–"
    duplicates = str(row["duplicates"]) if sms and row.get("duplicates") is not None else "–"
    drain = fmt_num(row.get("drain_per_s"))
    if failure:
        drain = f"{drain} ({failure})" if row.get("drain_per_s") else failure
    return [NAMES.get(row["peer"], row["peer"]), BROKERS.get(row["broker"], row["broker"]),
            "SMS" if sms else "no-op", f"`{row['settings']}`", fmt_num(row.get("enqueue_per_s")), drain,
            fmt_ratio(row.get("enqueue_ratio")), fmt_ratio(row.get("drain_ratio")), delivered, duplicates]  # fmt: skip


def peers_table(result: dict) -> str:
    header = ["peer", "broker", "job", "settings", "enqueue/s", "drain/s", "enqueue ÷ Celery",
              "drain ÷ Celery", "delivered", "duplicates"]  # fmt: skip
    return table(header, [row_cells(row) for row in result["rows"]], align="llllrrrrrr")


def ranking(result: dict, broker: str, job: str) -> list[dict]:
    """The four queues' drain rows for one job on one broker, fastest first; Celery by its best pool."""
    rows = [r for r in result.get("rows", []) if r["broker"] == broker and r["job"] == job and r.get("drain_per_s")
            and r["peer"] in ("celery", "celery-threads", "rq", "dramatiq", "huey")]  # fmt: skip
    celery = [r for r in rows if r["peer"].startswith("celery")]
    rows = [r for r in rows if not r["peer"].startswith("celery")]
    if not celery or not rows:
        return []
    return sorted([*rows, max(celery, key=lambda r: r["drain_per_s"])], key=lambda r: -r["drain_per_s"])


def place(result: dict, broker: str, job: str) -> str | None:
    """Celery's place among the peers for one job on one broker, the others' figures beside it."""
    rows = ranking(result, broker, job)
    if not rows:
        return None
    rank = next(i for i, r in enumerate(rows) if r["peer"].startswith("celery")) + 1
    figures = ", ".join(f"{NAMES[r['peer']]} {fmt_num(r['drain_per_s'])}/s" for r in rows)
    what = "no-op tasks" if job == "noop" else f"SMS ({result['gateway_latency_s']:g} s gateway)"
    return f"On {BROKERS[broker]}, Celery drains {what} {ordinal(rank)} of {len(rows)}: {figures}."


def ordinal(n: int) -> str:
    return {1: "first", 2: "second", 3: "third", 4: "fourth"}.get(n, f"#{n}")


def peers_notes(result: dict) -> list[str]:
    notes = [
        f"Each peer alone on the 2 cores, one at a time, stopped before the next: {result['noop_tasks']:,} "
        f"no-op tasks and {result['sms']:,} SMS to distinct numbers, concurrency {result['concurrency']} for "
        "the SMS with every peer. Enqueue: one producer process, one loop, timed. No-op drain: the queue "
        "preloaded between a start mark and an end mark (jobs that write the time they ran into Redis), one "
        "worker started; the no-op tasks ÷ the time between the marks. With several processes the end mark "
        "may run up to a prefetch's worth of no-op tasks before the last one (a few dozen of thousands). SMS "
        f"drain: the gateway answering in {result['gateway_latency_s']:g} s, the SMS delivered ÷ the time "
        "from its first received SMS to its last delivered one; every number counted in its inbox.",
        f"The floor: raw redis-py between two processes, LPUSH then BRPOP, one round trip a message of "
        f"{result.get('message_bytes') or 1000} B (a Celery no-op message's size): what any Redis queue "
        "costs before its library does anything.",
        "No ratio is a target: the peers are reported as they are, each at its own documentation's settings "
        "for the job (the commands below; the broker's URL in PEER_BROKER_URL, and CELERY_BROKER_URL for "
        "Celery). `peer_apps.RQWorker` is RQ's default forking Worker, loaded from the module that imports "
        "the jobs' libraries, so that they are imported once before the forks, as RQ's Performance Notes "
        "advise, not again in every job.",
    ]
    notes += [sentence for broker in ("redis", "rabbitmq") for job in ("noop", "sms")
              if (sentence := place(result, broker, job))]  # fmt: skip
    bytes_ = result.get("message_bytes") or "about 900"
    notes += [text.format(bytes=bytes_) for peer, text in DESIGN.items()
              if any(r["peer"] == peer and r.get("drain_per_s") for r in result["rows"])]  # fmt: skip
    notes += [f"{NAMES.get(r['peer'], r['peer'])} on {BROKERS[r['broker']]}, "
              f"{'SMS' if r['job'] == 'sms' else 'no-op'}: `{r['command']}`" for r in result["rows"]]  # fmt: skip
    if result.get("rabbitmq"):
        notes.append(result["librabbitmq"])
    return notes


def claim_table(result: dict) -> str | None:
    rows = [
        r for r in result["rows"] if r["job"] == "noop" and r["peer"] in ("celery", "celery-tuned", "floor")
    ]
    if not rows:
        return None
    cells = []
    for r in rows:
        name = f"{NAMES[r['peer']]} on {BROKERS[r['broker']]}"
        for what, key in (("enqueue", "enqueue_per_s"), ("drain", "drain_per_s")):
            per_s = r.get(key)
            per_min = per_s * 60 if per_s else None
            share = f"{per_min / CLAIM_PER_MINUTE * 100:.1f} %" if per_min else "–"
            cells.append([f"{name}: {what}", f"`{r['settings']}`", fmt_num(per_s), fmt_num(per_min), share])
    header = ["no-op tasks", "settings", "per second", "per minute", "of 1,000,000/min"]
    return table(header, cells, align="llrrr") + f"\n\nThe claim, from Celery's README: “{CLAIM}”"


def sections(result: dict | None) -> dict[str, tuple[str, str]]:
    """The sections ``results.md`` takes from this scenario: the peers, and the claim checked."""
    if not result:
        return {}
    body = peers_table(result) + "\n\n" + "\n".join(f"- {note}" for note in peers_notes(result))
    out = {"peers": ("Peers: Celery, RQ, Dramatiq, Huey and the floor", body)}
    claim = claim_table(result)
    if claim:
        out["claim"] = ("Celery's “millions of tasks a minute”", claim)
    return out
