"""Every Open311 error, whatever raised it, is answered as the spec's list of {code, description}."""
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.http import Http404, HttpResponse
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import set_rollback

from complaints.errors import ComplaintError, ComplaintNotFound, ComplaintPermissionDenied

from .renderers import Open311JSONRenderer, Open311XMLRenderer


# No error description repeats more of the input than this: an answer never echoes kilobytes of what was sent.
DESCRIPTION_MAX = 300


def short(text):
    text = str(text)
    return text if len(text) <= DESCRIPTION_MAX else text[:DESCRIPTION_MAX - 1] + "…"


def open311_plain_error(request, code, description):
    """An Open311 error answered outside a DRF view (from a middleware): JSON, or XML for a `.xml` URL."""
    data = [{"code": code, "description": str(description)}]
    renderer = Open311XMLRenderer() if request.path.endswith(".xml") else Open311JSONRenderer()
    body = renderer.render(data, renderer_context={"response": HttpResponse(status=code)})
    return HttpResponse(body, status=code, content_type=f"{renderer.media_type}; charset=utf-8")


def body_too_large(request, limit):
    """settings.REQUEST_BODY_LIMITS' answer for /open311/: a body over the cap, refused before it is read."""
    return open311_plain_error(request, 413, f"The request is larger than {limit / 2**20:.1f} MB (photos included).")


def open311_error(code, description):
    return Response([{"code": code, "description": short(description)}], status=code)


def exception_handler(exc, context):
    if isinstance(exc, ComplaintError):
        code = {ComplaintNotFound: 404, ComplaintPermissionDenied: 403}.get(type(exc), 400)
        set_rollback()
        faults = getattr(exc, "errors", None) or [exc]  # ComplaintInvalid: every fault of the request, each listed
        return Response([{"code": code, "description": short(fault)} for fault in faults], status=code)
    if isinstance(exc, SuspiciousOperation):  # too many fields, body too large, ... (Django's own limits)
        return open311_error(400, exc.args[0] if exc.args else "The request could not be read.")
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(*exc.args)
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied(*exc.args)
    if not isinstance(exc, exceptions.APIException):
        return None
    set_rollback()
    errors = [{"code": exc.status_code, "description": text} for text in _messages(exc.detail)]
    response = Response(errors, status=exc.status_code)
    if getattr(exc, "wait", None):
        response["Retry-After"] = str(int(exc.wait))
    return response


def _messages(detail, field=None):
    """Flatten DRF's error detail into sentences that name the parameter at fault."""
    if isinstance(detail, dict):
        return [m for key, value in detail.items()
                for m in _messages(value, None if key in ("non_field_errors", "detail") else key)]
    if isinstance(detail, list):
        return [m for item in detail for m in _messages(item, field)]
    return [short(f"{field[:80]}: {detail}" if field else detail)]


def fault_response(request, status, description, headers):
    """An error the project answers outside any Open311 view (settings.FAULT_RESPONDERS: a path under /open311/
    that names no resource, a body in a charset that can't be read, the database unreachable): the spec's list, in
    the format the URL's suffix names (JSON unless it ends in .xml)."""
    renderer = Open311XMLRenderer() if request.path_info.endswith(".xml") else Open311JSONRenderer()
    errors = [{"code": status, "description": short(description)}]
    body = renderer.render(errors, renderer_context={"response": HttpResponse(status=status)})
    response = HttpResponse(body, status=status, content_type=f"{renderer.media_type}; charset=utf-8")
    for name, value in headers.items():
        response[name] = value
    return response
