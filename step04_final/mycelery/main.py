"""Celery 的主程序 / the Celery application. Start a worker inside the step folder with:

celery -A mycelery.main worker -Q sms,celery --loglevel=info
"""

import os

import django
from celery import Celery

# 让 Celery 加载 Django 的配置 / tell Django which settings to use...
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "renranapi.settings")
# ...and initialise Django before the tasks import anything from it (models, settings, caches)
django.setup()

# 创建 Celery 应用对象 / the application; "renran" names it in the worker's banner
app = Celery("renran")

# --8<-- [start:config]
# 加载配置 / every CELERY_* setting in Django's settings, from the environment like the rest
app.config_from_object("django.conf:settings", namespace="CELERY")
# --8<-- [end:config]

# 自动发现任务 / find the tasks in each listed package's tasks.py
app.autodiscover_tasks(["mycelery.sms"])
