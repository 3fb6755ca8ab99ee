"""Step 3: the view hands the SMS to Celery and answers at once; a real worker sends it."""

import threading

from tests.harness import MOBILE


def request_in_background(client, mobile=MOBILE):
    """Run the request in a thread, so a test can hold the gateway and still see the response."""
    box = {}
    thread = threading.Thread(target=lambda: box.update(response=client.get(f"/users/sms/{mobile}/")))
    thread.start()
    return thread, box


def test_the_response_comes_before_the_gateway_answers(client, gateway, sms_redis, start_worker):
    """The view answers while the provider still holds the SMS: send_sms.delay() moved the send to the worker."""
    start_worker()
    gateway.configure(hold=True)  # the gateway keeps every SMS until released

    thread, box = request_in_background(client)
    # Well under the SDK's 5 s read timeout: a view that sends inside the request is still waiting.
    thread.join(timeout=3)
    answered_while_held = not thread.is_alive()
    gateway.release()
    thread.join(timeout=30)

    assert answered_while_held, (
        "The view did not answer while the gateway still held the SMS: "
        "it still sends inside the request. Step 3 calls send_sms.delay(mobile=mobile, sms_code=sms_code)."
    )
    response = box["response"]
    assert response.status_code == 200
    assert response.json() == {"message": "短信已经发送,请留意您的手机"}

    # Afterwards the worker delivers it, with the code that Redis holds.
    [message] = gateway.wait_for_messages(MOBILE, count=1, timeout=30)
    assert str(message["datas"][0]) == sms_redis.get(f"sms_{MOBILE}")


def test_with_no_worker_the_message_waits_in_the_broker(client, gateway, sms_redis, broker, start_worker):
    """With no worker the SMS waits in the broker; a worker then delivers the code Redis holds."""
    response = client.get(f"/users/sms/{MOBILE}/")

    assert response.status_code == 200
    assert broker.ready("celery") == 1, "the SMS task should wait in the broker until a worker runs"
    assert gateway.inbox(to=MOBILE) == []

    start_worker()

    [message] = gateway.wait_for_messages(MOBILE, count=1, timeout=30)
    assert str(message["datas"][0]) == sms_redis.get(f"sms_{MOBILE}")
    assert broker.ready("celery") == 0


def test_the_interval_still_refuses_a_second_request(client, gateway, broker):
    """The interval still refuses a second request, and only the first queues an SMS."""
    assert client.get(f"/users/sms/{MOBILE}/").status_code == 200

    second = client.get(f"/users/sms/{MOBILE}/")

    assert second.status_code == 400
    assert "60秒内已经发送过短信" in second.json()["message"]
    assert broker.ready("celery") == 1, "only the first request queues an SMS"


def test_the_worker_registers_send_sms_with_django_loaded(start_worker):
    """The worker starts with Django loaded (main.py calls django.setup()) and registers send_sms."""
    worker = start_worker()

    assert ". mycelery.sms.tasks.send_sms" in worker.log
    assert ". send_sms2" in worker.log
