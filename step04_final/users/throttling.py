import math

from django_redis import get_redis_connection
from rest_framework.throttling import AnonRateThrottle

# Count this request and start the window on the first one, in one step (a Lua script runs atomically).
# Returns the count and the milliseconds left in the window.
COUNT_REQUEST = """
local n = redis.call('incr', KEYS[1])
if n == 1 or redis.call('pttl', KEYS[1]) < 0 then redis.call('expire', KEYS[1], ARGV[1]) end
return {n, redis.call('pttl', KEYS[1])}
"""


class AtomicAnonRateThrottle(AnonRateThrottle):
    """DRF's per-IP throttle (same rates, same client address rules), counted atomically in Redis.

    DRF's own throttle reads its history from the cache and writes it back: fifty requests that arrive
    together all read the same history and all pass. Here each request is one INCR in Redis.
    """

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        redis = get_redis_connection("default")
        count, pttl = redis.eval(COUNT_REQUEST, 1, self.key, self.duration)
        self.wait_seconds = max(math.ceil(pttl / 1000), 1)
        return count <= self.num_requests

    def wait(self):
        return self.wait_seconds


class SMSCodeIPThrottle(AtomicAnonRateThrottle):
    """Codes sent per client IP (REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["sms"])."""

    scope = "sms"


class SMSVerifyIPThrottle(AtomicAnonRateThrottle):
    """Codes checked per client IP: each code allows 5 guesses, this caps guessing across numbers."""

    scope = "sms_verify"
