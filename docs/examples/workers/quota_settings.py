"""Step 4's settings with a limit for the provider's quota (docs/workers.md#rate-limit): the lines between
the markers are what step04_final/renranapi/settings.py would add. To try them as they are, in
step04_final/: DJANGO_SETTINGS_MODULE=quota_settings PYTHONPATH=../docs/examples/workers celery -A ..."""

from renranapi.settings import *  # noqa: F403

# --8<-- [start:annotations]
# The provider accepts 20 SMS a minute from the account, and 2 workers send (docs/hosts.md): 10 each.
CELERY_TASK_ANNOTATIONS = {"mycelery.sms.tasks.send_sms": {"rate_limit": "10/m"}}
# --8<-- [end:annotations]
