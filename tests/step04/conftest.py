import pytest
from django.test import Client

from tests.harness import MOBILE, configure_step
from workshop.steps import step_folder, worker_options


def pytest_configure(config):
    # The broker gets its own Redis server here, so a test can stop it while the cache stays up.
    configure_step(config, "step04_final", separate_broker=True)


@pytest.fixture
def sms_worker(start_worker):
    """A worker started as the reference step 4's Procfile starts it (consuming the sms queue)."""

    def start(*extra, **kwargs):
        return start_worker("mycelery.main", *worker_options(step_folder(4)), *extra, **kwargs)

    return start


@pytest.fixture
def send(client):
    """POST users/sms/ {"mobile": ...}, as the page sends it."""

    def send(mobile=MOBILE, **extra):
        response = client.post("/users/sms/", {"mobile": mobile}, content_type="application/json", **extra)
        if response.status_code == 404:
            pytest.fail(
                'POST /users/sms/ is not there: step 4 sends with POST and a JSON body {"mobile": "..."} '
                '(users/urls.py: path("sms/", ...); the view\'s method is post)',
                pytrace=False,
            )
        return response

    return send


@pytest.fixture
def send_from():
    """send(), from a client address of the test's choosing, with a Client of its own (thread-safe)."""

    def send_from(address, mobile=MOBILE):
        return Client(REMOTE_ADDR=address).post(
            "/users/sms/", {"mobile": mobile}, content_type="application/json"
        )

    return send_from


@pytest.fixture
def verify(client):
    def verify(mobile=MOBILE, code="000000", **extra):
        return client.post(
            "/users/sms/verify/", {"mobile": mobile, "code": code}, content_type="application/json", **extra
        )

    return verify
