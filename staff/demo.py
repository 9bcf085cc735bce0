"""Demo staff logins for the Moscow demo city (`make demo` and tests only).

One login per role. Each department login belongs to every department of a real demo authority, picked
deterministically (by name or by the smallest INN), so the logins point at the same organisations after the city
is loaded again.
"""
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import CharField, Exists, Func, OuterRef

from complaints.selectors import DISPATCHERS_GROUP
from facilities.models import Authority, Facility

COUNCIL_NAME = "Управа района Тверской"


class GeometryType(Func):
    function = "GeometryType"
    output_field = CharField()


def demo_council():
    return Authority.objects.active().filter(kind=Authority.Kind.DISTRICT_COUNCIL, short_name=COUNCIL_NAME).first()


def demo_school():
    """The school organisation with the smallest INN among those owning a school building with an outline."""
    buildings = (Facility.objects.active().annotate(shape=GeometryType("geom"))
                 .filter(owner=OuterRef("pk"), type__code="school", shape__in=["POLYGON", "MULTIPOLYGON"]))
    return _first_by_inn(Authority.objects.active().filter(Exists(buildings)))


def demo_hospital():
    """The hospital organisation with the smallest INN."""
    hospitals = Facility.objects.active().filter(owner=OuterRef("pk"), type__code="hospital")
    return _first_by_inn(Authority.objects.active().filter(Exists(hospitals)))


def _first_by_inn(authorities):
    return authorities.exclude(inn="").order_by("inn", "code").first()


DEMO_STAFF = [
    # (login, role for the banner, the authority whose departments the login works)
    ("council", "district council", demo_council),
    ("school", "school", demo_school),
    ("hospital", "hospital", demo_hospital),
]
DISPATCHER_LOGIN = "dispatcher"


def ensure_demo_staff(password):
    """Create (idempotently) the demo staff logins; return (login, password, role) rows for the banner.

    A login whose authority is not in the registry is left out (and loses its departments).
    """
    rows = []
    for login, role, pick in DEMO_STAFF:
        authority = pick()
        user = _user(login, password)
        departments = list(authority.departments.all()) if authority else []
        user.departments.set(departments)
        if authority:
            names = ", ".join(d.name for d in departments if d.name != authority.short_name)
            detail = f"{authority.short_name}" + (f": {names}" if names else "")
            rows.append((login, password, f"{role} staff (/staff/): {detail}"))
    dispatcher = _user(DISPATCHER_LOGIN, password)
    dispatcher.groups.add(Group.objects.get_or_create(name=DISPATCHERS_GROUP)[0])
    rows.append((DISPATCHER_LOGIN, password, "city dispatcher (/staff/): every department's tickets"))
    return rows


def _user(login, password):
    user, created = get_user_model().objects.get_or_create(username=login)
    if created:
        user.set_password(password)
        user.save(update_fields=["password"])
    return user
