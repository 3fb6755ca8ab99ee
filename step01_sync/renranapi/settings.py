"""Django settings for the renranapi project (workshop step 1).

Connection details come from the environment, with defaults that match the workshop's
local Redis (port 6379) and local Ronglian SMS gateway (port 8881).
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# Development only: step 4 reads the secret from the environment.
SECRET_KEY = "django-insecure-workshop-only-do-not-use-in-production"
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    "django.contrib.staticfiles",
    "rest_framework",
    "users",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
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

LANGUAGE_CODE = "zh-hans"
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"

# Redis: the cache alias "sms_code" holds sms_<mobile> and interval_<mobile>.
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379")
CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": f"{REDIS_URL}/0",
        "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient"},
    },
    "sms_code": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": f"{REDIS_URL}/1",
        "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient"},
    },
}

REST_FRAMEWORK = {
    # No users and no sessions in this workshop: the API is anonymous and answers JSON.
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
}

# Ronglian Cloud (容联云通讯). The defaults talk to the workshop's local gateway;
# real credentials and https://app.cloopen.com:8883 send a real SMS.
RONGLIAN_ACC_ID = os.environ.get("RONGLIAN_ACC_ID", "workshop-account-sid")
RONGLIAN_ACC_TOKEN = os.environ.get("RONGLIAN_ACC_TOKEN", "workshop-auth-token")
RONGLIAN_APP_ID = os.environ.get("RONGLIAN_APP_ID", "workshop-app-id")
RONGLIAN_BASE_URL = os.environ.get("RONGLIAN_BASE_URL", "http://127.0.0.1:8881")

# The demo page's simulated phone reads this inbox; empty when a real provider sends.
SMS_GATEWAY_INBOX_URL = os.environ.get("SMS_GATEWAY_INBOX_URL", "http://127.0.0.1:8881/_inbox")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "INFO"},
}
