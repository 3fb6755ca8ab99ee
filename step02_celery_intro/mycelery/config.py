"""Celery 的配置 / Celery's configuration: where the messages and the results live."""

import os

# 任务队列 (broker): where .delay() puts a message and a worker takes it, Redis db 15
broker_url = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")

# 结果存储 (result backend): where a worker writes a task's state and return value, Redis db 14
result_backend = os.environ.get("CELERY_RESULT_BACKEND", "redis://127.0.0.1:6379/14")
