"""Fixtures of the abuse tests: real limits (the session's are generous, tests/conftest.py), real Redis, real
logins, complaints filed through the real services."""
import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from complaints.services import complaint_create
from facilities.models import Facility
from open311.keys import api_key_issue
from routing.models import Category

TVERSKAYA = (37.6056, 55.7655)  # inside the district Тверской
PASSWORD = "correct horse battery staple"


@pytest.fixture
def complaint(db):
    return complaint_create(category=Category.objects.get(code="yard-rubbish"), point=TVERSKAYA,
                            description="Мусор во дворе")


@pytest.fixture
def key_pair(db):
    """(ApiKey, clear key)."""
    return api_key_issue(name="abuse-integrator")


@pytest.fixture
def fast_hasher(settings):
    """Logins are the subject here, not password hashing: a cheap hasher keeps many logins quick."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def staff_user(db, fast_hasher):
    return get_user_model().objects.create_user("abuse-staff", password=PASSWORD, is_staff=True)


@pytest.fixture
def admin_user(db, fast_hasher):
    return get_user_model().objects.create_superuser("abuse-admin", password=PASSWORD)


@pytest.fixture
def school(db):
    """(school, a point inside it, a point about 50 m north of it, outside): the category school-building
    accepts facilities within 100 m."""
    with connection.cursor() as cur:
        cur.execute("""
            SELECT f.id, ST_X(ST_PointOnSurface(f.geom)), ST_Y(ST_PointOnSurface(f.geom)),
                   ST_X(ST_PointOnSurface(f.geom)), ST_YMax(f.geom) + 50 / 111320.0
            FROM facilities_facility f JOIN facilities_facilitytype t ON t.id = f.type_id
            WHERE t.code = 'school' AND f.valid_to IS NULL AND f.owner_id IS NOT NULL
              AND GeometryType(f.geom) IN ('POLYGON', 'MULTIPOLYGON')
            ORDER BY f.id LIMIT 1""")
        facility_id, ix, iy, nx, ny = cur.fetchone()
    return Facility.objects.select_related("owner").get(pk=facility_id), (ix, iy), (nx, ny)


def far_point(facility, metres=5000):
    """A point of the city about `metres` east of the facility."""
    c = facility.geom.centroid
    return c.x + metres / 62_000, c.y  # a degree of longitude is about 62 km at Moscow's latitude
