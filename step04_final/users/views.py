import hmac
import logging
import math
import secrets

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from django.views.generic import TemplateView
from django_redis import get_redis_connection
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import RedisError
from rest_framework import status
from rest_framework.exceptions import MethodNotAllowed
from rest_framework.response import Response
from rest_framework.views import APIView

from mycelery.sms import constants
from mycelery.sms.ronglian import mask_mobile
from mycelery.sms.tasks import send_sms

from . import health, limits
from .exceptions import SERVICE_UNAVAILABLE
from .permissions import SameOriginOnly
from .serializers import MobileSerializer, SMSCodeVerifySerializer
from .throttling import SMSCodeIPThrottle, SMSVerifyIPThrottle

logger = logging.getLogger(__name__)

SENT = _("The SMS has been sent: check your phone.")
INTERVAL = _("A code was sent to this number less than %(seconds)d seconds ago: please wait.")
VERIFIED = _("Verified.")
# One answer for a wrong code, a used or expired one, and a number with no code: told apart, they would
# tell anyone whether a number has a code waiting (OWASP: the same answer whether or not it exists).
WRONG_CODE = _(
    "The code is wrong or no longer valid. Each code allows %(attempts)d tries; "
    "if it has expired, ask for a new one."
)
WRONG_TODAY = _("Too many wrong codes for this number today: please try again tomorrow.")
USE_POST = _(
    'Ask for a code with POST /users/sms/ and the JSON body {"mobile": "..."}: this address sends nothing.'
)


class IndexView(TemplateView):
    """The demo page: a mobile field, the 获取验证码 button, a box to verify the code, a simulated phone."""

    template_name = "users/index.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["inbox_url"] = settings.SMS_GATEWAY_INBOX_URL
        context["interval"] = constants.SMS_INTERVAL_TIME
        return context


def too_many(message, retry_after):
    return Response(
        {"error": message, "retry_after": retry_after},
        status=status.HTTP_429_TOO_MANY_REQUESTS,
        headers={"Retry-After": str(retry_after)},
    )


# --8<-- [start:view]
class SMSCodeAPIView(APIView):
    throttle_classes = [SMSCodeIPThrottle]
    permission_classes = [SameOriginOnly]

    def post(self, request):
        """发送短信验证码 / send an SMS verification code: POST {"mobile": "13800138000"}"""
        # 0. 校验手机号 / a mainland mobile number, or 400
        serializer = MobileSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        mobile = serializer.validated_data["mobile"]
        redis = get_redis_connection("sms_code")
        interval_key, code_key = f"interval_{mobile}", f"sms_{mobile}"

        # 1. 发送间隔: one atomic SET NX EX. Of many concurrent requests exactly one gets the lock.
        # --8<-- [start:interval]
        if not redis.set(interval_key, 1, nx=True, ex=constants.SMS_INTERVAL_TIME):
            retry_after = max(redis.ttl(interval_key), 1)
            return too_many(INTERVAL % {"seconds": constants.SMS_INTERVAL_TIME}, retry_after)
        # --8<-- [end:interval]

        # 2. 发送上限 / caps against SMS pumping: per number a day, per number prefix, overall
        # --8<-- [start:caps]
        caps = limits.send_limits(mobile)
        refused, retry_after = limits.take(redis, caps)
        if refused:
            redis.delete(interval_key)
            return too_many(refused.message, retry_after)
        # --8<-- [end:caps]

        # 3. 生成短信验证码: secrets, not random, SMS_CODE_LENGTH digits. The message will carry only `ref`.
        # --8<-- [start:code]
        sms_code = f"{secrets.randbelow(10**constants.SMS_CODE_LENGTH):0{constants.SMS_CODE_LENGTH}d}"
        ref = secrets.token_urlsafe(16)
        pipe = redis.pipeline()
        pipe.setex(code_key, constants.SMS_EXPIRE_TIME, sms_code)
        pipe.delete(f"sms_attempts_{mobile}")
        pipe.setex(f"sms_send_{ref}", constants.SMS_EXPIRE_TIME, mobile)
        pipe.execute()
        # --8<-- [end:code]

        # 4. 交给 Celery: if the broker cannot take the message, give everything back and say so.
        # --8<-- [start:send]
        try:
            send_sms.delay(ref)
        except (BrokerError, RedisError, ConnectionError) as exc:
            logger.warning(
                "Cannot queue the SMS to %s: broker unreachable (%s)", mask_mobile(mobile), type(exc).__name__
            )
            pipe = redis.pipeline()
            pipe.delete(interval_key, code_key, f"sms_send_{ref}")
            limits.give_back(pipe, caps)
            pipe.execute()
            return Response({"error": SERVICE_UNAVAILABLE}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        # --8<-- [end:send]

        logger.info("SMS code for %s queued", mask_mobile(mobile))
        return Response(
            {
                "message": SENT,
                "expires_in": constants.SMS_EXPIRE_TIME,
                "retry_after": constants.SMS_INTERVAL_TIME,
            }
        )
        # --8<-- [end:view]


# --8<-- [start:moved]
class ChapterSMSCodeView(APIView):
    """The chapter's GET users/sms/<mobile>/: reading a URL must not send an SMS (RFC 9110: GET and HEAD
    are safe), or any <img src> on any page could send one from its visitor's address."""

    def http_method_not_allowed(self, request, *args, **kwargs):
        raise MethodNotAllowed(request.method, detail=USE_POST)
        # --8<-- [end:moved]


# --8<-- [start:verify]
class SMSCodeVerifyAPIView(APIView):
    throttle_classes = [SMSVerifyIPThrottle]
    permission_classes = [SameOriginOnly]

    def post(self, request):
        """校验短信验证码 / check a code: one use, a few tries, compared in constant time"""
        serializer = SMSCodeVerifySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        mobile, code = serializer.validated_data["mobile"], serializer.validated_data["code"]
        redis = get_redis_connection("sms_code")
        keys = f"sms_{mobile}", f"sms_attempts_{mobile}", f"sms_wrong_{mobile}"

        # 先计数,再比较 / count first: concurrent guesses cannot slip in before the count catches up
        until_midnight = limits.ms_until_midnight()
        attempt, stored = redis.eval(
            limits.COUNT_ATTEMPT,
            3,
            *keys,
            constants.SMS_EXPIRE_TIME,
            settings.SMS_DAILY_WRONG_LIMIT,
            until_midnight,
        )
        if attempt < 0:
            return too_many(WRONG_TODAY, math.ceil(until_midnight / 1000))
        if 0 < attempt <= constants.SMS_MAX_ATTEMPTS and hmac.compare_digest(stored.decode(), code):
            if redis.eval(limits.USE_CODE, 3, *keys, stored, 1):
                logger.info("SMS code for %s verified", mask_mobile(mobile))
                return Response({"message": VERIFIED})
        elif attempt >= constants.SMS_MAX_ATTEMPTS:
            # The last try of this code was wrong (or it had none left): the code is destroyed.
            redis.eval(limits.USE_CODE, 3, *keys, stored, 0)
            logger.info("SMS code for %s destroyed after %d attempts", mask_mobile(mobile), attempt)
        return Response(
            {"error": WRONG_CODE % {"attempts": constants.SMS_MAX_ATTEMPTS}},
            status=status.HTTP_400_BAD_REQUEST,
        )
        # --8<-- [end:verify]


class HealthView(APIView):
    """Redis, the broker, and a worker on the sms queue: 200 when all is well, else 503 with what is wrong."""

    def get(self, request):
        body = health.check()
        return Response(
            body, status=status.HTTP_503_SERVICE_UNAVAILABLE if body["problems"] else status.HTTP_200_OK
        )
