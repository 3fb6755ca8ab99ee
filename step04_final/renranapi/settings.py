"""Django settings for the renranapi project (workshop step 4: production-grade).

Everything that differs between a laptop and a server comes from the environment. The defaults
are safe for development and match the workshop's local Redis (6379) and SMS gateway (8881);
``DJANGO_DEBUG=0`` switches to production mode, where a real secret key is required.
"""

import ipaddress
import os
import socket
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name, default=None):
    return os.environ.get(name, default)


def env_bool(name, default):
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in ("1", "true", "yes", "on")


def env_list(name, default):
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


# --8<-- [start:environment]
DEBUG = env_bool("DJANGO_DEBUG", True)
SECRET_KEY = env("DJANGO_SECRET_KEY", "django-insecure-workshop-only-do-not-use-in-production")
if not DEBUG and SECRET_KEY.startswith("django-insecure"):
    raise ImproperlyConfigured("Set DJANGO_SECRET_KEY: production mode (DJANGO_DEBUG=0) needs a real secret.")
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
# --8<-- [end:environment]

INSTALLED_APPS = [
    "django.contrib.staticfiles",
    "rest_framework",
    "users",
]

MIDDLEWARE = [
    # First: it sees every answer on its way out, and makes the errors under the API's paths JSON.
    "users.middleware.JSONErrorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # The language of each answer, from the request's Accept-Language: Chinese unless it asks for English.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    # `check --deploy` asks for it (security.W003): it guards any form view added later. DRF's views are
    # exempt from it, which is why the API checks Origin itself (users/permissions.py).
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "renranapi.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {"context_processors": ["django.template.context_processors.request"]},
    },
]

WSGI_APPLICATION = "renranapi.wsgi.application"

# The verification codes live in Redis; this workshop has no database tables.
DATABASES = {}

# --8<-- [start:languages]
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]  # locale/zh_Hans/LC_MESSAGES/django.po: the Chinese of each message
# --8<-- [end:languages]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"

# Behind HTTPS in production: https only, for a year, and say so to browsers.
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = int(env("DJANGO_SECURE_HSTS_SECONDS", 31536000))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    if env("TRUSTED_PROXIES"):  # only behind a proxy of ours may a header say the request came over https
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    CSRF_COOKIE_SECURE = True
    X_FRAME_OPTIONS = "DENY"

# --8<-- [start:redis]
# Redis: the cache alias "sms_code" holds sms_<mobile> and interval_<mobile>.
# Short timeouts: if Redis is down, the view answers 503 at once instead of hanging.
REDIS_URL = env("REDIS_URL", "redis://127.0.0.1:6379")
REDIS_OPTIONS = {
    "CLIENT_CLASS": "django_redis.client.DefaultClient",
    "SOCKET_CONNECT_TIMEOUT": 0.5,
    "SOCKET_TIMEOUT": 0.5,
}
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": f"{REDIS_URL}/0",
        "OPTIONS": REDIS_OPTIONS,
    },
    "sms_code": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": f"{REDIS_URL}/1",
        "OPTIONS": REDIS_OPTIONS,
    },
}
# --8<-- [end:redis]

# --8<-- [start:rest_framework]
REST_FRAMEWORK = {
    # No users and no sessions in this workshop: the API is anonymous and answers JSON.
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["users.parsers.SafeJSONParser"],
    # Every error, ours or DRF's, as {"error": "..."}; Redis or broker down becomes a 503.
    "EXCEPTION_HANDLER": "users.exceptions.exception_handler",
    # Per-client limits on sending and on checking codes (counted in the "default" Redis cache's db).
    "DEFAULT_THROTTLE_RATES": {
        "sms": env("SMS_THROTTLE_RATE", "10/hour"),
        "sms_verify": env("SMS_VERIFY_THROTTLE_RATE", "30/hour"),
    },
}
# --8<-- [end:rest_framework]

# --8<-- [start:proxies]
# The reverse proxies in front of Django (addresses or networks, comma-separated: "127.0.0.1,10.0.0.0/8").
# Only a request that comes from one of them is believed when its X-Forwarded-For names the client;
# anyone else could write any address there, a new one per request. Empty: believe no one.
TRUSTED_PROXIES = [ipaddress.ip_network(item, strict=False) for item in env_list("TRUSTED_PROXIES", "")]
# --8<-- [end:proxies]
# Pages of these other origins may call the API from a browser (users/permissions.py); none by default.
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_TRUSTED_ORIGINS", "")
# The API's bodies are a few dozen bytes: a larger one is refused with 413 before it is read.
DATA_UPLOAD_MAX_MEMORY_SIZE = 16 * 1024

# Ronglian Cloud (容联云通讯). The defaults talk to the workshop's local gateway;
# real credentials and https://app.cloopen.com:8883 send a real SMS.
RONGLIAN_ACC_ID = env("RONGLIAN_ACC_ID", "workshop-account-sid")
RONGLIAN_ACC_TOKEN = env("RONGLIAN_ACC_TOKEN", "workshop-auth-token")
RONGLIAN_APP_ID = env("RONGLIAN_APP_ID", "workshop-app-id")
RONGLIAN_BASE_URL = env("RONGLIAN_BASE_URL", "http://127.0.0.1:8881")
# (connect, read) seconds for every call to the provider
RONGLIAN_TIMEOUT = (float(env("RONGLIAN_CONNECT_TIMEOUT", 3)), float(env("RONGLIAN_READ_TIMEOUT", 10)))

# The demo page's simulated phone reads this inbox; empty (no phone on the page) in production mode.
SMS_GATEWAY_INBOX_URL = env("SMS_GATEWAY_INBOX_URL", "http://127.0.0.1:8881/_inbox" if DEBUG else "")
# --8<-- [start:limits]
# Against SMS pumping: codes per number a day, per number prefix (all but the last 4 digits) and for
# the whole site, in DRF's rate notation. Against guessing: wrong codes per number a day, across codes.
SMS_DAILY_LIMIT = int(env("SMS_DAILY_LIMIT", 10))
SMS_PREFIX_RATE = env("SMS_PREFIX_RATE", "20/hour")
SMS_GLOBAL_RATE = env("SMS_GLOBAL_RATE", "60/minute")
SMS_DAILY_WRONG_LIMIT = int(env("SMS_DAILY_WRONG_LIMIT", 20))
# --8<-- [end:limits]

# --8<-- [start:threads]
# The web server's threads per process (gunicorn.conf.py reads the same variable). A request thread
# publishes at most one message at a time and the health check one more, so with a broker pool this
# large no request ever waits for a connection: kombu's pool waits without a timeout when it is empty.
WEB_THREADS = int(env("WEB_THREADS", 8))
CELERY_BROKER_POOL_LIMIT = WEB_THREADS + 2
# /healthz reuses its answer this long (s), and waits at most this long for a check in progress.
HEALTH_CHECK_CACHE = 2.0
HEALTH_CHECK_WAIT = 1.5
# --8<-- [end:threads]

# --8<-- [start:celery]
# Celery reads every setting below that starts with CELERY_ (mycelery/main.py).
CELERY_BROKER_URL = env("CELERY_BROKER_URL", f"{REDIS_URL}/15")
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", f"{REDIS_URL}/14")
# SMS tasks have their own queue, so a flood of other work cannot delay a verification code.
CELERY_TASK_QUEUES = [Queue("celery"), Queue("sms")]
CELERY_TASK_ROUTES = {"mycelery.sms.tasks.*": {"queue": "sms"}}
# A message is acknowledged after the task ran, not before: a crashed worker's message is redelivered.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# An unacknowledged message (its worker died) goes back to the queue after this long. It must exceed
# the longest retry countdown plus a call to the provider (retry_backoff_max and RONGLIAN_TIMEOUT), or a
# message a live worker still holds is handed out again; and be well under the code's lifetime.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": int(env("CELERY_BROKER_VISIBILITY_TIMEOUT", 60)),
    # How often a running worker looks for the messages of a worker that vanished (another machine cut
    # off, say): every 10 s, where kombu's default looks only every 10th time (docs/hosts.md).
    "unacked_restore_interval": int(env("CELERY_BROKER_RESTORE_INTERVAL", 10)),
    "unacked_restore_throttle": 1,
    # One worker at a time looks, under a lock in Redis. A worker cut off while it holds that lock leaves
    # it for kombu's 300 s, and no message comes back meanwhile; 10 s is ample for a sweep.
    "unacked_mutex_expire": 10,
    "socket_connect_timeout": 0.5,
    "socket_timeout": 1,
    # kombu's default of 10 connections starves a gevent or threads worker with -c 50 ("Couldn't ack").
    "max_connections": int(env("CELERY_BROKER_MAX_CONNECTIONS", 200)),
    # RabbitMQ only: a connection whose data goes unacknowledged for 0.5 s is dead (py-amqp's default is 1 s),
    # so a broker cut off without a word (a pulled cable) still gets a 503 within 2 s (docs/hosts.md).
    "socket_settings": {socket.TCP_USER_TIMEOUT: 500} if hasattr(socket, "TCP_USER_TIMEOUT") else {},
    # RabbitMQ only (Redis ignores it): .delay() returns once RabbitMQ has the message on disk. Without
    # it, a RabbitMQ killed a second after a 200 had lost that message (docs/rabbitmq.md).
    "confirm_publish": True,
}
# .delay() must not hang when the broker is down: try briefly, then raise.
# A broker on the same network accepts a connection in milliseconds; 0.3 s keeps a broker that does not
# answer at all (two tries, plus a dead connection's 0.5 s) under the 2 s a 503 may take.
CELERY_BROKER_CONNECTION_TIMEOUT = 0.3
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# --8<-- [end:celery]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "[%(asctime)s: %(levelname)s/%(name)s] %(message)s"}},
    # Numbers are masked in every line, Django's "Not Found: /users/sms/13800138000/" included.
    "filters": {"mask_mobile": {"()": "users.logfilters.MaskMobileFilter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["mask_mobile"]}
    },
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {
        # Django's own loggers have handlers of their own (with DEBUG on, one that prints every request
        # error, URL and all; runserver's access log): ours instead, which mask.
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # At DEBUG, urllib3 logs each request's URL, and Ronglian's carries the signature (?sig=...).
        "urllib3": {"level": "INFO"},
    },
}
