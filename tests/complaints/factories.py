"""Helpers shared by the complaint tests (fixtures are in conftest.py)."""
import io

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from PIL import Image

# Inside the demo city (Tverskoy district, near Pushkinskaya square).
MOSCOW = (37.6056, 55.7655)


def make_departments(prefix):
    """Two departments of two test authorities, {"a": ..., "b": ...}; codes start with `prefix`."""
    from facilities.models import Authority, Department

    result = {}
    for key in "ab":
        authority = Authority.objects.create(code=f"{prefix}-auth-{key}", name=f"Test authority {key}",
                                             short_name=f"TA-{key}", kind=Authority.Kind.OTHER)
        result[key] = Department.objects.create(authority=authority, name=f"Test department {key}")
    return result


def make_user(username, *, departments=(), superuser=False, groups=()):
    # No password: hashing one costs about half a second per user.
    user = get_user_model().objects.create_user(username=username, is_staff=True, is_superuser=superuser)
    for department in departments:
        department.staff.add(user)
    for name in groups:
        user.groups.add(Group.objects.get_or_create(name=name)[0])
    return user



def image_bytes(fmt, size=(64, 48), mode="RGB", **save_options):
    """A small real image in `fmt` (JPEG, PNG, WEBP, GIF, ...)."""
    buffer = io.BytesIO()
    Image.new(mode, size, "red").save(buffer, format=fmt, **save_options)
    return buffer.getvalue()
