"""Limits against abuse that every app shares: who the client is, rate limits in the shared cache, request body caps.

- `client_ip(request)`: REMOTE_ADDR, or the X-Forwarded-For address that the last trusted proxy saw
  (OURCITY_TRUSTED_PROXIES); a client can not choose its own address by sending the header.
- `rate_limited(request, group=, rate=, key=, count=True)`: counts one request against a limit kept in the shared
  cache (Redis: a fixed window per limit and key), so every app server sees the same count; returns the seconds to
  wait when over it (count=False: only looks whether the allowance is used up). `rate_limits(request, limits)` does
  the same for several limits of one request in ONE round trip to Redis (a pipeline).
- `BodySizeLimitMiddleware`: refuses a body larger than its URL's cap (settings.REQUEST_BODY_LIMITS) before a
  byte of it is read.

The answers (429, 413) are each app's own, in its format: the apps name them in settings (dotted paths).
"""
import ipaddress
import logging
import re
import time
import zlib
from dataclasses import dataclass
from functools import lru_cache

import redis
from django.conf import settings
from django.core.cache import caches
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from .env import RATE_RE

log = logging.getLogger(__name__)
FAIL_CLOSED_WAIT = 60  # seconds: the Retry-After while the cache is down and limits fail closed

# --- who the client is ----------------------------------------------------------------------------------

# Process-local memo: parsed settings, which never change while the process lives.
@lru_cache(maxsize=8)
def _networks(proxies):
    nets = []
    for item in proxies:
        try:
            nets.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ImproperlyConfigured(f"OURCITY_TRUSTED_PROXIES: {item!r} is not an IP address or network") from None
    return tuple(nets)


def _address(text):
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def client_ip(request):
    """The client's address: REMOTE_ADDR, unless that is a trusted proxy; then X-Forwarded-For is read from the
    right, past every trusted proxy, and the first address that is not one is the client's. What a client sends
    in the header before the first untrusted hop is ignored, so it can not pick its own address."""
    remote = _address(request.META.get("REMOTE_ADDR", "")) or ipaddress.ip_address("0.0.0.0")
    trusted = _networks(tuple(settings.TRUSTED_PROXIES))
    if not trusted or not any(remote in net for net in trusted):
        return str(remote)
    hops = [h for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
    client = remote
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:  # garbage in the header: stop at the last address a trusted proxy vouched for
            break
        client = address
        if not any(address in net for net in trusted):
            break
    return str(client)


def client_key(request):
    """What a per-client rate limit counts: the client's address; for IPv6 its /64, which one subscriber holds
    whole (a client hopping between the addresses of its own /64 is still one client)."""
    address = ipaddress.ip_address(client_ip(request))
    if address.version == 6:
        if address.ipv4_mapped:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


# --- rate limits ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Limit:
    """One limit of a request: `group` (what is limited), `rate` (N/period: 5/m, 100/h, 10/5m), `key` (whose count:
    a client address, an API key id) and `count` (False: only look whether the allowance is used up)."""

    group: str
    rate: str
    key: object
    count: bool = True


_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@lru_cache(maxsize=64)
def parse_rate(rate):
    """"10/5m" -> (10, 300): the allowance and the window's length in seconds."""
    rate = str(rate).strip()
    if not RATE_RE.match(rate):
        raise ImproperlyConfigured(f"a rate limit must look like 5/m, 100/h or 10/5m, got {rate!r}")
    allowed, per = rate.split("/")
    return int(allowed), int(per[:-1] or 1) * _UNIT[per[-1]]


def _window_end(value, period, now):
    """The end of the fixed window that `now` falls in. Windows of different keys are staggered (by a hash of the
    key) so that every client's allowance does not come back in the same second."""
    if period == 1:
        return now + 1
    end = now - now % period + zlib.crc32(value.encode()) % period
    return end + period if end <= now else end


@lru_cache(maxsize=8)
def _client(location, options):
    """One Redis client (and its connection pool) per process and cache configuration, reused by every request."""
    return redis.Redis(connection_pool=redis.ConnectionPool.from_url(location, **dict(options)))


def _cache_redis():
    """(the Redis client of the cache that holds the counts, that cache): settings.RATELIMIT_USE_CACHE, which must
    be a Redis cache (django.core.cache.backends.redis.RedisCache); its first server takes the writes."""
    alias = settings.RATELIMIT_USE_CACHE
    config = settings.CACHES[alias]
    if not config["BACKEND"].endswith("RedisCache"):
        raise ImproperlyConfigured(f"CACHES[{alias!r}] holds the rate limits: it must be a RedisCache")
    location = config["LOCATION"]
    location = (location.split(",") if isinstance(location, str) else list(location))[0].strip()
    return _client(location, tuple(sorted(config.get("OPTIONS", {}).items()))), caches[alias]


def rate_limits(request, limits):
    """Count (or look at) each of `limits` for this request, in one round trip to the shared Redis; for each, None
    while within it, else the seconds until its window ends (at least 1: the Retry-After).

    A counted limit is over once this request is one too many; a looked-at one (count=False) once the allowance is
    already used up, so that a limit of failures refuses before the next attempt is even tried (open311's wrong
    api_keys). Each count lives in the cache's key space (its KEY_PREFIX), for its window's length and no longer.
    """
    try:
        client, cache = _cache_redis()
        now = int(time.time())
        pipe = client.pipeline(transaction=False)
        windows = []
        for limit in limits:
            allowed, period = parse_rate(limit.rate)
            end = _window_end(f"{limit.group}:{limit.key}", period, now)
            name = cache.make_key(f"{settings.RATELIMIT_CACHE_PREFIX}{limit.group}:{limit.key}:{period}:{end}")
            if limit.count:
                pipe.incr(name)
                pipe.expireat(name, end)
            else:
                pipe.get(name)
            windows.append((limit, allowed, end))
        replies = iter(pipe.execute())
    except (redis.RedisError, OSError) as exc:
        # The shared cache is down: by default the service keeps taking requests (login lockouts live in the
        # database and still hold); RATELIMIT_FAIL_OPEN = False refuses them instead.
        log.error("rate limits %s not counted, the cache is unreachable: %s",
                  ", ".join(limit.group for limit in limits), exc)
        return [None if settings.RATELIMIT_FAIL_OPEN else FAIL_CLOSED_WAIT for _limit in limits]
    waits = []
    for limit, allowed, end in windows:
        used = int(next(replies) or 0)
        if limit.count:
            next(replies)  # the expiry
        over = used > allowed if limit.count else used >= allowed
        waits.append(max(1, end - now) if over else None)
    return waits


def rate_limited(request, *, group, rate, key, count=True):
    """Count this request in `group` for `key` (a client address, an API key id) against `rate`; None while
    within it, else the seconds until the window ends (at least 1: the Retry-After). count=False only looks
    (rate_limits)."""
    return rate_limits(request, [Limit(group, rate, key, count)])[0]


# --- request body caps ----------------------------------------------------------------------------------

# Process-local memo: compiled settings, which never change while the process lives.
@lru_cache(maxsize=1)
def _limits(spec):
    return [(re.compile(pattern), limit, responder, import_string(condition[0]) if condition else None)
            for pattern, limit, responder, *condition in spec]


def body_limit(path, request=None):
    """(the cap in bytes, the dotted path of the view that answers 413) of the first REQUEST_BODY_LIMITS entry
    whose pattern matches the path; an entry names its cap in bytes or by the setting that holds it. An entry may
    name a fourth thing, the dotted path of a condition `(request) -> bool` (the app's own rule, e.g. who may send
    a dataset): it applies only to a request that meets it (never without a request); else the next entry does."""
    for pattern, limit, responder, condition in _limits(tuple(tuple(e) for e in settings.REQUEST_BODY_LIMITS)):
        if pattern.search(path) and (condition is None or (request is not None and condition(request))):
            return getattr(settings, limit) if isinstance(limit, str) else limit, \
                responder or settings.REQUEST_LIMIT_RESPONDER
    return None, None


class BodySizeLimitMiddleware:
    """Refuse a body over its URL's cap with 413 before any of it is read; put after LocaleMiddleware (the answer
    is in the visitor's language) and AuthenticationMiddleware (a cap may depend on the user, read from the
    session), and before anything that reads the body (CSRF's process_view does, after every __call__ has run).

    The declared Content-Length is all there is to check: Django reads at most that many bytes of a body
    (WSGIRequest's LimitedStream), and a body without one (chunked) as empty; so nothing past the cap is ever read,
    neither form fields (also bounded by DATA_UPLOAD_MAX_MEMORY_SIZE) nor files (which that setting does not
    cover, and which the upload handlers would otherwise write to a temporary file first).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        limit, responder = body_limit(request.path_info, request)
        if limit is not None and _declared_length(request) > limit:
            return import_string(responder)(request, limit)
        return self.get_response(request)


def _declared_length(request):
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0  # as Django reads it: no body
