"""Demo users for the Moscow demo city (never used outside `make demo` and tests)."""
from django.contrib.auth import get_user_model

DEMO_PASSWORD = "demo12345"


def ensure_demo_users():
    """Create (idempotently) the demo logins; return (login, password, role) rows for the banner."""
    User = get_user_model()
    rows = []
    admin, created = User.objects.get_or_create(username="admin", defaults={"is_staff": True, "is_superuser": True})
    if created:
        admin.set_password(DEMO_PASSWORD)
        admin.save()
    rows.append(("admin", DEMO_PASSWORD, "administrator"))
    data, created = User.objects.get_or_create(username="datastaff", defaults={"is_staff": True})
    if created:
        data.set_password(DEMO_PASSWORD)
        data.save()
    from importers.permissions import ensure_data_staff_group

    data.groups.add(ensure_data_staff_group())
    rows.append(("datastaff", DEMO_PASSWORD, "data staff: imports"))
    from staff.demo import ensure_demo_staff

    rows += ensure_demo_staff(DEMO_PASSWORD)
    return rows
