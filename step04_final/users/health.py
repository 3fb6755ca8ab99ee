"""GET /healthz: Redis, the broker, and a worker consuming the sms queue.

A load balancer may poll this many times a second from many threads, so a check must never hold up
the requests that send codes: it uses a broker connection of its own and nothing from the pool that
.delay() publishes with, every wait in it is bounded, and its answer is reused for a moment, so a
flood of checks costs one round trip to the broker.
"""

import threading
import time

from django.conf import settings
from django_redis import get_redis_connection
from kombu.exceptions import KombuError
from kombu.pidbox import Mailbox
from redis.exceptions import RedisError

from mycelery.main import app

# --8<-- [start:cache]
_lock = threading.Lock()
_last = {"at": -float("inf"), "body": None}


def check():
    """The last answer while it is fresh. Else one thread asks again, and the others answer with the
    last answer meanwhile (before there is one, they wait for it, but not for ever)."""
    if time.monotonic() - _last["at"] < settings.HEALTH_CHECK_CACHE:
        return _last["body"]
    if _last["body"] is None:
        asking = _lock.acquire(timeout=settings.HEALTH_CHECK_WAIT)
    else:
        asking = _lock.acquire(blocking=False)
    if asking:
        try:
            if time.monotonic() - _last["at"] >= settings.HEALTH_CHECK_CACHE:  # nobody asked meanwhile
                _last["body"], _last["at"] = ask(), time.monotonic()
        finally:
            _lock.release()
    return _last["body"] or {"status": "unknown", "problems": ["the first health check is still running"]}
    # --8<-- [end:cache]


# --8<-- [start:ask]
def ask():
    body = {"redis": "ok", "broker": "ok", "workers": []}
    try:
        get_redis_connection("sms_code").ping()
    except (RedisError, ConnectionError) as exc:
        body["redis"] = f"unreachable ({type(exc).__name__})"
    # A connection of our own, closed at the end, and a mailbox of our own: Celery's (app.control)
    # publishes with a producer from the pool .delay() uses, and waits for one without a timeout.
    mailbox = Mailbox(app.conf.control_exchange, type="fanout", accept=["json"], serializer="json")
    with app.connection_for_write() as conn:
        try:
            # Two quick tries, no waiting between them (kombu's default waits).
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=0.5)
            # What `celery inspect active_queues` asks. Workers that consume the sms queue: one started
            # without "-Q sms" would never send a code.
            replies = mailbox(conn).multi_call("active_queues", timeout=0.5)
            body["workers"] = sorted(
                name
                for reply in replies
                for name, queues in reply.items()
                if any(q["name"] == "sms" for q in queues)
            )
        except (KombuError, RedisError, OSError) as exc:  # OSError: ConnectionError, timeouts
            body["broker"] = f"unreachable ({type(exc).__name__})"
    problems = [name for name in ("redis", "broker") if body[name] != "ok"]
    if not body["workers"]:
        problems.append("workers: no worker consumes the sms queue")
    return {"status": "unhealthy" if problems else "ok", "problems": problems, **body}
    # --8<-- [end:ask]
