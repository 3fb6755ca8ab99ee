"""task.apply(): the task run here, as a worker would run it (retries included), returning an EagerResult."""

import time

import pytest

from mycelery.sms.ronglian import TransientSMSError
from mycelery.sms.tasks import send_sms


# --8<-- [start:apply]
def test_apply_retries_a_busy_provider_at_once(sms_client, queued_sms):
    sms_client.fail_next(2)  # two TransientSMSError, then the SMS goes out

    result = send_sms.apply(args=(queued_sms(code="222222"),))

    assert result.successful()  # an EagerResult: the outcome is already there
    assert sms_client.calls == 3  # autoretry_for retried twice...
    assert sms_client.sent == [("13800138000", "222222")]  # ...and one SMS went out


def test_apply_hands_back_the_failure_without_raising_it(sms_client, queued_sms, monkeypatch):
    sms_client.fail_next(100)  # the provider stays busy
    slept = []
    monkeypatch.setattr(time, "sleep", slept.append)  # any wait between tries would be recorded here

    result = send_sms.apply(args=(queued_sms(),))

    assert slept == []  # no backoff: a worker waits up to 1, 2, 4, 8 and 16 s between tries
    assert sms_client.calls == 6  # the first try and max_retries=5 retries
    assert result.state == "FAILURE"
    assert isinstance(result.result, TransientSMSError)
    with pytest.raises(TransientSMSError):
        result.get()  # raises only when asked; a test that never asks passes
    # --8<-- [end:apply]
