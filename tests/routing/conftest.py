"""Helpers for the routing tests. Complaints are created straight with the ORM (a decision from route()), so these
tests depend on the routing engine and the complaint model only, not on the complaint services."""
import itertools
import uuid

from django.contrib.gis.geos import Point
from django.utils import timezone

from complaints.models import Complaint
from routing.engine import route
from routing.models import Category

RED_SQUARE = (37.6208, 55.7539)  # district Тверской, okrug Центральный
SAINT_PETERSBURG = (30.3141, 59.9386)

_codes = itertools.count(1)


def category(code):
    return Category.objects.get(code=code)


def make_complaint(point, category_code, *, state="assigned", facility=None):
    """A complaint routed by the engine, stored as the complaint services would store it."""
    cat = category(category_code)
    decision = route(point, cat, facility=facility)
    lon, lat = point if not isinstance(point, Point) else (point.x, point.y)
    return Complaint.objects.create(
        tracking_code=f"T{next(_codes):07d}{uuid.uuid4().hex[:6]}", token=str(uuid.uuid4()), category=cat,
        location=Point(lon, lat, srid=4326), state=state, decision=decision, department=decision.department,
        area=decision.area, facility=decision.facility, deadline=timezone.now())
