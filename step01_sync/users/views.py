import random

from django.conf import settings
from django.views.generic import TemplateView
from django_redis import get_redis_connection
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from . import constants
from .ronglian import send_template_sms


class IndexView(TemplateView):
    """The demo page: a mobile field, the 获取验证码 button and a simulated phone."""

    template_name = "users/index.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["inbox_url"] = settings.SMS_GATEWAY_INBOX_URL
        context["interval"] = constants.SMS_INTERVAL_TIME
        return context


# --8<-- [start:view]
class SMSCodeAPIView(APIView):
    def get(self, request, mobile):
        """发送短信验证码 / send an SMS verification code"""
        redis = get_redis_connection("sms_code")
        # 1. 判断手机号码是否在60秒内曾经发送过短信
        # --8<-- [start:interval]
        if redis.get("interval_%s" % mobile):
            return Response(
                {"message": "对不起,60秒内已经发送过短信了,请耐心等待"},
                status=status.HTTP_400_BAD_REQUEST,
            )
        # --8<-- [end:interval]

        # 2. 生成短信验证码
        # --8<-- [start:code]
        sms_code = "%04d" % random.randint(0, 9999)
        # --8<-- [end:code]

        # 3. 发送短信: the user waits here until the SMS provider answers
        # --8<-- [start:send]
        ok = send_template_sms(mobile, [sms_code, constants.SMS_EXPIRE_TIME // 60], constants.SMS_TEMPLATE_ID)
        if not ok:
            return Response({"message": "短信发送失败,请稍后再试"}, status=status.HTTP_502_BAD_GATEWAY)
        # --8<-- [end:send]

        # 4. 保存短信验证码和发送间隔
        pipe = redis.pipeline()
        pipe.multi()
        pipe.setex("sms_%s" % mobile, constants.SMS_EXPIRE_TIME, sms_code)
        pipe.setex("interval_%s" % mobile, constants.SMS_INTERVAL_TIME, "_")
        pipe.execute()

        # 5. 响应发送短信的结果
        return Response({"message": "短信已经发送,请留意您的手机"})
        # --8<-- [end:view]
