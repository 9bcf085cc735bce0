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
from facilities.models import AreaLevel
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
    # the demo's level (a transactional test starts from an empty registry)
    AreaLevel.objects.get_or_create(code="district", defaults={"rank": 2})
    return Category.objects.create(code="t-cmp-yard", name_i18n={"ru": "Двор", "en": "Yard"}, group_i18n={"ru": "Дворы",
                                   "en": "Yards"}, rule=Category.Rule.AREA, area_level_id="district", deadline_days=5)


@pytest.fixture
def category_with_attributes(category):
    values = [{"key": "k1", "name_i18n": {"ru": "один", "en": "one"}}, {"key": "k2", "name_i18n": {"ru": "два", "en": "two"}},
              {"key": "3", "name_i18n": {"ru": "три", "en": "three"}}]
    specs = [("floor", "number", False), ("seen_at", "datetime", False), ("note", "string", False),
             ("details", "text", False), ("kind", "singlevaluelist", True), ("extras", "multivaluelist", False)]
    for order, (code, datatype, required) in enumerate(specs):
        CategoryAttribute.objects.create(category=category, code=code, datatype=datatype, required=required,
                                         order=order, description_i18n={"ru": code, "en": code},
                                         values=values if datatype.endswith("list") else [])
    CategoryAttribute.objects.create(category=category, code="info", datatype="string", variable=False, order=99,
                                     description_i18n={"ru": "справка", "en": "note"})
    return category


@pytest.fixture
def make_complaint(category, departments):
    """A complaint stored directly (no engine), in any state, with department a unless told."""

    def make(state=State.ASSIGNED, department=None, **fields):
        department = department or departments["a"]
        decision = RoutingDecision.objects.create(
            department=department, authority=department.authority, rule=RoutingDecision.Rule.AREA,
            engine_version="test", explanation_ru="тест", explanation_en="test")
        return Complaint.objects.create(
            tracking_code=new_tracking_code(), token=str(uuid.uuid4()), state=state, decision=decision,
            department=department, **{"deadline": timezone.now() + timedelta(days=7), "category": category,
                                      "location": Point(*MOSCOW, srid=4326), **fields})

    return make
