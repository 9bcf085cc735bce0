"""The demo's data staff login (`make demo` and tests only), registered with geo_ourcity.demo by importers.apps."""
from django.contrib.auth import get_user_model

DATA_STAFF_LOGIN = "datastaff"


def ensure_demo_data_staff(password):
    """Create (idempotently) the data staff login in the "Data staff" group; return its banner row."""
    from .permissions import ensure_data_staff_group

    data, created = get_user_model().objects.get_or_create(username=DATA_STAFF_LOGIN, defaults={"is_staff": True})
    if created:
        data.set_password(password)
        data.save()
    data.groups.add(ensure_data_staff_group())
    return [(DATA_STAFF_LOGIN, password, "data staff: imports and the registry, no membership")]
