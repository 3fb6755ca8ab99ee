import logging

from mycelery.main import app

from . import constants
from .ronglian import send_template_sms

logger = logging.getLogger("django")


# 默认任务名: 模块路径 + 函数名 / default name: "mycelery.sms.tasks.send_sms"
# --8<-- [start:send_sms]
@app.task
def send_sms(mobile, sms_code):
    """发送短信 / send the SMS: this now runs in the worker, not in the request"""
    try:
        ok = send_template_sms(mobile, [sms_code, constants.SMS_EXPIRE_TIME // 60], constants.SMS_TEMPLATE_ID)
        if not ok:
            logger.error("短信发送失败! 手机号: %s" % mobile)
    except:  # noqa: E722 - the chapter's bare except; step 4 replaces it with typed errors
        logger.error("发送短信服务出现网络异常!")
        # --8<-- [end:send_sms]


# 自定义任务名 / a name of our own: app.send_task("send_sms2") finds it by this name
@app.task(name="send_sms2")
def send_sms2():
    print("发送短信任务2!!!")
    return "send_sms2: ok"
