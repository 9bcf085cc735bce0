"""Helpers for the registry-correction tests (tests/staff/test_registry_queue.py, tests/queue/
test_registry_corrections.py): a school building of the demo city and the nearest school of another owner, and
complaints at it that its owner's staff hand on."""
import contextlib

from django.contrib.gis.db.models.functions import PointOnSurface
from django.db import connection

from django.utils import timezone

from complaints import clock
from complaints.management.commands.load_demo_complaints import answers
from complaints.services import complaint_create, complaint_transfer
from facilities.models import Department, Facility
from importers.permissions import ensure_data_staff_group
from routing.models import Category
from tests.complaints.factories import make_user


def school_and_neighbour():
    """(a school building with an outline, the authority owning the nearest school building of another owner)."""
    with connection.cursor() as cur:
        cur.execute("""SELECT f.id, n.owner_id FROM (
                           SELECT f.* FROM facilities_facility f
                           JOIN facilities_facilitytype t ON t.id = f.type_id AND t.code = 'school'
                           WHERE f.valid_to IS NULL AND GeometryType(f.geom) IN ('POLYGON', 'MULTIPOLYGON')
                           ORDER BY f.source_key LIMIT 20) f
                       CROSS JOIN LATERAL (SELECT g.owner_id FROM facilities_facility g
                                           WHERE g.type_id = f.type_id AND g.valid_to IS NULL
                                             AND g.owner_id <> f.owner_id ORDER BY g.geom <-> f.geom LIMIT 1) n
                       WHERE f.valid_to IS NULL AND GeometryType(f.geom) IN ('POLYGON', 'MULTIPOLYGON')
                         AND EXISTS (SELECT 1 FROM facilities_department d WHERE d.authority_id = f.owner_id)
                         AND EXISTS (SELECT 1 FROM facilities_department d WHERE d.authority_id = n.owner_id)
                       ORDER BY f.source_key LIMIT 1""")
        facility_id, other = cur.fetchone()
    facility = Facility.objects.select_related("owner", "dataset").annotate(inside=PointOnSurface("geom")).get(
        pk=facility_id)
    return facility, Department.objects.select_related("authority").filter(authority_id=other).order_by("pk").first()


def people(facility, prefix):
    """The owner's staff, data staff, another department's staff."""
    owner_staff = make_user(f"{prefix}-owner", departments=list(facility.owner.departments.all()))
    data = make_user(f"{prefix}-data")
    data.groups.add(ensure_data_staff_group())
    other = make_user(f"{prefix}-other", departments=[Department.objects.exclude(
        authority=facility.owner).exclude(staff__isnull=False).order_by("pk").first()])
    return {"owner": owner_staff, "data": data, "other": other}


def file_at(point, code="school-territory", text="У входа в школу не убран снег", at=None):
    category = Category.objects.get(code=code)
    with clock.at(at) if at else contextlib.nullcontext():
        return complaint_create(category=category, point=point, description=text, source="demo",
                                attributes=answers(category, at or timezone.now()))


def hand_on(complaint, user, department, reason="Здание другой школы", at=None):
    with clock.at(at) if at else contextlib.nullcontext():
        return complaint_transfer(complaint=complaint, user=user, department=department, reason=reason)

