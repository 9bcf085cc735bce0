"""The residents' pages under the limits of geo_ourcity.limits: a short page in the visitor's language (or, for
the map's form, which asks for JSON, its own error answer) with 429 + Retry-After or 413."""
import functools

from django.conf import settings
from django.http import JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from geo_ourcity.limits import client_key, rate_limited


def _wants_json(request):
    return "application/json" in request.headers.get("Accept", "")


def limit_response(request, status, message):
    if _wants_json(request):  # the map's report form: errors as it reads them
        return JsonResponse({"errors": {"__all__": [message]}}, status=status, json_dumps_params={"ensure_ascii": False})
    return render(request, "web/limit.html", {"message": message, "status": status}, status=status)


def too_many_requests(request, wait):
    minutes = max(1, round(wait / 60))
    message = _("Too many requests from your address. Please try again in %(n)d min.") % {"n": minutes}
    response = limit_response(request, 429, message)
    response["Retry-After"] = str(wait)
    return response


def body_too_large(request, limit):
    """settings.REQUEST_LIMIT_RESPONDER: a body over its URL's cap (geo_ourcity.limits.BodySizeLimitMiddleware)."""
    return limit_response(request, 413, _("The request is too large: at most %(mb).0f MB, photos included.")
                          % {"mb": limit / 1024 / 1024})


def limited_per_client(group, rate_setting):
    """A view counted per client address against settings.<rate_setting>; over it, 429 without calling the view."""
    def decorator(view):
        @functools.wraps(view)
        def wrapped(request, *args, **kwargs):
            wait = rate_limited(request, group=group, rate=getattr(settings, rate_setting), key=client_key(request))
            if wait is not None:
                return too_many_requests(request, wait)
            return view(request, *args, **kwargs)
        return wrapped
    return decorator
