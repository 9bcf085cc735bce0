"""The shared cache (settings.CACHES, Redis) as an optimisation only: every use degrades when it is unreachable.

`cached(key, compute, timeout)` answers from the cache, or computes (and stores) the value; when the cache can
not be reached it logs and computes, so a page never fails for want of Redis. The rate limits keep their own
policy for that case (geo_ourcity.limits, RATELIMIT_FAIL_OPEN).
"""
import logging

from django.core.cache import cache
from redis.exceptions import RedisError

log = logging.getLogger(__name__)
UNREACHABLE = (RedisError, OSError)


def cached(key, compute, timeout):
    try:
        value = cache.get(key)
    except UNREACHABLE as exc:
        log.error("cache unreachable, %s computed without it: %s", key, exc)
        return compute()
    if value is None:
        value = compute()
        try:
            cache.set(key, value, timeout)
        except UNREACHABLE as exc:
            log.error("cache unreachable, %s not stored: %s", key, exc)
    return value
