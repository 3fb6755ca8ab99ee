import json

from celery import shared_task
from django.conf import settings
from ronglian_sms_sdk import SmsSDK

from .constants import SMS_EXPIRE_TIME, SMS_TEMPLATE_ID


# --8<-- [start:send_sms]
# @shared_task, not @app.task: this module does not import the project, and the task binds to the app
# that renranapi/__init__.py imported. Its default name is "users.tasks.send_sms".
@shared_task(ignore_result=True)
def send_sms(mobile, sms_code):
    """发送短信 / send the SMS, in the worker. Step 4's client and claim would sit here in users/ too."""
    sdk = SmsSDK(settings.RONGLIAN_ACC_ID, settings.RONGLIAN_ACC_TOKEN, settings.RONGLIAN_APP_ID)
    sdk.url = settings.RONGLIAN_BASE_URL
    result = json.loads(sdk.sendMessage(str(SMS_TEMPLATE_ID), mobile, (sms_code, SMS_EXPIRE_TIME // 60)))
    if result.get("statusCode") != "000000":
        # Raised, not swallowed: the worker logs the failure and the task's state says FAILURE.
        raise RuntimeError(f"Ronglian did not send the SMS: statusCode {result.get('statusCode')}")
    # --8<-- [end:send_sms]
