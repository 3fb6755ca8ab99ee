"""What docs/monitoring.md#async-result has a student type in a Python shell opened in step02_celery_intro/,
with a worker running. tests/step02 runs this file there, against a real worker, and reads what it prints."""

# --8<-- [start:lookup]
from celery.result import AsyncResult

from mycelery.main import app
from mycelery.sms.tasks import send_sms2

# 调用方只需要保存任务 id / the id is all a caller needs to keep
task_id = send_sms2.delay().id
print(task_id)

# 以后在任何进程里，凭 id 查询 / later, in any process: the id is enough
result = AsyncResult(task_id, app=app)
# 一直等到 worker 执行完：在这里可以，在视图里不行 / waits for the worker: fine here, never in a view
print(result.get(timeout=10))
print(result.state, result.successful())
# --8<-- [end:lookup]

# --8<-- [start:unknown]
# 结果存储里没有的 id，状态也是 PENDING / an id the result backend has never heard of is PENDING too
print(AsyncResult("no-such-task", app=app).state)
# --8<-- [end:unknown]
