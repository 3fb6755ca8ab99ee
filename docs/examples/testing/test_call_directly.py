"""Calling the task as a function: the quickest test, and the one to write most of."""

import pytest

from mycelery.sms.ronglian import TransientSMSError
from mycelery.sms.tasks import send_sms


# --8<-- [start:direct]
def test_send_sms_sends_the_stored_code_to_the_stored_number(sms_client, queued_sms):
    ref = queued_sms(mobile="13800138000", code="123456")

    send_sms(ref)  # a plain call: it runs here and now, with no broker and no worker

    assert sms_client.sent == [("13800138000", "123456")]


def test_the_same_message_twice_sends_one_sms(sms_client, queued_sms):
    ref = queued_sms()

    send_sms(ref)
    send_sms(ref)  # a message delivered again (a worker crashed): the claim in Redis stops it

    assert len(sms_client.sent) == 1
    # --8<-- [end:direct]


# --8<-- [start:direct_error]
def test_called_directly_a_transient_error_is_raised_not_retried(sms_client, queued_sms):
    sms_client.fail_next(1)

    with pytest.raises(TransientSMSError):
        send_sms(queued_sms())

    assert sms_client.calls == 1  # autoretry_for retries only a task run by a worker or by apply()
    # --8<-- [end:direct_error]
