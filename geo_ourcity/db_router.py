"""Reads that may be a little stale go to the read replica, when there is one (DATABASE_REPLICA_URL; docs/database.md).

A view says that its reads may be a little stale with @stale_reads_ok (the map's tiles and popups, the Open311 GET
lists, the statistics); everything else reads the primary. So does a client that has just changed something: after
a successful POST (a resident's report, a staff action), ReadYourWritesMiddleware gives it a signed cookie, and for
REPLICA_FRESH_SECONDS its reads stay on the primary, so that it sees its own change at once. Raw SQL takes its
connection from read_connection(); the ORM's reads come through ReplicaRouter.
"""
import contextvars
import functools
import time

from django.conf import settings
from django.core import signing
from django.db import DEFAULT_DB_ALIAS, connections

REPLICA = "replica"
COOKIE = "ourcity_primary"
_SALT = "geo_ourcity.db_router"
_stale_ok = contextvars.ContextVar("geo_ourcity_stale_reads_ok", default=False)


def read_alias():
    """The database alias this read should use: the replica inside a @stale_reads_ok view, else the primary."""
    if (_stale_ok.get() and REPLICA in connections.settings
            and not connections[DEFAULT_DB_ALIAS].in_atomic_block):  # inside a transaction: read what it wrote
        return REPLICA
    return DEFAULT_DB_ALIAS


def read_connection():
    return connections[read_alias()]


class ReplicaRouter:
    def db_for_read(self, model, **hints):
        return read_alias()

    def db_for_write(self, model, **hints):
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        return True  # the replica holds the primary's very rows

    def allow_migrate(self, db, app_label, **hints):
        return db != REPLICA


def _wants_primary(request):
    value = request.COOKIES.get(COOKIE)
    if not value:
        return False
    try:
        signing.loads(value, salt=_SALT, max_age=settings.REPLICA_FRESH_SECONDS)
    except signing.BadSignature:  # also expired
        return False
    return True


def stale_reads_ok(view):
    """Mark a view (a function, or a class-based view's method) whose reads may come from the replica."""
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        request = next(a for a in args if hasattr(a, "COOKIES"))
        if _wants_primary(request):
            return view(*args, **kwargs)
        token = _stale_ok.set(True)
        try:
            return view(*args, **kwargs)
        finally:
            _stale_ok.reset(token)
    return wrapper


class ReadYourWritesMiddleware:
    """After a successful change (a POST, PUT, PATCH or DELETE answered below 400), this client reads the primary
    for REPLICA_FRESH_SECONDS (a signed cookie: a forged or old one counts for nothing)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (request.method not in ("GET", "HEAD", "OPTIONS") and response.status_code < 400
                and REPLICA in connections.settings):
            response.set_cookie(COOKIE, signing.dumps(int(time.time()), salt=_SALT),
                                max_age=settings.REPLICA_FRESH_SECONDS, httponly=True, samesite="Lax",
                                secure=request.is_secure())
        return response
