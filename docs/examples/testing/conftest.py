"""Fixtures for testing step 4's send_sms: a fake SMS client, a code waiting in Redis, Celery's worker.

Copy it to your project as tests/conftest.py (docs/testing.md says where each file goes).
"""

import secrets
import threading

import pytest
from django_redis import get_redis_connection

from mycelery.main import app
from mycelery.sms.ronglian import TransientSMSError

MOBILE = "13800138000"


# --8<-- [start:fake_client]
class FakeSMSClient:
    """Stands in for RonglianClient: it keeps each SMS instead of sending it.

    ``fail_next(n)``: the next n calls raise TransientSMSError, as a busy provider does.
    """

    def __init__(self):
        self.sent = []  # (mobile, code) of each SMS "sent"
        self.calls = 0
        self._failures = 0
        self._arrived = threading.Condition()  # a worker thread sends; the test waits for it

    def fail_next(self, n):
        self._failures = n

    def send_template_sms(self, mobile, datas, template_id):
        self.calls += 1
        if self._failures:
            self._failures -= 1
            raise TransientSMSError("the provider is busy", "111120")
        with self._arrived:
            self.sent.append((mobile, datas[0]))  # datas: [code, minutes it stays valid]
            self._arrived.notify_all()
        return f"fake-sid-{self.calls}"

    def wait_for(self, count, timeout=10):
        """What was sent, once ``count`` SMS have been (a worker sends them in another thread)."""
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.sent) >= count, timeout)
        return self.sent


@pytest.fixture
def sms_client(monkeypatch):
    """The task's get_client() returns a FakeSMSClient for this test: nothing reaches Ronglian."""
    client = FakeSMSClient()
    monkeypatch.setattr("mycelery.sms.tasks.get_client", lambda: client)
    return client
    # --8<-- [end:fake_client]


# --8<-- [start:queued_sms]
@pytest.fixture
def queued_sms():
    """Store what the view stores before send_sms.delay(ref), and return that ref.

    A new ref each time, so the tests need not empty a Redis that other things may use.
    """
    redis = get_redis_connection("sms_code")

    def queue(mobile=MOBILE, code="123456"):
        ref = secrets.token_urlsafe(16)
        redis.set(f"sms_{mobile}", code, ex=300)
        redis.set(f"sms_send_{ref}", mobile, ex=300)
        return ref

    return queue
    # --8<-- [end:queued_sms]


# --8<-- [start:celery_fixtures]
# celery.contrib.pytest (switched on in pytest.ini) makes a new, empty Celery app for its worker unless
# told otherwise: give it the project's app, the one send_sms belongs to, with its broker and queues.
@pytest.fixture(scope="session")
def celery_session_app():
    return app


@pytest.fixture(scope="session")
def celery_worker_parameters():
    # No ping first: it needs a task celery.ping that the project's app does not have (an AssertionError).
    # The fixture still waits until the worker is taking messages.
    return {"perform_ping_check": False}
    # --8<-- [end:celery_fixtures]


# --8<-- [start:eager]
@pytest.fixture
def eager():
    """CELERY_TASK_ALWAYS_EAGER = True for one test: .delay() runs the task at once, in this process."""
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False
    # --8<-- [end:eager]
