from mycelery.main import app


# 默认任务名: 模块路径 + 函数名 / default name: "mycelery.sms.tasks.send_sms"
@app.task
def send_sms():
    print("发送短信!!!")
    return "send_sms: ok"


# 自定义任务名 / a name of our own: app.send_task("send_sms2") finds it by this name
@app.task(name="send_sms2")
def send_sms2():
    print("发送短信任务2!!!")
    return "send_sms2: ok"
