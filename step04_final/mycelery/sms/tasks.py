import logging

from django_redis import get_redis_connection

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
    autoretry_for=(TransientSMSError,),
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
    """发送短信 / send the SMS, at most once per message where that can be known"""
    redis = get_redis_connection("sms_code")
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
    redis.set(marker, sid or "sent", ex=SENT_MARKER_TIME)
    logger.info("SMS to %s sent (%s)", mask_mobile(mobile), sid)
    # --8<-- [end:send_sms]


# 自定义任务名 / a name of our own: app.send_task("send_sms2") finds it by this name
@app.task(name="send_sms2")
def send_sms2():
    print("发送短信任务2!!!")
    return "send_sms2: ok"
