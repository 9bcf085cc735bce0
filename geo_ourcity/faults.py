"""How the service answers a request it can't serve: bad input it can't even read, an unknown page, a refusal, a
crash, the database gone. Every answer is in the protocol of the URL: a protocol that owns a path prefix
(settings.FAULT_RESPONDERS, e.g. Open311's error list under /open311/) formats its own; everything else gets the
project's short page in the visitor's language (templates/error.html). Never Django's bare English pages.

The project package imports no app: a protocol's responder is named by a dotted path in settings and called as
`responder(request, status, description, headers)`, returning an HttpResponse.
"""
import codecs
import functools
import logging
import sys

from django.conf import settings
from django.core.handlers import wsgi
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from django.template.loader import render_to_string
from django.utils import translation
from django.utils.http import parse_header_parameters
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

logger = logging.getLogger(__name__)

# Byte strings a request's form body or query string may hold: a charset must decode them with nothing worse than
# a UnicodeDecodeError (which Django handles), in both the strict and the "replace" modes Django uses.
_CHARSET_PROBES = (b"a=1&b=%D0%B0+c", bytes(range(256)), b"")


# Process-local memo: Python's codecs never change while the process lives.
@functools.lru_cache(maxsize=256)
def readable_charset(name):
    """Whether Django can decode a request body in the charset its Content-Type names.

    Python's codecs registry holds much that is not a text encoding (base64, rot13, zlib, hex, uu, bz2, quopri):
    Django accepts any name codecs.lookup() knows, and decoding then raises LookupError, a 500. Some text encodings
    raise other errors than UnicodeDecodeError on ordinary input (idna, punycode, undefined): refused too, as is a
    name that is no codec at all.
    """
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError, TypeError):
        return False
    if not getattr(info, "_is_text_encoding", True):
        return False
    for sample in _CHARSET_PROBES:
        for errors in ("strict", "replace"):
            try:
                result = sample.decode(info.name, errors)
            except UnicodeDecodeError:
                continue
            except Exception:  # noqa: BLE001 - any other failure means Django would crash on it
                return False
            if not isinstance(result, str):
                return False
    return True


def database_unavailable(exc):
    """The database can't be reached or went away mid-request (stopped, restarting, network): answer 503."""
    return isinstance(exc, (OperationalError, InterfaceError))


def _responder(request):
    path = request.path_info or "/"
    for prefix, dotted in getattr(settings, "FAULT_RESPONDERS", {}).items():
        if path.startswith(prefix) or path + "/" == prefix:
            return import_string(dotted)
    return None


PAGES = {
    400: (lambda: _("Bad request"), lambda: _("The server could not read this request.")),
    403: (lambda: _("Access denied"), lambda: _("You may not open this page.")),
    404: (lambda: _("Page not found"), lambda: _("There is no such page, or it is not public.")),
    500: (lambda: _("Something went wrong"),
          lambda: _("The server could not answer this request. Please try again later.")),
    503: (lambda: _("Service temporarily unavailable"),
          lambda: _("The service is temporarily unavailable. Please try again in a few seconds.")),
}
# What a protocol's error list says (in English, like the rest of their errors that have no translation).
DESCRIPTIONS = {
    400: "The request could not be read.",
    403: "Access to this resource is denied.",
    404: "No such resource.",
    500: "The server could not answer this request.",
    503: "The service is temporarily unavailable: try again in {seconds} seconds.",
}


def error_response(request, status, detail=None):
    """The answer with this status for this request, in its protocol's format or as the project's page."""
    headers = {}
    if status == 503:
        seconds = settings.RETRY_AFTER_SECONDS
        headers["Retry-After"] = str(seconds)
        detail = detail or DESCRIPTIONS[503].format(seconds=seconds)
    responder = _responder(request)
    if responder is not None:
        return responder(request, status, detail or DESCRIPTIONS.get(status, DESCRIPTIONS[500]), headers)
    language = translation.get_language_from_request(request)
    with translation.override(language):
        title, message = PAGES.get(status, PAGES[500])
        # No request in the context: no context processor runs, so the page needs neither the session nor the
        # database (it is also the page shown when the database is down).
        html = render_to_string("error.html", {"status": status, "title": title(), "message": message(),
                                               "detail": detail if status == 400 else None,
                                               "brand_name": settings.SITE_NAME})
        response = HttpResponse(html, status=status, content_type="text/html; charset=utf-8")
        response["Content-Language"] = translation.get_language()
    for name, value in headers.items():
        response[name] = value
    return response


class WSGIRequest(wsgi.WSGIRequest):
    """Django's request, except that a charset it can't decode with is set aside, not used.

    Django takes any charset that codecs.lookup() knows and, while it builds the request, decodes the query string
    with it: `?x=1` with `Content-Type: text/plain; charset=base64` raised LookupError before any middleware ran
    (a bare 500 from the WSGI server). Here the request is read as UTF-8 and RequestFaultsMiddleware answers 400.
    """

    def _set_content_type_params(self, meta):
        content_type = meta.get("CONTENT_TYPE", "")
        self.unreadable_charset = None
        if "charset" in content_type.lower():
            _type, params = parse_header_parameters(content_type)
            charset = params.get("charset")
            if charset is not None and not readable_charset(charset):
                self.unreadable_charset = charset
                meta = {**meta, "CONTENT_TYPE": _type}
        super()._set_content_type_params(meta)


class WSGIHandler(wsgi.WSGIHandler):
    request_class = WSGIRequest


class RequestFaultsMiddleware:
    """First in MIDDLEWARE: refuses what Django would crash on before anything reads the request (a charset that
    is not a text encoding), and turns a lost database into a 503 with Retry-After."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # Set aside by WSGIRequest (the server's requests); else (the test client's, ASGI's) still in the params.
        charset = getattr(request, "unreadable_charset", None) or getattr(request, "content_params", {}).get("charset")
        if charset is not None and not readable_charset(charset):
            return error_response(request, 400, f"Content-Type names the charset “{charset[:40]}”, which is not a "
                                                f"text encoding this server reads: send UTF-8.")
        return self.get_response(request)

    def process_exception(self, request, exception):
        if database_unavailable(exception):
            logger.warning("database unavailable, answered 503: %s %s: %s", request.method, request.path,
                           str(exception).strip().splitlines()[0] if str(exception).strip() else type(exception))
            return error_response(request, 503)
        return None


# ---- handler400/403/404/500 (geo_ourcity/urls.py) ------------------------------------------------------------


def bad_request(request, exception=None):
    return error_response(request, 400)


def permission_denied(request, exception=None):
    return error_response(request, 403)


def page_not_found(request, exception=None):
    return error_response(request, 404)


def server_error(request):
    # Called while the exception is being handled (an error raised in a middleware, outside any view).
    if database_unavailable(sys.exc_info()[1]):
        return error_response(request, 503)
    return error_response(request, 500)
