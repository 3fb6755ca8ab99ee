"""Celery's own fixtures: a real worker in a thread of the test process, reading a real broker."""

from mycelery.sms.tasks import send_sms


# --8<-- [start:worker]
def test_a_worker_sends_what_delay_queued(celery_session_worker, sms_client, queued_sms):
    # .delay() publishes to the broker (Redis db 15), as the view does; the worker takes it from there.
    result = send_sms.delay(queued_sms(code="654321"))

    # Wait for what the task does, the SMS: send_sms keeps no result (ignore_result=True), so its state
    # says PENDING for ever on a real worker (in eager mode it would say SUCCESS).
    assert sms_client.wait_for(1, timeout=10) == [("13800138000", "654321")]
    assert result.state == "PENDING"
    # --8<-- [end:worker]
