"""Limits against SMS pumping and code guessing, each counted in Redis by one Lua script.

Redis runs a script from start to end with nothing in between, so however many requests arrive
together, each limit lets exactly its number through: no check-then-set race (see the interval).
"""

import datetime
import math
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
DAILY = _("This number has had all its codes for today.")
PREFIX = _("Too many codes were sent to numbers like this one: please try again later.")
GLOBAL = _("The SMS service is busy: please try again shortly.")

# --8<-- [start:take]
# Check every counter first; only if all are under their limits, count this send in each.
# Returns {0, 0}, or {which limit refused (1-based), milliseconds until it resets}.
TAKE = """
for i, key in ipairs(KEYS) do
  if tonumber(redis.call('get', key) or '0') >= tonumber(ARGV[2 * i - 1]) then
    return {i, redis.call('pttl', key)}
  end
end
for i, key in ipairs(KEYS) do
  if redis.call('incr', key) == 1 or redis.call('pttl', key) < 0 then redis.call('pexpire', key, ARGV[2 * i]) end
end
return {0, 0}
"""
# Uncount: only in a window that still exists (one that has ended meanwhile is not brought back as -1).
GIVE_BACK = """
for _, key in ipairs(KEYS) do
  if redis.call('exists', key) == 1 then redis.call('decr', key) end
end
"""
# --8<-- [end:take]


@dataclass
class Limit:
    key: str
    count: int
    window_ms: int
    message: str


def rate(text):
    """ "20/hour" (DRF's notation) as (20, the window in milliseconds)."""
    count, period = text.split("/")
    return int(count), PERIODS[period.strip()[0]] * 1000


def ms_until_midnight():
    now = timezone.localtime()
    midnight = (now + datetime.timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(int((midnight - now).total_seconds() * 1000), 1000)


# --8<-- [start:send_limits]
def send_limits(mobile):
    """The caps a send must pass besides the interval: per number a day, per number prefix, overall."""
    daily, prefix, overall = (
        settings.SMS_DAILY_LIMIT,
        rate(settings.SMS_PREFIX_RATE),
        rate(settings.SMS_GLOBAL_RATE),
    )
    return [
        Limit(f"sms_daily_{mobile}", daily, ms_until_midnight(), DAILY),
        Limit(f"sms_prefix_{mobile[:-4]}", *prefix, PREFIX),
        Limit("sms_global", *overall, GLOBAL),
    ]
    # --8<-- [end:send_limits]


def take(redis, limits):
    """Count one send in every limit, or in none: the Limit that refused and the seconds to wait."""
    args = [value for limit in limits for value in (limit.count, limit.window_ms)]
    refused, pttl = redis.eval(TAKE, len(limits), *[limit.key for limit in limits], *args)
    if not refused:
        return None, 0
    return limits[refused - 1], max(math.ceil(pttl / 1000), 1)


def give_back(pipe, limits):
    """Uncount a send that did not happen (the broker refused it), in a pipeline of the caller's."""
    pipe.eval(GIVE_BACK, len(limits), *[limit.key for limit in limits])


# --8<-- [start:count_attempt]
# Count an attempt before comparing, in one step: of any number of concurrent guesses, only the first
# SMS_MAX_ATTEMPTS are compared, and only SMS_DAILY_WRONG_LIMIT a day per number, across codes.
# Returns {-1} when the number's guesses for today are used up, {0} when it has no code (nothing is
# counted), else {this attempt's number, the code}.
COUNT_ATTEMPT = """
if tonumber(redis.call('get', KEYS[3]) or '0') >= tonumber(ARGV[2]) then return {-1, false} end
local code = redis.call('get', KEYS[1])
if not code then return {0, false} end
local n = redis.call('incr', KEYS[2])
redis.call('expire', KEYS[2], ARGV[1])
if redis.call('incr', KEYS[3]) == 1 then redis.call('pexpire', KEYS[3], ARGV[3]) end
return {n, code}
"""
# --8<-- [end:count_attempt]

# Delete the code only if it is still the one that was checked: two requests cannot both use it, and a
# newer code sent meanwhile is left alone. A right code was not a wrong guess: take it off the count.
USE_CODE = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('del', KEYS[1], KEYS[2])
if ARGV[2] == '1' and redis.call('exists', KEYS[3]) == 1 then redis.call('decr', KEYS[3]) end
return 1
"""
