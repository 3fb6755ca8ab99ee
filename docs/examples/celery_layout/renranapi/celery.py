"""The project's Celery app. Start a worker in this folder (the one with manage.py) with:

celery -A renranapi worker -Q sms,celery --loglevel=info
"""

# --8<-- [start:app]
import os

from celery import Celery

# The worker reads Django's settings; Celery's Django fixup calls django.setup() when the worker starts.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "renranapi.settings")

app = Celery("renranapi")

# Every setting in Django's settings that starts with CELERY_: CELERY_BROKER_URL is broker_url.
app.config_from_object("django.conf:settings", namespace="CELERY")

# Import tasks.py from each app in INSTALLED_APPS (users.tasks): no list of packages to keep up to date.
app.autodiscover_tasks()
# --8<-- [end:app]
