import ipaddress
import math

from django.conf import settings
from django_redis import get_redis_connection
from rest_framework.throttling import AnonRateThrottle

# Count this request and start the window on the first one, in one step (a Lua script runs atomically).
# Returns the count and the milliseconds left in the window.
COUNT_REQUEST = """
local n = redis.call('incr', KEYS[1])
if n == 1 or redis.call('pttl', KEYS[1]) < 0 then redis.call('expire', KEYS[1], ARGV[1]) end
return {n, redis.call('pttl', KEYS[1])}
"""


# --8<-- [start:client_address]
def client_address(request):
    """Who sent the request, as one counter: the connecting address, or, only when that address is a
    proxy of ours (TRUSTED_PROXIES), the address that proxy says it forwarded for. An IPv6 client counts
    by its /64: one host is usually given a whole /64, 2**64 addresses to pick from."""
    address = request.META.get("REMOTE_ADDR", "")
    forwarded = [
        hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()
    ]
    # Walk back from the nearest hop while it is one of ours: the first hop we do not run is the client.
    while forwarded and is_trusted(address):
        address = forwarded.pop()
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address  # not an address (a proxy of ours passed on garbage): still one counter
    if ip.version == 6 and ip.ipv4_mapped:  # ::ffff:203.0.113.7 is the IPv4 client 203.0.113.7
        ip = ip.ipv4_mapped
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def is_trusted(address):
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in settings.TRUSTED_PROXIES)
    # --8<-- [end:client_address]


class AtomicAnonRateThrottle(AnonRateThrottle):
    """DRF's per-client throttle (same rates), counted atomically in Redis, per client_address().

    DRF's own throttle reads its history from the cache and writes it back: fifty requests that arrive
    together all read the same history and all pass. Here each request is one INCR in Redis.
    """

    def get_ident(self, request):
        return client_address(request)

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
    """Codes sent per client address (REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["sms"])."""

    scope = "sms"


class SMSVerifyIPThrottle(AtomicAnonRateThrottle):
    """Codes checked per client address: each code allows a few guesses, this caps guessing across numbers."""

    scope = "sms_verify"
