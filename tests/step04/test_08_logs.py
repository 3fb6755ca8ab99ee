"""Codes and numbers in logs and monitoring.

Part 8 of step 4: the page's section step4.md#logs."""

import logging
import re

from tests.harness import MOBILE
from workshop.gateway import PERMANENT_CODES, TRANSIENT_CODES

# Stands on part 0 and part 2: without them, these tests fail at once (tests/step04/conftest.py).
NEEDS = [0, 2]


def test_the_message_carries_a_reference_not_the_number_or_the_code(send, broker, sms_redis, the_ref):
    """What the broker stores (and inspect, events and Flower show) is a random reference: the number and
    the code stay in Redis, where the worker reads them when it sends."""
    assert send().status_code == 200
    code = sms_redis.get(f"sms_{MOBILE}")

    assert broker.task_args("sms") == [[the_ref()]]
    everything = broker.stored()  # the message as stored, its headers and its body
    assert the_ref() in everything
    assert code not in everything and MOBILE not in everything and MOBILE[-4:] not in everything


def handlers_write(record: logging.LogRecord) -> list[str]:
    """The lines the handlers on a record's way up the logger tree write for it, through their filters."""
    lines, logger = [], logging.getLogger(record.name)
    while logger:
        for handler in logger.handlers:
            if type(handler).__name__ == "LogCaptureHandler" or record.levelno < handler.level:
                continue
            copy = logging.makeLogRecord(record.__dict__)
            if handler.filter(copy):
                lines.append(handler.format(copy))
        logger = logger.parent if logger.propagate else None
    return lines


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

    # The access log line runserver writes for the chapter's URL (the test client has no server to write it).
    logging.getLogger("django.server").info('"GET /users/sms/%s/ HTTP/1.1" 405 62', MOBILE)

    # What every handler of the project's logging configuration writes (the test's own urllib3 client
    # left out): Django's loggers included, which have handlers of their own unless LOGGING replaces them.
    written = [line for r in caplog.records if not r.name.startswith("urllib3") for line in handlers_write(r)]
    assert written, "no log line was written at all"
    logs = "\n".join(written) + worker.log
    assert "138****8000" in logs, "the logs should still name the number, masked"
    # The code as a number of its own (a 6-digit run inside a longer number, a timestamp, is not it).
    assert not re.search(rf"(?<!\d){code}(?!\d)", logs), "a verification code was logged"
    assert MOBILE not in logs, (
        "a full number was logged: every handler needs the mask filter, Django's own too"
    )
    assert "sig=" not in logs, "the signed URL (Ronglian's signature) was logged"


def test_a_refused_sms_is_logged_with_a_masked_number_and_no_code(send, gateway, sms_redis, sms_worker):
    """The provider refuses the SMS for good: the worker's line names the number masked, and no code."""
    gateway.configure(fail_next=1, fail_mode=sorted(PERMANENT_CODES)[0])
    worker = sms_worker()

    assert send().status_code == 200
    code = sms_redis.get(f"sms_{MOBILE}")
    worker.wait_for("refused, not retrying")

    assert "138****8000" in worker.log
    assert MOBILE not in worker.log
    assert not re.search(rf"(?<!\d){code}(?!\d)", worker.log), "a verification code was logged"
