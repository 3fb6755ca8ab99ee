import logging
import re

from mycelery.sms.ronglian import mask_mobile

# A mainland mobile number anywhere in a log line (in a URL path, for example).
MOBILE_IN_TEXT = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)", re.ASCII)


class MaskMobileFilter(logging.Filter):
    """Mask every mobile number in a log record, including Django's own lines that quote the URL."""

    def filter(self, record):
        message = record.getMessage()
        masked = MOBILE_IN_TEXT.sub(lambda match: mask_mobile(match.group()), message)
        if masked != message:
            record.msg, record.args = masked, None
        return True
