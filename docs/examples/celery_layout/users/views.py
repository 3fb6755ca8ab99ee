import re
import secrets

from django_redis import get_redis_connection
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from .constants import SMS_EXPIRE_TIME, SMS_INTERVAL_TIME
from .tasks import send_sms


# --8<-- [start:view]
class SMSCodeAPIView(APIView):
    def post(self, request):
        """发送短信验证码 / send an SMS verification code: POST {"mobile": "13800138000"}"""
        mobile = str(request.data.get("mobile", ""))
        if not re.fullmatch(r"1[3-9]\d{9}", mobile):
            return Response({"error": "请输入正确的手机号"}, status=status.HTTP_400_BAD_REQUEST)
        redis = get_redis_connection("sms_code")
        if not redis.set(f"interval_{mobile}", 1, nx=True, ex=SMS_INTERVAL_TIME):
            return Response(
                {"error": "60秒内已经发送过短信了,请耐心等待"}, status=status.HTTP_429_TOO_MANY_REQUESTS
            )
        sms_code = f"{secrets.randbelow(10**6):06d}"
        redis.setex(f"sms_{mobile}", SMS_EXPIRE_TIME, sms_code)
        # The same call as in step 3: a message to the broker, and the response goes back at once.
        send_sms.delay(mobile=mobile, sms_code=sms_code)
        return Response({"message": "短信已经发送,请留意您的手机"})
        # --8<-- [end:view]
