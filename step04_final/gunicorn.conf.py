"""gunicorn's settings for step 4 in production:  gunicorn -c gunicorn.conf.py renranapi.wsgi

Threads as well as processes: a request spends most of its time waiting for Redis and the broker.
"""

import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", 2))
worker_class = "gthread"
# renranapi/settings.py sizes the broker's connection pool from the same variable.
threads = int(os.environ.get("WEB_THREADS", 8))
timeout = 30
