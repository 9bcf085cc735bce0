"""Fixtures of the residents' pages tests: real complaints routed through complaints.services in the demo city
that the session loaded (its catalogue included)."""
import io

import pytest
from django.contrib.auth import get_user_model
from django.contrib.gis.geos import Point
from django.db import connection
from PIL import Image

from complaints.services import complaint_answer, complaint_create
from facilities.models import Facility
from routing.models import Category

# Inside the demo city: Tverskoy district, near Pushkinskaya square.
TVERSKAYA = (37.6056, 55.7655)


@pytest.fixture
def category(db):
    """A catalogue category with no required extra question (a yard complaint, routed to the district)."""
    return Category.objects.get(code="yard-rubbish")


@pytest.fixture
def report(category):
    """report(point=..., **fields) files a complaint as a resident would (routed for real)."""

    def make(point=TVERSKAYA, **fields):
        fields.setdefault("category", category)
        fields.setdefault("description", "Мусор во дворе")
        return complaint_create(point=point, **fields)

    return make


@pytest.fixture
def school(db):
    """(facility, lon, lat): a demo school with a polygon outline and a point inside it."""
    with connection.cursor() as cur:
        cur.execute("""
            SELECT f.id, ST_X(ST_PointOnSurface(f.geom)), ST_Y(ST_PointOnSurface(f.geom))
            FROM facilities_facility f JOIN facilities_facilitytype t ON t.id = f.type_id
            WHERE t.code = 'school' AND f.valid_to IS NULL AND f.owner_id IS NOT NULL
              AND GeometryType(f.geom) IN ('POLYGON', 'MULTIPOLYGON')
            ORDER BY f.id LIMIT 1""")
        facility_id, lon, lat = cur.fetchone()
    return Facility.objects.select_related("owner").get(pk=facility_id), lon, lat


@pytest.fixture
def answered(report):
    """A complaint its department has answered (the resident may now confirm or deny)."""
    complaint = report()
    user = get_user_model().objects.create_user(username="t-web-staff", is_staff=True)
    complaint.department.staff.add(user)
    return complaint_answer(complaint=complaint, user=user, text="Убрали мусор <b>сегодня</b>")


def png_bytes():
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), "gray").save(buffer, format="PNG")
    return buffer.getvalue()


def lonlat(complaint):
    p = complaint.location
    return Point(p.x, p.y, srid=4326)
