"""Why eager mode hides failures: the same task passes in eager mode and fails on a real worker."""

import pytest
from kombu.exceptions import EncodeError

from mycelery.main import app
from mycelery.sms.ronglian import mask_mobile
from mycelery.sms.tasks import send_sms


# --8<-- [start:task]
@app.task
def masked_numbers(mobiles):
    """A task of your own: the numbers it was given, masked, each once (a set, which JSON cannot hold)."""
    return {mask_mobile(mobile) for mobile in mobiles}
    # --8<-- [end:task]


# --8<-- [start:trap]
def test_in_eager_mode_it_passes(eager):
    result = masked_numbers.delay(["13800138000", "13800138000"])

    assert result.get() == {"138****8000"}  # the return value never went through JSON


def test_on_a_real_worker_it_fails(celery_session_worker):
    result = masked_numbers.delay(["13800138000", "13800138000"])

    with pytest.raises(EncodeError):  # the worker ran it, and could not store what it returned
        result.get(timeout=10)
    # --8<-- [end:trap]


# --8<-- [start:arguments]
def test_eager_delay_does_encode_the_arguments(eager):
    # In eager mode too, .delay() sends the arguments through JSON (Celery 5.7): this one fails in both.
    with pytest.raises(EncodeError):
        send_sms.delay({"13800138000"})
    # --8<-- [end:arguments]
