"""Limits against abuse that every app shares: who the client is, rate limits in the shared cache, request body caps.

- `client_ip(request)`: REMOTE_ADDR, or the X-Forwarded-For address that the last trusted proxy saw
  (OURCITY_TRUSTED_PROXIES); a client can not choose its own address by sending the header.
- `rate_limited(request, group=, rate=, key=)`: counts one request against a limit kept in the shared cache (Redis;
  django-ratelimit's windows), so every app server sees the same count; returns the seconds to wait when over it.
- `BodySizeLimitMiddleware`: refuses a body larger than its URL's cap (settings.REQUEST_BODY_LIMITS) before it is
  read: a declared Content-Length at once, a streamed (chunked) upload as soon as it passes the cap.

The answers (429, 413) are each app's own, in its format: the apps name them in settings (dotted paths).
"""
import ipaddress
import re
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.uploadhandler import FileUploadHandler
from django.utils.module_loading import import_string
from django_ratelimit.core import get_usage

# --- who the client is ----------------------------------------------------------------------------------

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


# --- rate limits ----------------------------------------------------------------------------------------

def rate_limited(request, *, group, rate, key):
    """Count this request in `group` for `key` (a client address, an API key id) against `rate`; None while
    within it, else the seconds until the window ends (at least 1: the Retry-After)."""
    usage = get_usage(request, group=group, key=lambda _group, _request: str(key), rate=rate, increment=True)
    if usage is None or not usage["should_limit"]:
        return None
    return max(1, int(usage["time_left"]))


# --- request body caps ----------------------------------------------------------------------------------

class BodyTooLarge(Exception):
    """A request body passed the cap of its URL."""

    def __init__(self, limit):
        super().__init__(f"request body larger than {limit} bytes")
        self.limit = limit


class CappedUploadHandler(FileUploadHandler):
    """First of a request's upload handlers: stops the parse as soon as the file data passes the cap, before
    the handlers after it (memory, temporary file) get the chunk that passes it."""

    def __init__(self, request, limit):
        super().__init__(request)
        self.limit, self.received = limit, 0

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > self.limit:
            raise BodyTooLarge(self.limit)
        return raw_data

    def file_complete(self, file_size):
        return None


@lru_cache(maxsize=1)
def _limits(spec):
    return [(re.compile(pattern), limit, responder) for pattern, limit, responder in spec]


def body_limit(path):
    """(the cap in bytes, the dotted path of the view that answers 413) of the first REQUEST_BODY_LIMITS entry
    whose pattern matches the path; an entry names its cap in bytes or by the setting that holds it."""
    for pattern, limit, responder in _limits(tuple(tuple(e) for e in settings.REQUEST_BODY_LIMITS)):
        if pattern.search(path):
            return getattr(settings, limit) if isinstance(limit, str) else limit, \
                responder or settings.REQUEST_LIMIT_RESPONDER
    return None, None


class BodySizeLimitMiddleware:
    """Refuse a body over its URL's cap with 413 before any of it is read; put before anything that reads the
    body (CSRF does) and after LocaleMiddleware (the answer is in the visitor's language).

    A declared Content-Length over the cap is refused unread. Otherwise Django reads at most Content-Length
    bytes, and form fields are capped by DATA_UPLOAD_MAX_MEMORY_SIZE; files are not, so a multipart body is
    parsed here, with CappedUploadHandler first, and stops at the cap (this covers a chunked body, which has no
    Content-Length to check).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method in ("POST", "PUT", "PATCH"):
            limit, responder = body_limit(request.path_info)
            if limit is not None:
                refused = self._check(request, limit, responder)
                if refused is not None:
                    return refused
        return self.get_response(request)

    def _check(self, request, limit, responder):
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            declared = 0
        if declared > limit:
            return import_string(responder)(request, limit)
        if request.content_type == "multipart/form-data":
            request.upload_handlers.insert(0, CappedUploadHandler(request, limit))
            try:
                request.FILES  # noqa: B018 (parse now, inside the cap)
            except BodyTooLarge:
                request._mark_post_parse_error()  # nothing of the partial parse is kept
                return import_string(responder)(request, limit)
            except Exception as exc:  # noqa: BLE001
                _raise_later(request, exc)
        return None


def _raise_later(request, exc):
    """Leave any other parse error (a malformed body, too many fields) to whoever reads the body next, as if
    this middleware had not parsed it: each app answers it in its own format."""
    for name in ("_post", "_files"):
        request.__dict__.pop(name, None)

    def load():
        raise exc

    request._load_post_and_files = load
