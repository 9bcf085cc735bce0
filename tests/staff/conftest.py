"""Fixtures of the staff workspace tests. Two test departments ("a" and "b") with a staff member each, a city
dispatcher and a data-staff member; tickets stored directly (codes random, no routing engine) in any state, with
a demo city district and category, so that lists can be filtered and sorted exactly. Tests that need the engine
use complaints.services.complaint_create in the demo city that the session loaded."""
import uuid
from datetime import timedelta

import pytest
from django.contrib.gis.geos import Point
from django.test import Client
from django.utils import timezone

from complaints.models import Complaint, State
from complaints.selectors import DISPATCHERS_GROUP
from complaints.tracking import new_tracking_code
from facilities.models import AdminArea
from importers.permissions import ensure_data_staff_group
from routing.models import Category, RoutingDecision
from tests.complaints.factories import MOSCOW, make_departments, make_user


@pytest.fixture
def departments(db):
    return make_departments("t-stf")


@pytest.fixture
def staff(departments):
    data = make_user("t-stf-data")
    data.groups.add(ensure_data_staff_group())
    return {
        "a": make_user("t-stf-a", departments=[departments["a"]]),
        "b": make_user("t-stf-b", departments=[departments["b"]]),
        "dispatcher": make_user("t-stf-dispatcher", groups=[DISPATCHERS_GROUP]),
        "data": data,
    }


@pytest.fixture
def districts(db):
    """Two demo districts: Tverskoy (where MOSCOW lies) and Arbat."""
    return {name: AdminArea.objects.get(level="district", name=name) for name in ("Тверской", "Арбат")}


@pytest.fixture
def categories(db):
    return {code: Category.objects.get(code=code) for code in ("yard-rubbish", "yard-abandoned-car")}


@pytest.fixture
def make_ticket(departments, districts, categories):
    """make_ticket(state=..., department=..., deadline_in=timedelta, **Complaint fields): a stored ticket."""

    def make(state=State.ASSIGNED, department=None, deadline_in=timedelta(days=7), **fields):
        department = department or departments["a"]
        fields.setdefault("category", categories["yard-rubbish"])
        fields.setdefault("area", districts["Тверской"])
        fields.setdefault("location", Point(*MOSCOW, srid=4326))
        decision = RoutingDecision.objects.create(
            department=department, authority=department.authority, area=fields["area"],
            rule=RoutingDecision.Rule.AREA, engine_version="test",
            explanation_ru="Тестовое решение", explanation_en="Test decision",
            candidates=[{"facility_id": 1, "name": "Runner-up <b>house</b>", "owner": "TA-x", "distance_m": 42.4}])
        return Complaint.objects.create(
            tracking_code=new_tracking_code(), token=str(uuid.uuid4()), state=state, decision=decision, department=department, deadline=timezone.now() + deadline_in, **fields)

    return make


@pytest.fixture
def client_for():
    """client_for(user, csrf=False, language="en"): a logged-in test client (English unless told)."""

    def make(user, csrf=False, language="en"):
        client = Client(enforce_csrf_checks=csrf, headers={"accept-language": language})
        client.force_login(user)
        return client

    return make


@pytest.fixture
def media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"
