"""The answer to a login while its user name or client is locked out by django-axes (settings.AXES_*): 429 with
Retry-After and a page in the visitor's language, for the staff login and the admin login alike."""
from django.conf import settings
from django.shortcuts import render


def lockout_response(request, original_response=None, credentials=None):
    minutes = max(1, round(settings.AXES_COOLOFF_TIME.total_seconds() / 60))
    response = render(request, "staff/lockout.html", {"minutes": minutes}, status=429)
    # Each failure during a lockout starts the cool-off again, so the whole cool-off is the honest wait.
    response["Retry-After"] = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    return response
