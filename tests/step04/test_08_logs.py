"""Codes and numbers in logs and monitoring.

Part 8 of step 4: the page's section step4.md#logs."""

import base64
import json
import logging
import re

from tests.harness import MOBILE
from workshop.gateway import TRANSIENT_CODES

# Stands on part 0 and part 2: without them, these tests fail at once (tests/step04/conftest.py).
NEEDS = [0, 2]


def test_the_message_carries_a_reference_not_the_number_or_the_code(send, broker, sms_redis, the_ref):
    """What the broker stores (and inspect, events and Flower show) is a random reference: the number and
    the code stay in Redis, where the worker reads them when it sends."""
    assert send().status_code == 200
    code = sms_redis.get(f"sms_{MOBILE}")

    [raw] = broker.lrange("sms", 0, -1)
    message = json.loads(raw)
    args, kwargs, _ = json.loads(base64.b64decode(message["body"]))

    assert args == [the_ref()] and kwargs == {}
    everything = raw.decode() + base64.b64decode(message["body"]).decode()
    assert code not in everything and MOBILE not in everything and MOBILE[-4:] not in everything


def test_a_full_send_and_verify_logs_no_code_and_no_full_number(
    client, send, verify, gateway, sms_redis, sms_worker, caplog
):
    """A send, a retry, refusals and a verify: no code, no full number, no signature in any log line."""
    caplog.set_level(logging.DEBUG)
    gateway.configure(fail_next=1, fail_mode=sorted(TRANSIENT_CODES)[0])  # a retry is logged too
    worker = sms_worker("--loglevel=debug")  # every line the worker can write, its task arguments included

    assert send().status_code == 200
    code = sms_redis.get(f"sms_{MOBILE}")
    gateway.wait_for_messages(MOBILE, count=1, timeout=30)
    worker.wait_for("sent (")
    assert send().status_code == 429  # Django logs the refusal
    assert send(f"+86{MOBILE}").status_code == 400  # ...and a refused "+86" form of it
    assert client.get(f"/users/sms/{MOBILE}/").status_code == 405  # the chapter's URL: the number in the path
    assert verify(code=f"{(int(code) + 1) % 1_000_000:06d}").status_code == 400
    assert verify(code=code).status_code == 200

    # What the console handler writes, through its filters (the test's own urllib3 client left out).
    [console] = [h for h in logging.getLogger().handlers if h.filters]
    app_logs = "\n".join(
        r.getMessage() for r in caplog.records if not r.name.startswith("urllib3") and console.filter(r)
    )
    logs = app_logs + worker.log
    assert "138****8000" in logs, "the logs should still name the number, masked"
    # The code as a number of its own (a 6-digit run inside a longer number, a timestamp, is not it).
    assert not re.search(rf"(?<!\d){code}(?!\d)", logs), "a verification code was logged"
    assert MOBILE not in logs
    assert "sig=" not in logs, "the signed URL (Ronglian's signature) was logged"
