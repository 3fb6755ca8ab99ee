# --8<-- [start:init]
# Import the Celery app whenever Django starts (runserver, gunicorn, manage.py shell), so that every
# @shared_task binds to it and .delay() uses its broker.
from .celery import app as celery_app

__all__ = ("celery_app",)
# --8<-- [end:init]
