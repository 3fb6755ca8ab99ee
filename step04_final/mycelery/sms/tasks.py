import logging

from celery.signals import before_task_publish
from django_redis import get_redis_connection
from redis.exceptions import RedisError

from mycelery.main import app

from . import constants
from .ronglian import PermanentSMSError, TransientSMSError, get_client, mask_mobile

logger = logging.getLogger(__name__)

# How long "this message was already sent" is remembered: longer than any redelivery can come.
SENT_MARKER_TIME = 24 * 60 * 60


# 默认任务名: 模块路径 + 函数名 / default name: "mycelery.sms.tasks.send_sms"
# --8<-- [start:send_sms]
@app.task(
    bind=True,
    # Transient failures are retried after 1, 2, 4, 8, 16 s (each randomised by jitter), then given up.
    # A Redis error before the provider is called: retrying it cannot send twice (the one after is caught).
    autoretry_for=(TransientSMSError, RedisError),
    retry_backoff=1,
    retry_backoff_max=30,
    retry_jitter=True,
    max_retries=5,
    # A code is useless once expired: drop the message if no worker started it in time.
    expires=constants.SMS_EXPIRE_TIME,
    # Nobody reads the result; not storing it also keeps the code out of the result backend.
    ignore_result=True,
)
def send_sms(self, mobile, sms_code):
    """发送短信 / send the SMS; a message whose SMS is known to have gone out is not sent again"""
    redis = get_redis_connection("sms_code")
    # Set once the provider accepted this message: a later delivery of it (a redelivery, a retry)
    # stops here. Two deliveries running at the same moment would both pass; the visibility timeout
    # (settings.py) is long enough that Redis never hands out a message a live worker still holds.
    marker = f"sms_sent_{self.request.id}"
    if redis.exists(marker):
        # A redelivery (crash after sending, before the acknowledgement) or a retry after success.
        logger.info(
            "SMS to %s already sent by an earlier delivery of this message; skipping", mask_mobile(mobile)
        )
        return
    if (redis.get(f"sms_{mobile}") or b"").decode() != sms_code:
        # Expired, used, or replaced by a newer code: sending it now would only confuse the user.
        logger.info("The code for %s is no longer current; not sending it", mask_mobile(mobile))
        return
    try:
        sid = get_client().send_template_sms(
            mobile, [sms_code, constants.SMS_EXPIRE_TIME // 60], constants.SMS_TEMPLATE_ID
        )
    except PermanentSMSError as exc:
        # Retrying cannot help: say why once (no code in the message) and stop.
        logger.error("SMS to %s refused, not retrying: %s", mask_mobile(mobile), exc)
        return
    try:
        redis.set(marker, sid or "sent", ex=SENT_MARKER_TIME)
    except RedisError:
        # Sent: a retry now would send it again. Only a later redelivery could, and the log says so.
        logger.warning("SMS to %s sent, but its sent-marker was not saved (Redis error)", mask_mobile(mobile))
    logger.info("SMS to %s sent (%s)", mask_mobile(mobile), sid)
    # --8<-- [end:send_sms]


# --8<-- [start:mask_retries]
@before_task_publish.connect
def mask_sms_arguments(sender=None, body=None, headers=None, **kwargs):
    """What events and Flower show of send_sms: a masked number and no code, for every publish.

    The view passes kwargsrepr itself, but a retry is published by Celery (Task.retry), which does
    not carry kwargsrepr over: without this, each retry would show the number and the code.
    """
    if sender != send_sms.name or headers is None:
        return
    task_kwargs = body[1] if isinstance(body, tuple | list) and len(body) > 1 else {}
    headers["argsrepr"] = "()"
    headers["kwargsrepr"] = repr({"mobile": mask_mobile(task_kwargs.get("mobile", "")), "sms_code": "******"})
    # --8<-- [end:mask_retries]


# 自定义任务名 / a name of our own: app.send_task("send_sms2") finds it by this name
@app.task(name="send_sms2")
def send_sms2():
    print("发送短信任务2!!!")
    return "send_sms2: ok"
