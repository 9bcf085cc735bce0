"""The answer to a login while its user name or client is locked out by django-axes (settings.AXES_*): 429 with
Retry-After and a page in the visitor's language, for the staff login and the admin login alike.

The wait is what remains of the lockout. Refused attempts during a lockout do not extend it
(AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False), so it lifts once enough of the failures that caused it
are older than the cool-off: axes counts, per lockout parameter (the user name, the client), the failures of the
attempt records whose latest failure lies within the cool-off.
"""
import math

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_cool_off, get_failure_limit
from django.shortcuts import render
from django.utils import timezone


def lockout_response(request, original_response=None, credentials=None):
    wait = lockout_remaining(request, credentials)
    response = render(request, "staff/lockout.html", {"minutes": max(1, math.ceil(wait / 60))}, status=429)
    response["Retry-After"] = str(wait)
    return response


def lockout_remaining(request, credentials=None):
    """Seconds until no lockout parameter of this request holds AXES_FAILURE_LIMIT failures within the cool-off
    (at least 1); the whole cool-off when the attempts can not be read (a handler other than the database's)."""
    cool_off = get_cool_off(request)
    handler = AxesProxyHandler.get_implementation()
    if not hasattr(handler, "get_user_attempts"):
        return max(1, int(cool_off.total_seconds()))
    limit = get_failure_limit(request, credentials)
    lifts = timezone.now()
    for attempts in handler.get_user_attempts(request, credentials):
        rows = list(attempts.order_by("attempt_time").values_list("attempt_time", "failures_since_start"))
        left = sum(failures for _at, failures in rows)
        for attempt_time, failures in rows:  # the oldest leave the window first
            if left < limit:
                break
            lifts = max(lifts, attempt_time + cool_off)
            left -= failures
    return max(1, math.ceil((lifts - timezone.now()).total_seconds()))
