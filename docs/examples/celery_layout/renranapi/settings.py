"""Django settings for this example: step 4's names, read from the environment like step 4's."""

import os

from kombu import Queue

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "django-insecure-example-only")
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

# --8<-- [start:apps]
INSTALLED_APPS = [
    "rest_framework",
    "users",  # autodiscover_tasks() finds users/tasks.py because users is listed here
]
# --8<-- [end:apps]

ROOT_URLCONF = "renranapi.urls"
DATABASES = {}  # the codes live in Redis; no tables
# Ronglian checks the request's timestamp against Beijing time, and the SDK writes it in local time.
TIME_ZONE = "Asia/Shanghai"

REST_FRAMEWORK = {"DEFAULT_AUTHENTICATION_CLASSES": [], "UNAUTHENTICATED_USER": None}

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379")
# The cache alias "sms_code" holds sms_<mobile> and interval_<mobile>, as in the steps.
CACHES = {
    alias: {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": f"{REDIS_URL}/{db}"}
    for alias, db in (("default", 0), ("sms_code", 1))
}

# Ronglian Cloud (容联云通讯): the defaults talk to the workshop's local gateway.
RONGLIAN_BASE_URL = os.environ.get("RONGLIAN_BASE_URL", "http://127.0.0.1:8881")
RONGLIAN_ACC_ID = os.environ.get("RONGLIAN_ACC_ID", "workshop-account-sid")
RONGLIAN_ACC_TOKEN = os.environ.get("RONGLIAN_ACC_TOKEN", "workshop-auth-token")
RONGLIAN_APP_ID = os.environ.get("RONGLIAN_APP_ID", "workshop-app-id")

# --8<-- [start:celery]
# Read by app.config_from_object(..., namespace="CELERY"): the name without CELERY_, in lower case.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", f"{REDIS_URL}/15")
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", f"{REDIS_URL}/14")
# Step 4's reliability settings, unchanged: a crashed worker's message is delivered again.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# The SMS task has a queue of its own; only the route's task name changes (users.tasks, not mycelery.sms.tasks).
CELERY_TASK_QUEUES = [Queue("celery"), Queue("sms")]
CELERY_TASK_ROUTES = {"users.tasks.send_sms": {"queue": "sms"}}
# --8<-- [end:celery]
