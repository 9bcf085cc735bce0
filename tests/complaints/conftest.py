"""Fixtures of the complaint tests: departments, staff and complaints made here (codes prefixed "t-cmp-"), so the
lifecycle tests need neither the routing engine nor the demo city. Tests that route for real use MOSCOW (a point
inside a demo district) and the demo city that the session loaded (or `demo_city` when transactional).
"""
import uuid
from datetime import timedelta

import pytest
from django.contrib.gis.geos import Point
from django.utils import timezone, translation

from complaints.models import Complaint, State
from complaints.selectors import DISPATCHERS_GROUP
from complaints.tracking import new_tracking_code
from routing.models import Category, CategoryAttribute, RoutingDecision

from .factories import MOSCOW, make_departments, make_user


@pytest.fixture(autouse=True)
def english():
    """Messages are checked in English (the project's default language is Russian)."""
    with translation.override("en"):
        yield


# No fixture empties routing.deadlines' memo between tests: a due date is kept with the holidays' stamp, a stamp is
# never given twice (a rolled-back test's stamp matches nothing later), so no test can see another's holidays.


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.fixture
def departments(db):
    """Two departments of two test authorities: "a" and "b"."""
    return make_departments("t-cmp")


@pytest.fixture
def staff(departments):
    """Staff of department a, staff of department b, a dispatcher and a superuser."""
    return {
        "a": make_user("t-cmp-staff-a", departments=[departments["a"]]),
        "b": make_user("t-cmp-staff-b", departments=[departments["b"]]),
        "dispatcher": make_user("t-cmp-dispatcher", groups=[DISPATCHERS_GROUP]),
        "admin": make_user("t-cmp-admin", superuser=True),
    }


@pytest.fixture
def category(db):
    return Category.objects.create(code="t-cmp-yard", name_ru="Двор", name_en="Yard", group_ru="Дворы",
                                   group_en="Yards", rule=Category.Rule.DISTRICT, deadline_days=5)


@pytest.fixture
def category_with_attributes(category):
    values = [{"key": "k1", "name_ru": "один", "name_en": "one"}, {"key": "k2", "name_ru": "два", "name_en": "two"},
              {"key": "3", "name_ru": "три", "name_en": "three"}]
    specs = [("floor", "number", False), ("seen_at", "datetime", False), ("note", "string", False),
             ("details", "text", False), ("kind", "singlevaluelist", True), ("extras", "multivaluelist", False)]
    for order, (code, datatype, required) in enumerate(specs):
        CategoryAttribute.objects.create(category=category, code=code, datatype=datatype, required=required,
                                         order=order, description_ru=code, description_en=code,
                                         values=values if datatype.endswith("list") else [])
    CategoryAttribute.objects.create(category=category, code="info", datatype="string", variable=False, order=99,
                                     description_ru="справка", description_en="note")
    return category


@pytest.fixture
def make_complaint(category, departments):
    """A complaint stored directly (no engine), in any state, with department a unless told."""

    def make(state=State.ASSIGNED, department=None, **fields):
        department = department or departments["a"]
        decision = RoutingDecision.objects.create(
            department=department, authority=department.authority, rule=RoutingDecision.Rule.DISTRICT,
            engine_version="test", explanation_ru="тест", explanation_en="test")
        return Complaint.objects.create(
            tracking_code=new_tracking_code(), token=str(uuid.uuid4()), state=state, decision=decision,
            department=department, **{"deadline": timezone.now() + timedelta(days=7), "category": category,
                                      "location": Point(*MOSCOW, srid=4326), **fields})

    return make
