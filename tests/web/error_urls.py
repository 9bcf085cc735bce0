"""The project's URLs and error handlers, plus views that fail in each way (for tests/web/test_error_pages.py)."""
from django.core.exceptions import PermissionDenied, SuspiciousOperation
from django.db import InterfaceError, OperationalError
from django.urls import include, path

from geo_ourcity.urls import handler400, handler403, handler404, handler500  # noqa: F401 - the handlers under test


def fail(exc):
    def view(request):
        raise exc
    return view


urlpatterns = [
    path("test-fail/400/", fail(SuspiciousOperation("a request that can not be read"))),
    path("test-fail/403/", fail(PermissionDenied("not yours"))),
    path("test-fail/500/", fail(RuntimeError("a bug"))),
    path("test-fail/503/", fail(OperationalError("could not connect to server"))),
    path("test-fail/503b/", fail(InterfaceError("connection already closed"))),
    path("open311/v2/test-fail/500.json", fail(RuntimeError("a bug"))),
    path("open311/v2/test-fail/500.xml", fail(RuntimeError("a bug"))),
    path("", include("geo_ourcity.urls")),
]
