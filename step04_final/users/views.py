import datetime
import hmac
import logging
import secrets

from django.conf import settings
from django.utils import timezone
from django.views.generic import TemplateView
from django_redis import get_redis_connection
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from mycelery.sms import constants
from mycelery.sms.ronglian import mask_mobile
from mycelery.sms.tasks import send_sms

from .exceptions import SERVICE_UNAVAILABLE
from .serializers import MobileSerializer, SMSCodeVerifySerializer
from .throttling import SMSCodeIPThrottle, SMSVerifyIPThrottle

logger = logging.getLogger(__name__)

# Delete a code only if it is still the one that was checked: two requests cannot both use it.
DELETE_IF_EQUAL = (
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
)
NO_CODE = "验证码不存在或已过期,请重新获取 / no valid code: ask for a new one"
TOO_MANY_ATTEMPTS = "错误次数过多,验证码已失效,请重新获取 / too many wrong attempts: ask for a new code"
# --8<-- [start:count_attempt]
# Count an attempt before comparing, in one step: of any number of concurrent guesses, only the
# first SMS_MAX_ATTEMPTS are compared. Returns the attempt's number and the code, or 0 when there is none.
COUNT_ATTEMPT = """
local code = redis.call('get', KEYS[1])
if not code then return {0, false} end
local n = redis.call('incr', KEYS[2])
redis.call('expire', KEYS[2], ARGV[1])
return {n, code}
"""
# --8<-- [end:count_attempt]


class IndexView(TemplateView):
    """The demo page: a mobile field, the 获取验证码 button and a simulated phone."""

    template_name = "users/index.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["inbox_url"] = settings.SMS_GATEWAY_INBOX_URL
        context["interval"] = constants.SMS_INTERVAL_TIME
        return context


def delete_code(redis, code_key, attempts_key, stored):
    """Delete the code and its count if the code is still ``stored`` (not used meanwhile, not replaced by
    a new one); True when this call deleted it."""
    if redis.eval(DELETE_IF_EQUAL, 1, code_key, stored):
        redis.delete(attempts_key)
        return True
    return False


def too_many(message, retry_after):
    return Response(
        {"error": message, "retry_after": retry_after},
        status=status.HTTP_429_TOO_MANY_REQUESTS,
        headers={"Retry-After": str(retry_after)},
    )


def seconds_until_midnight():
    now = timezone.localtime()
    midnight = (now + datetime.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(int((midnight - now).total_seconds()), 1)


# --8<-- [start:view]
class SMSCodeAPIView(APIView):
    throttle_classes = [SMSCodeIPThrottle]

    def get(self, request, mobile):
        """发送短信验证码 / send an SMS verification code"""
        # 0. 校验手机号 / a mainland mobile number, or 400
        MobileSerializer(data={"mobile": mobile}).is_valid(raise_exception=True)
        redis = get_redis_connection("sms_code")
        interval_key, code_key = f"interval_{mobile}", f"sms_{mobile}"

        # 1. 发送间隔: one atomic SET NX EX. Of many concurrent requests exactly one gets the lock.
        # --8<-- [start:interval]
        if not redis.set(interval_key, 1, nx=True, ex=constants.SMS_INTERVAL_TIME):
            retry_after = max(redis.ttl(interval_key), 1)
            return too_many(
                "对不起,60秒内已经发送过短信了,请耐心等待 / wait before asking for another code", retry_after
            )
        # --8<-- [end:interval]

        # 2. 每日上限 / a daily cap per number, against SMS bombing
        # --8<-- [start:daily]
        daily_key = f"sms_daily_{mobile}_{timezone.localdate():%Y%m%d}"
        pipe = redis.pipeline()
        pipe.incr(daily_key)
        pipe.expire(daily_key, seconds_until_midnight())
        sent_today, _ = pipe.execute()
        if sent_today > settings.SMS_DAILY_LIMIT:
            redis.delete(interval_key)
            return too_many(
                "今天该号码获取验证码的次数已达上限 / this number has had its codes for today",
                seconds_until_midnight(),
            )
        # --8<-- [end:daily]

        # 3. 生成短信验证码: secrets, not random; 6 digits
        # --8<-- [start:code]
        sms_code = f"{secrets.randbelow(10**constants.SMS_CODE_LENGTH):0{constants.SMS_CODE_LENGTH}d}"
        pipe = redis.pipeline()
        pipe.setex(code_key, constants.SMS_EXPIRE_TIME, sms_code)
        pipe.delete(f"sms_attempts_{mobile}")
        pipe.execute()
        # --8<-- [end:code]

        # 4. 交给 Celery: if the broker cannot take the message, give everything back and say so.
        #    apply_async is .delay with options: here, what the monitoring tools may show.
        # --8<-- [start:send]
        try:
            send_sms.apply_async(
                kwargs={"mobile": mobile, "sms_code": sms_code},
                # What logs, events and Flower show instead of the arguments: no code, a masked number.
                kwargsrepr=repr({"mobile": mask_mobile(mobile), "sms_code": "******"}),
            )
        except (BrokerError, RedisError, ConnectionError) as exc:
            logger.warning(
                "Cannot queue the SMS to %s: broker unreachable (%s)", mask_mobile(mobile), type(exc).__name__
            )
            pipe = redis.pipeline()
            pipe.delete(interval_key, code_key)
            pipe.decr(daily_key)
            pipe.execute()
            return Response({"error": SERVICE_UNAVAILABLE}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        # --8<-- [end:send]

        logger.info("SMS code for %s queued", mask_mobile(mobile))
        return Response(
            {
                "message": "短信已经发送,请留意您的手机",
                "expires_in": constants.SMS_EXPIRE_TIME,
                "retry_after": constants.SMS_INTERVAL_TIME,
            }
        )
        # --8<-- [end:view]


# --8<-- [start:verify]
class SMSCodeVerifyAPIView(APIView):
    throttle_classes = [SMSVerifyIPThrottle]

    def post(self, request):
        """校验短信验证码 / check a code: one use, 5 attempts, compared in constant time"""
        serializer = SMSCodeVerifySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        mobile, code = serializer.validated_data["mobile"], serializer.validated_data["code"]
        redis = get_redis_connection("sms_code")
        code_key, attempts_key = f"sms_{mobile}", f"sms_attempts_{mobile}"

        # 先计数,再比较 / count first: concurrent guesses cannot slip in before the count catches up
        attempt, stored = redis.eval(COUNT_ATTEMPT, 2, code_key, attempts_key, constants.SMS_EXPIRE_TIME)
        if not attempt:
            return Response({"error": NO_CODE}, status=400)
        if attempt > constants.SMS_MAX_ATTEMPTS:
            delete_code(redis, code_key, attempts_key, stored)
            return Response({"error": TOO_MANY_ATTEMPTS}, status=400)
        if hmac.compare_digest(stored.decode(), code) and delete_code(redis, code_key, attempts_key, stored):
            logger.info("SMS code for %s verified", mask_mobile(mobile))
            return Response({"message": "验证成功 / verified"})

        if attempt == constants.SMS_MAX_ATTEMPTS:
            delete_code(redis, code_key, attempts_key, stored)
            logger.info("SMS code for %s destroyed after %d wrong attempts", mask_mobile(mobile), attempt)
            return Response({"error": TOO_MANY_ATTEMPTS}, status=400)
        left = constants.SMS_MAX_ATTEMPTS - attempt
        return Response(
            {"error": f"验证码错误,还可以再试{left}次 / wrong code, {left} attempts left"}, status=400
        )
        # --8<-- [end:verify]


# --8<-- [start:health]
class HealthView(APIView):
    """Redis, the broker, and a worker on the sms queue: 200 when all is well, else 503 with what is wrong."""

    def get(self, request):
        from mycelery.main import app

        body = {"redis": "ok", "broker": "ok", "workers": []}
        try:
            get_redis_connection("sms_code").ping()
        except (RedisError, ConnectionError) as exc:
            body["redis"] = f"unreachable ({type(exc).__name__})"
        try:
            with app.connection_for_write() as conn:
                # Two quick tries, no waiting between them (kombu's default waits), then a PING.
                conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=0.5)
                conn.default_channel.client.ping()
            # Workers that consume the sms queue: one started without "-Q sms" would never send a code.
            replies = app.control.inspect(timeout=1.0).active_queues() or {}
            body["workers"] = sorted(
                name for name, queues in replies.items() if any(q["name"] == "sms" for q in queues)
            )
        except (BrokerError, RedisError, ConnectionError, OSError) as exc:
            body["broker"] = f"unreachable ({type(exc).__name__})"
        problems = [name for name in ("redis", "broker") if body[name] != "ok"]
        if not body["workers"]:
            problems.append("workers: no worker consumes the sms queue")
        body = {"status": "unhealthy" if problems else "ok", "problems": problems, **body}
        return Response(body, status=status.HTTP_503_SERVICE_UNAVAILABLE if problems else status.HTTP_200_OK)
        # --8<-- [end:health]
