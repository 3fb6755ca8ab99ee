"""What stopping a worker does to the task in its hands (docs/workers.md#shutdown): a task as slow as a
provider that takes its time, with step 4's settings. In this folder, with a Redis on 6379 (make redis):

celery -A stopping worker --loglevel=info
python -c "from stopping import send_slowly; send_slowly.delay()"
"""

import os
import time

from celery import Celery
from celery.utils.log import get_task_logger

# --8<-- [start:example]
# Database 12: a message left there never reaches a step's worker (the steps' queues are in 15).
app = Celery("stopping", broker=os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/12"))
# Step 4's settings (renranapi/settings.py): acknowledged once the task has run, one message at a time.
app.conf.task_acks_late = True
app.conf.task_reject_on_worker_lost = True
app.conf.worker_prefetch_multiplier = 1

logger = get_task_logger(__name__)
# Long enough to press Ctrl-C while it runs; the tests make it shorter.
SECONDS = float(os.environ.get("SEND_SECONDS", 10))


@app.task
def send_slowly():
    logger.info("sending, %s s to go", SECONDS)
    time.sleep(SECONDS)
    logger.info("sent")
# --8<-- [end:example]
