import logging

from django_redis import get_redis_connection
from redis.exceptions import RedisError

from mycelery.main import app

from . import constants
from .ronglian import AmbiguousSMSError, PermanentSMSError, TransientSMSError, get_client, mask_mobile

# Named after the module (mycelery.sms.tasks), not the chapter's "django" logger: each line says which
# module wrote it, and LOGGING's root handler, which masks numbers, takes it.
logger = logging.getLogger(__name__)

# --8<-- [start:claim_script]
# Take the claim for this attempt, in one step. It is free, or it was left by an earlier attempt of this
# same retry chain that never called the provider (Redis applied the claim, its answer was lost, and
# the task was retried): then it is taken again. Anything else (sent, refused, unknown, or another
# delivery's attempt) comes back as it is, and the provider is not called.
CLAIM = """
local held = redis.call('get', KEYS[1])
if held then
  local attempt = string.match(held, '^sending:(%d+)$')
  if not attempt or tonumber(attempt) >= tonumber(ARGV[1]) then return held end
end
redis.call('set', KEYS[1], 'sending:' .. ARGV[1], 'EX', ARGV[2])
return false
"""
# --8<-- [end:claim_script]


# 默认任务名: 模块路径 + 函数名 / default name: "mycelery.sms.tasks.send_sms"
# --8<-- [start:send_sms]
@app.task(
    bind=True,
    # Not sent: retried after about 1, 2, 4, 8, 16 s (jitter spreads them out), then given up.
    # A Redis error comes before the provider is called (the claim below), so retrying it is safe.
    autoretry_for=(TransientSMSError, RedisError),
    retry_backoff=1,
    retry_backoff_max=30,
    retry_jitter=True,
    max_retries=5,
    # A code is useless once expired: drop the message if no worker started it in time.
    expires=constants.SMS_EXPIRE_TIME,
    # Nobody reads the result; not storing it also keeps the result backend empty.
    ignore_result=True,
)
def send_sms(self, ref):
    """发送短信 / send the SMS that ``ref`` names: at most one call to the provider per request.

    The message carries only ``ref``, a random name: the number and the code stay in Redis, out of
    the broker, ``celery inspect``, events and Flower. The code is read when the SMS is sent, so a
    code that was used, replaced or expired meanwhile is never sent.
    """
    redis = get_redis_connection("sms_code")
    mobile = (redis.get(f"sms_send_{ref}") or b"").decode()
    sms_code = redis.get(f"sms_{mobile}") if mobile else None
    if not sms_code:
        logger.info("SMS %s: its code has expired or was used; not sending it", ref)
        return

    # --8<-- [start:claim]
    # 先占位,再发送 / claim, then call: of all deliveries of this message (a redelivery after a crash,
    # a duplicate), only the one that takes the claim calls the provider; a retry takes it again.
    claim = f"sms_claim_{ref}"
    held = redis.eval(CLAIM, 1, claim, self.request.retries, constants.SMS_EXPIRE_TIME)
    if held is not None:
        state = held.decode().split(":")[0]  # sending, sent, refused, unknown
        logger.info("SMS to %s: already %s; not calling the provider again", mask_mobile(mobile), state)
        return
    try:
        sid = get_client().send_template_sms(
            mobile, [sms_code.decode(), constants.SMS_EXPIRE_TIME // 60], constants.SMS_TEMPLATE_ID
        )
    except TransientSMSError:
        redis.delete(claim)  # the provider did not take it: the retry may claim it again
        raise
    except AmbiguousSMSError as exc:
        # It may be on the phone already: never twice. The user can ask again after the interval.
        logger.warning("SMS to %s may have been sent (%s): not retrying", mask_mobile(mobile), exc)
        settle(redis, claim, "unknown")
        return
    except PermanentSMSError as exc:
        logger.error("SMS to %s refused, not retrying: %s", mask_mobile(mobile), exc)
        settle(redis, claim, "refused")
        return
    logger.info("SMS to %s sent (%s)", mask_mobile(mobile), sid)
    settle(redis, claim, "sent")
    # --8<-- [end:claim]
    # --8<-- [end:send_sms]


def settle(redis, claim, state):
    """Record how the call ended. The claim stays taken whatever it says: this request is done."""
    try:
        redis.set(claim, state, ex=constants.SMS_EXPIRE_TIME)
    except RedisError:
        pass  # it still says "sending": no other delivery will call the provider either
