"""Send a template SMS through Ronglian Cloud (容联云通讯) with its official SDK."""

import json

from django.conf import settings
from ronglian_sms_sdk import SmsSDK


def send_template_sms(mobile, datas, template_id):
    """发送模板短信: True if Ronglian accepted the message."""
    sdk = SmsSDK(settings.RONGLIAN_ACC_ID, settings.RONGLIAN_ACC_TOKEN, settings.RONGLIAN_APP_ID)
    # The SDK's address is a class attribute; point it at the gateway from settings.
    sdk.url = settings.RONGLIAN_BASE_URL
    result = json.loads(sdk.sendMessage(str(template_id), mobile, tuple(datas)))
    return result.get("statusCode") == "000000"
