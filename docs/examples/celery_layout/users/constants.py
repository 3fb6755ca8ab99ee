# 短信验证码的有效期 [秒] / how long a code stays valid [s]
SMS_EXPIRE_TIME = 5 * 60
# 同一个手机号两次发送短信的间隔 [秒] / seconds between two SMS to one number
SMS_INTERVAL_TIME = 60
# 短信模板 ID; "1" is Ronglian's test template / 容联云的测试模板
SMS_TEMPLATE_ID = 1
