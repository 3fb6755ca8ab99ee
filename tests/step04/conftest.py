"""Step 4's tests, one module per part of the page (test_NN_<part>.py): `make check-step 4` climbs
them in order, `make check-step 4 PART=N` runs one."""

import inspect
import os

import pytest
from django.test import Client
from django.urls import Resolver404, resolve

from tests.harness import MOBILE, configure_step
from workshop.steps import worker_options


def pytest_configure(config):
    # The broker gets its own Redis server here, so a test can stop it while the cache stays up.
    configure_step(config, "step04_final", separate_broker=True)


def post_endpoint_missing():
    try:
        view = resolve("/users/sms/").func
    except Resolver404:
        return "there is no /users/sms/ yet"
    cls = getattr(view, "cls", None)  # a class-based view's; a plain function view has none
    if cls is None or "post" not in cls.http_method_names or not hasattr(cls, "post"):
        return "/users/sms/ does not take POST yet"
    return None


def reference_missing():
    from mycelery.sms.tasks import send_sms

    params = list(inspect.signature(send_sms.run).parameters)
    if params not in (["ref"], ["self", "ref"]):
        return (
            f"send_sms still takes {params}: the message should carry only a reference, send_sms.delay(ref)"
        )
    return None


def celery_settings_missing():
    from mycelery.main import app

    if app.namespace != "CELERY":
        return (
            "Celery does not read Django's CELERY_* settings yet: in mycelery/main.py, "
            'app.config_from_object("django.conf:settings", namespace="CELERY")'
        )
    return None


# The parts every other part stands on, each checked once and in an instant: a test of a later part
# fails at once, naming the part to do first, instead of waiting for a worker to do what cannot happen yet.
FOUNDATIONS = {
    0: ("POST users/sms/ with a JSON body", post_endpoint_missing),
    2: ("a send stores sms_send_<ref> and the task takes ref", reference_missing),
    5: ("Celery's settings in Django's, CELERY_*", celery_settings_missing),
}


@pytest.fixture(scope="session")
def foundations():
    return {part: check() for part, (_, check) in FOUNDATIONS.items()}


@pytest.fixture(autouse=True)
def _needs(request, foundations):
    """A module's NEEDS lists the parts it stands on; if one is missing, its tests fail before they start.
    PARTS_UNGATED=1 runs them anyway (tests/exercises proves that each part fails on step 3 by itself)."""
    if os.environ.get("PARTS_UNGATED"):
        return
    for part in getattr(request.module, "NEEDS", ()):
        if foundations[part]:
            what, _ = FOUNDATIONS[part]
            pytest.fail(f"needs part {part} first ({what}): {foundations[part]}", pytrace=False)


@pytest.fixture
def sms_worker(start_worker, step_path):
    """A worker started as the step's Procfile starts it (in step 4: consuming the sms queue too)."""

    from mycelery.main import app

    options = worker_options(step_path)
    queue = app.amqp.router.route({}, "mycelery.sms.tasks.send_sms")["queue"].name
    # What a worker consumes: -Q's list, else every queue CELERY_TASK_QUEUES declares, else the default one.
    declared = [q.name for q in app.conf.task_queues or ()] or [app.conf.task_default_queue]
    consumed = options[options.index("-Q") + 1].split(",") if "-Q" in options else declared
    if queue not in consumed:
        pytest.fail(
            f"send_sms goes to the {queue} queue, and the Procfile's worker consumes only {consumed}: "
            f"add -Q {queue},celery to its worker line (part 9)",
            pytrace=False,
        )

    def start(*extra, **kwargs):
        return start_worker("mycelery.main", *options, *extra, **kwargs)

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


@pytest.fixture
def the_ref(sms_redis):
    """The pending send's reference, once a send has happened (the view stores sms_send_<ref>: the number)."""

    def the_ref():
        keys = sms_redis.keys("sms_send_*")
        assert len(keys) == 1, f"expected one sms_send_<ref> key in Redis (part 2), found {keys}"
        return keys[0].removeprefix("sms_send_")

    return the_ref


@pytest.fixture
def stopped(services):
    """Stop one of the Redis servers for a test; it is started again (empty) afterwards."""
    to_restart = []

    def stop(server):
        server.stop()
        to_restart.append(server)

    yield stop
    for server in to_restart:
        if not server.running:  # the test may have started it again itself
            server.start()
