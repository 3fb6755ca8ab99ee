"""``make bench``: what Celery buys, what it costs, and where it stands among its peers (see __main__.py).

plan      how much load each scenario offers (full, quick, smoke)
run       the run's services and processes, started with the shared runner and stopped at the end
load      the open-loop and closed-loop HTTP load generator
endpoint  steps 1, 3 and 4 at fixed offered rates, interleaved; capacity; the cost of .delay()
delivery  the gateway's own ceiling, and what one step 4 worker delivers per pool
reliability  step 4's settings against Celery's defaults on the same job
peers     Celery, RQ, Dramatiq, Huey and raw redis-py on the same jobs (peer_apps, peer_producer, jobs)
stats, findings, report, report_peers, plots, notes   the arithmetic, sentences, tables, pictures
"""
