"""A facility the resident picks must cover the point or lie within the category's radius (routing's rule,
true distance in metres): otherwise the web form says so beside the facility field and Open311 answers 400 in its
format, and nothing is stored. Near and covering facilities are accepted and decide the routing."""
import datetime

import pytest
from django.utils import timezone

from complaints.models import Complaint
from facilities.models import Facility
from routing.engine import FacilityNotAllowed, picked_facility_check
from routing.models import Category, RoutingDecision

from .conftest import far_point

FORM = {"category": "school-building", "description": "Сломан забор", "attribute[damage]": "Забор"}


def web(client, point, facility, language="ru"):
    response = client.post("/report/", {**FORM, "lon": point[0], "lat": point[1], "facility": facility},
                           HTTP_ACCEPT="application/json", HTTP_ACCEPT_LANGUAGE=language)
    return response.status_code, response.json()


def open311(client, key, point, facility, fmt="json"):
    return client.post(f"/open311/v2/requests.{fmt}", {
        "api_key": key, "service_code": "school-building", "lat": point[1], "long": point[0],
        "description": "Сломан забор", "attribute[damage]": "Забор", "facility_id": facility})


def refusals(school):
    """(name, the facility id to pick, the point) of every kind of facility that must be refused."""
    facility, inside, _near = school
    hospital = Facility.objects.filter(type__code="hospital", valid_to__isnull=True).first()
    return {
        "far": (facility.pk, far_point(facility, 5000)),
        "other-type": (hospital.pk, hospital.geom.centroid.coords),  # at the hospital itself, wrong kind
        "nonexistent": (987_654_321, inside),
        "retired": ("retired", inside),
    }


@pytest.fixture
def retired(school):
    facility, _inside, _near = school
    return lambda: Facility.objects.filter(pk=facility.pk).update(valid_to=timezone.now() - datetime.timedelta(1))


CASES = ["far", "other-type", "nonexistent", "retired"]
MESSAGES = {"far": ("м от точки", "m from the point"), "other-type": ("не относится", "not one that"),
            "nonexistent": ("Такого объекта нет", "no such facility"), "retired": ("больше нет в реестре",
                                                                               "no longer in the registry")}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("language", ["ru", "en"])
def test_the_web_form_refuses_beside_the_facility_field(client, school, retired, case, language):
    facility_id, point = refusals(school)[case]
    if facility_id == "retired":
        facility_id = school[0].pk
        retired()
    before = Complaint.objects.count()
    status, body = web(client, point, facility_id, language)
    assert status == 400, body
    assert list(body["errors"]) == ["facility"]
    assert MESSAGES[case][0 if language == "ru" else 1] in body["errors"]["facility"][0]
    assert Complaint.objects.count() == before


@pytest.mark.parametrize("case", CASES)
def test_open311_refuses_with_400(client, school, retired, key_pair, case):
    facility_id, point = refusals(school)[case]
    if facility_id == "retired":
        facility_id = school[0].pk
        retired()
    before = Complaint.objects.count()
    response = open311(client, key_pair[1], point, facility_id)
    assert response.status_code == 400
    assert response.json()[0]["code"] == 400
    assert Complaint.objects.count() == before
    xml = open311(client, key_pair[1], point, facility_id, fmt="xml")
    assert xml.status_code == 400 and b"<errors><error><code>400</code>" in xml.content


def test_the_far_hospital_of_the_issue_is_refused(db):
    """The issue's example: a facility 27.7 km from the point."""
    hospital = Facility.objects.filter(type__code="hospital", valid_to__isnull=True).first()
    with pytest.raises(FacilityNotAllowed) as error:
        picked_facility_check(far_point(hospital, 27_700), Category.objects.get(code="hospital-access"), hospital)
    assert error.value.reason == "too_far" and 27_000 < error.value.distance_m < 28_500


@pytest.mark.parametrize("where", ["inside", "near"])
def test_a_covering_or_near_facility_is_accepted_and_decides(client, school, key_pair, where):
    facility, inside, near = school
    point = inside if where == "inside" else near
    status, body = web(client, point, facility.pk)
    assert status == 200, body
    complaint = Complaint.objects.get(tracking_code=body["tracking_code"])
    assert complaint.facility_id == facility.pk
    assert complaint.decision.rule == RoutingDecision.Rule.FACILITY_PICKED
    assert open311(client, key_pair[1], point, facility.pk).status_code == 201


def test_the_near_point_really_is_outside_and_within_the_radius(school):
    facility, _inside, near = school
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT ST_Covers(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326)), "
                    "ST_Distance(geom::geography, ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography) "
                    "FROM facilities_facility WHERE id = %s", [*near, *near, facility.pk])
        covers, distance = cur.fetchone()
    assert not covers and 0 < distance <= Category.objects.get(code="school-building").radius_m


@pytest.mark.parametrize("bad", ["abc", "1.5", "-3", "0"])
def test_a_facility_that_is_not_an_id_is_a_400(client, school, key_pair, bad):
    _facility, inside, _near = school
    assert open311(client, key_pair[1], inside, bad).status_code == 400
    status, body = web(client, inside, bad)
    assert status == 400 and "facility" in body["errors"]
