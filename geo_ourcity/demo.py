"""Demo users for the Moscow demo city (never used outside `make demo` and tests)."""
from django.contrib.auth import get_user_model

DEMO_PASSWORD = "demo12345"
ADMIN_LOGIN = "admin"
DATA_STAFF_LOGIN = "datastaff"


def demo_logins():
    """Every demo login, one per role, in banner order, without touching the database.

    tests/admin/test_no_widening.py walks the admin as each of them but the administrator.
    """
    from staff.demo import DEMO_STAFF, DISPATCHER_LOGIN

    return [ADMIN_LOGIN, DATA_STAFF_LOGIN, *(login for login, _role, _pick in DEMO_STAFF), DISPATCHER_LOGIN]


def ensure_demo_users():
    """Create (idempotently) the demo logins; return (login, password, role) rows for the banner."""
    User = get_user_model()
    rows = []
    admin, created = User.objects.get_or_create(username=ADMIN_LOGIN,
                                                defaults={"is_staff": True, "is_superuser": True})
    if created:
        admin.set_password(DEMO_PASSWORD)
        admin.save()
    rows.append((ADMIN_LOGIN, DEMO_PASSWORD, "administrator: gives department and group membership"))
    data, created = User.objects.get_or_create(username=DATA_STAFF_LOGIN, defaults={"is_staff": True})
    if created:
        data.set_password(DEMO_PASSWORD)
        data.save()
    from importers.permissions import ensure_data_staff_group

    data.groups.add(ensure_data_staff_group())
    rows.append((DATA_STAFF_LOGIN, DEMO_PASSWORD, "data staff: imports and the registry, no membership"))
    from staff.demo import ensure_demo_staff

    rows += ensure_demo_staff(DEMO_PASSWORD)
    return rows
