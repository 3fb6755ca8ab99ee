"""A Celery app with one task that does nothing, for the "millions of tasks a minute" figure.

It lives here and not in a step: it measures Celery and Redis, not the lesson's code.

    CELERY_BROKER_URL=redis://127.0.0.1:6379/13 celery -A workshop.bench_noop worker -P solo -l warning
"""

from celery import Celery

# CELERY_BROKER_URL, when set, wins over this default (Celery reads it itself).
app = Celery("bench_noop", broker="redis://127.0.0.1:6379/13")
app.conf.update(
    # Nothing reads a result: storing none is the first of Celery's own "optimizing" advice.
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
)


@app.task(name="noop")
def noop():
    return None
