"""Demo users for the Moscow demo city (never used outside `make demo` and tests).

The project package imports no app's internals: each app that owns a demo role registers it here from its
AppConfig.ready() (importers: data staff; staff: the department logins and the dispatcher). This module keeps the
one login that belongs to no app, the administrator (a superuser), and lists the rest in the order the apps were
registered (INSTALLED_APPS order).
"""
from dataclasses import dataclass
from typing import Callable

from django.contrib.auth import get_user_model

DEMO_PASSWORD = "demo12345"
ADMIN_LOGIN = "admin"


@dataclass(frozen=True)
class DemoRole:
    app: str
    logins: tuple  # the logins it creates, in banner order (known without the database)
    ensure: Callable  # ensure(password) -> [(login, password, role)]: create them idempotently


_ROLES: dict = {}


def register(app, *, logins, ensure):
    """Register an app's demo logins (idempotent per app: called from its AppConfig.ready())."""
    _ROLES[app] = DemoRole(app=app, logins=tuple(logins), ensure=ensure)


def demo_logins():
    """Every demo login, one per role, in banner order, without touching the database.

    tests/admin/test_no_widening.py walks the admin as each of them but the administrator.
    """
    return [ADMIN_LOGIN, *(login for role in _ROLES.values() for login in role.logins)]


def ensure_demo_users():
    """Create (idempotently) the demo logins; return (login, password, role) rows for the banner."""
    User = get_user_model()
    admin, created = User.objects.get_or_create(username=ADMIN_LOGIN,
                                                defaults={"is_staff": True, "is_superuser": True})
    if created:
        admin.set_password(DEMO_PASSWORD)
        admin.save()
    rows = [(ADMIN_LOGIN, DEMO_PASSWORD, "administrator: gives department and group membership")]
    for role in _ROLES.values():
        rows += role.ensure(DEMO_PASSWORD)
    return rows
