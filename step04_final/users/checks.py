"""`manage.py check --deploy`: a Redis or a broker on another machine needs a password.

On 127.0.0.1 only this machine reaches it. On any other address, whoever reaches the port could read
every code and queue any task, so a URL without a password is refused (docs/hosts.md).
"""

import ipaddress
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Tags, register

URLS = ("REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND")


def on_this_machine(host: str | None) -> bool:
    if not host or host == "localhost":  # no host: a Unix socket
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name: another machine's
        return False


# --8<-- [start:check]
@register(Tags.security, deploy=True)
def services_need_passwords(app_configs, **kwargs):
    errors = []
    for name in URLS:
        url = urlsplit(getattr(settings, name))
        if on_this_machine(url.hostname):
            continue
        if not url.password:
            errors.append(Error(
                f"{name} reaches {url.hostname}:{url.port} without a password.",
                hint="Another machine's Redis or RabbitMQ must ask for one: redis://:PASSWORD@host:6379, "
                     "amqp://user:PASSWORD@host:5672//, with the password from the environment.",
                id="users.E001",
            ))  # fmt: skip
        elif url.scheme.startswith(("amqp", "pyamqp")) and url.username == "guest":
            errors.append(Error(
                f"{name} logs in as guest on {url.hostname}: RabbitMQ refuses guest from other machines.",
                hint="Create a user of your own: rabbitmqctl add_user sms PASSWORD.",
                id="users.E002",
            ))  # fmt: skip
    return errors
    # --8<-- [end:check]
