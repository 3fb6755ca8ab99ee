from rest_framework.throttling import AnonRateThrottle


class SMSCodeIPThrottle(AnonRateThrottle):
    """Codes per client IP (rate: REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["sms"]), counted in Redis."""

    scope = "sms"
