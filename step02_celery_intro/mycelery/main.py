"""Celery 的主程序 / the Celery application. Start a worker inside the step folder with:

celery -A mycelery.main worker --loglevel=info
"""

from celery import Celery

# 创建 Celery 应用对象 / the application; "renran" names it in the worker's banner
app = Celery("renran")

# 加载配置 / load the settings from mycelery/config.py
app.config_from_object("mycelery.config")

# 自动发现任务 / find the tasks in each listed package's tasks.py
app.autodiscover_tasks(["mycelery.sms"])
