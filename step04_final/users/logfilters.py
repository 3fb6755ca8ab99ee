import logging
import re

from mycelery.sms.ronglian import mask_mobile

# A mainland mobile number anywhere in a log line (in a URL path, for example), "+86" or "86" before it
# included: a refused "/users/sms/+8613800138000/" is logged too.
MOBILE_IN_TEXT = re.compile(r"(?<!\d)(\+?86)?(1[3-9]\d{9})(?!\d)", re.ASCII)


class MaskMobileFilter(logging.Filter):
    """Mask every mobile number in a log record, including Django's own lines that quote the URL."""

    def filter(self, record):
        message = record.getMessage()
        masked = MOBILE_IN_TEXT.sub(lambda match: (match[1] or "") + mask_mobile(match[2]), message)
        if masked != message:
            record.msg, record.args = masked, None
        return True
