"""The routing engine on the real Moscow demo data: schools, hospitals, all 146 districts, boundaries, the city's
edge, triage, picked facilities, the routing table, and agreement with the registry's own spatial selectors."""
import random

import pytest
import shapely
from django.contrib.gis.geos import Point

from facilities.models import AdminArea, Authority, Department, Facility, FacilityType
from facilities.selectors import areas_covering_point, facilities_near_point
from routing.engine import ENGINE_VERSION, OutsideCity, department_for, route
from routing.models import Category, RoutingAssignment, RoutingDecision
from tests.routing.conftest import RED_SQUARE, SAINT_PETERSBURG, category

pytestmark = pytest.mark.django_db


def shape(geom):
    return shapely.from_wkb(bytes(geom.wkb))


def test_a_school_complaint_inside_a_school_building_goes_to_that_school():
    school = FacilityType.objects.get(code="school")
    schools = list(Facility.objects.active().filter(type=school).select_related("owner").order_by("source_key"))
    shapes = {f.pk: shape(f.geom) for f in schools}
    tree = shapely.STRtree(list(shapes.values()))
    ids = list(shapes)
    cat = category("school-territory")
    checked = 0
    for facility in schools[::10]:  # a sample of 50 schools, every building (polygon) of each
        for building in shapely.get_parts(shapes[facility.pk]):
            inside = building.point_on_surface()
            covering = {ids[i] for i in tree.query(inside, predicate="intersects")}
            if covering != {facility.pk}:
                continue  # buildings shared with another organisation: either answer would be right
            decision = route((inside.x, inside.y), cat)
            assert decision.rule == RoutingDecision.Rule.FACILITY_COVERS, facility.name
            assert decision.facility_id == facility.pk
            assert decision.authority_id == facility.owner_id
            assert decision.department.authority_id == facility.owner_id
            assert decision.distance_m == 0
            assert decision.explanation_ru == f"Школа {facility.owner.short_name} отвечает за это здание: точка внутри его контура"
            assert decision.explanation_en.endswith("is responsible for this building: the point is inside its outline")
            checked += 1
    assert checked >= 100


def test_inside_a_hospitals_radius_goes_to_that_hospital():
    hospital = FacilityType.objects.get(code="hospital")
    sites = list(Facility.objects.active().filter(type=hospital).select_related("owner").order_by("source_key"))
    cat = category("hospital-territory")
    checked = 0
    for facility in sites:
        first = shapely.get_parts(shape(facility.geom))[0]
        # 150 m north of the hospital's first point: 0.00135 degrees of latitude (radius is 300 m)
        point = (first.x, first.y + 0.00135)
        others = [f for f in facilities_near_point(point, type_ids=[hospital.pk], radius_m=600)
                  if f.facility_id != facility.pk]
        if any(f.distance_m < 450 for f in others):
            continue  # another hospital nearby: tested by the agreement test below
        decision = route(point, cat)
        assert decision.rule == RoutingDecision.Rule.FACILITY_NEAREST
        assert decision.facility_id == facility.pk and decision.authority_id == facility.owner_id
        # metres by true distance (another point of the same MultiPoint site may be nearer)
        assert 0 < decision.distance_m < 151
        assert decision.explanation_ru == (f"Больница {facility.owner.short_name} отвечает за этот объект: "
                                           f"ближайший объект в {round(decision.distance_m)} м")
        checked += 1
    assert checked >= 25


def test_a_yard_complaint_in_each_of_the_146_districts_goes_to_its_council():
    districts = list(AdminArea.objects.active().filter(level="district").select_related("authority"))
    assert len(districts) == 146
    cat = category("yard-pothole")
    for district in districts:
        inside = shape(district.geom).point_on_surface()
        decision = route(Point(inside.x, inside.y, srid=4326), cat)
        assert decision.rule == RoutingDecision.Rule.AREA, district.name
        assert decision.area_id == district.pk
        assert decision.authority_id == district.authority_id
        assert decision.department.authority_id == district.authority_id
        # the routing table sends yards to each council's housing department
        assert decision.department.code == "zhkh"
        # the area's level named in the language (the level's name is data: moscow_districts.yaml)
        assert decision.explanation_ru == f"{district.authority.short_name} отвечает за территорию: район {district.name}"
        assert decision.explanation_en == (f"{district.authority.short_name} is responsible for the territory of the "
                                           f"district {district.name}")


def test_a_point_on_a_district_boundary_is_routed_not_dropped():
    tverskoy = AdminArea.objects.get(level="district", name="Тверской")
    neighbour = AdminArea.objects.filter(level="district", geom__touches=tverskoy.geom).exclude(pk=tverskoy.pk).first()
    shared = shape(neighbour.geom).boundary.intersection(shape(tverskoy.geom).boundary)
    x, y = shapely.get_coordinates(shared)[0]
    decision = route((float(x), float(y)), category("yard-pothole"))
    covering = {a.pk for a in areas_covering_point((float(x), float(y)), level="district")}
    assert {tverskoy.pk, neighbour.pk} <= covering  # on the boundary of both (a vertex may touch a third)
    assert decision.area_id in covering
    assert decision.authority_id == AdminArea.objects.get(pk=decision.area_id).authority_id
    assert decision.rule == RoutingDecision.Rule.AREA


def test_outside_moscow_is_an_error_and_nothing_is_stored():
    before = RoutingDecision.objects.count()
    with pytest.raises(OutsideCity) as err:
        route(SAINT_PETERSBURG, category("yard-pothole"))
    assert "outside the city" in str(err.value)
    assert RoutingDecision.objects.count() == before


def test_a_category_no_rule_can_serve_lands_in_triage():
    triage = Department.objects.get(is_triage=True)
    decision = route(RED_SQUARE, category("other"))
    assert decision.rule == RoutingDecision.Rule.TRIAGE
    assert decision.department_id == triage.pk and decision.authority_id == triage.authority_id
    assert decision.area.name == "Тверской"  # the area is recorded all the same
    assert "Ни одно правило не определило исполнителя" in decision.explanation_ru
    # a district rule where the district's council has gone: triage again, never an error
    council = AdminArea.objects.get(level="district", name="Тверской").authority
    Authority.objects.filter(pk=council.pk).update(valid_to="2026-01-01T00:00:00Z")
    assert route(RED_SQUARE, category("yard-pothole")).rule == RoutingDecision.Rule.TRIAGE


def test_okrug_rule_and_fixed_department_rule():
    decision = route(RED_SQUARE, category("illegal-trade"))
    assert decision.rule == RoutingDecision.Rule.AREA
    assert decision.authority.short_name == "Префектура ЦАО"
    assert decision.explanation_en.endswith("the territory of the okrug Центральный")
    assert decision.department.code == "trade"  # the routing table names the prefecture's trade department
    decision = route(RED_SQUARE, category("road-pothole"))
    assert decision.rule == RoutingDecision.Rule.DEPARTMENT
    assert decision.authority.code == "avtodorogi"


def test_a_facility_category_without_a_facility_near_falls_back_as_it_says():
    decision = route(RED_SQUARE, category("streetlight-out"))  # no streetlights in the demo registry
    assert decision.rule == RoutingDecision.Rule.DEPARTMENT and decision.authority.code == "mossvet"
    assert decision.explanation_ru.startswith("Подходящих объектов в радиусе 30 м нет. ")
    decision = route(RED_SQUARE, category("waste-container"))  # falls back to the district
    assert decision.rule == RoutingDecision.Rule.AREA
    assert decision.authority.short_name == "Управа района Тверской"


def test_every_demo_category_is_served_by_its_rule():
    for cat in Category.objects.filter(active=True):
        decision = route(RED_SQUARE, cat)
        assert (decision.rule == RoutingDecision.Rule.TRIAGE) == (cat.code == "other"), cat.code


def test_a_picked_facility_decides_and_a_picked_facility_of_another_type_does_not():
    school = Facility.objects.filter(type__code="school").select_related("owner").order_by("source_key").first()
    cat = category("school-building")
    inside = shape(school.geom).point_on_surface()
    near = (inside.x, inside.y + 0.8 * cat.radius_m / 111_320)  # within the category's radius of the school
    decision = route(near, cat, facility=school)
    assert decision.rule == RoutingDecision.Rule.FACILITY_PICKED
    assert decision.facility_id == school.pk and decision.authority_id == school.owner_id
    assert school.name in decision.explanation_ru
    hospital = Facility.objects.filter(type__code="hospital").first()
    assert route(near, cat, facility=hospital).rule != RoutingDecision.Rule.FACILITY_PICKED
    # Far from the point (routing.engine.PICKED_FITS): a picked facility decides nothing.
    assert route(RED_SQUARE, cat, facility=school).facility_id != school.pk


def test_the_decision_is_stored_with_candidates_and_version():
    school = FacilityType.objects.get(code="school")
    facility = Facility.objects.filter(type=school).order_by("source_key")[3]
    inside = shape(facility.geom).point_on_surface()
    decision = route((inside.x + 0.0005, inside.y), category("school-territory"))
    stored = RoutingDecision.objects.get(pk=decision.pk)
    assert stored.engine_version == ENGINE_VERSION
    assert stored.department_id == decision.department_id and stored.explanation_ru == decision.explanation_ru
    found = facilities_near_point((inside.x + 0.0005, inside.y), type_ids=[school.pk], radius_m=100, limit=5)
    assert [c["facility_id"] for c in stored.candidates] == [f.facility_id for f in found[1:]]
    assert all(set(c) == {"facility_id", "name", "owner", "distance_m"} for c in stored.candidates)


def test_the_engine_agrees_with_the_registry_selectors_on_random_points():
    rng = random.Random(7)
    types = {t.code: t.pk for t in FacilityType.objects.all()}
    checks = [("school-territory", ["school"], 100), ("hospital-access", ["hospital"], 300),
              ("kindergarten-territory", ["kindergarten", "school"], 100), ("college-territory", ["college"], 150)]
    facility_hits = 0
    for n in range(300):
        point = (rng.uniform(37.35, 37.85), rng.uniform(55.57, 55.92))
        code, type_codes, radius = checks[n % len(checks)]
        areas = areas_covering_point(point)
        if not areas:
            with pytest.raises(OutsideCity):
                route(point, category(code))
            continue
        decision = route(point, category(code))
        assert decision.area_id == areas[0].pk
        near = facilities_near_point(point, type_ids=[types[t] for t in type_codes], radius_m=radius, limit=1)
        if near:
            facility_hits += 1
            assert decision.facility_id == near[0].facility_id
            assert decision.distance_m == pytest.approx(near[0].distance_m, abs=0.01)
        else:
            assert decision.facility_id is None and decision.rule == RoutingDecision.Rule.DEPARTMENT
    # schools lie thick on the ground; make sure the sample did exercise the facility rules
    for n in range(200):
        school = Facility.objects.filter(type__code="school").order_by("id")[n * 2]
        x, y = shape(school.geom).centroid.coords[0]
        point = (x + rng.uniform(-0.002, 0.002), y + rng.uniform(-0.001, 0.001))
        if not areas_covering_point(point):
            continue
        near = facilities_near_point(point, type_ids=[types["school"]], radius_m=100, limit=1)
        decision = route(point, category("school-territory"))
        assert decision.facility_id == (near[0].facility_id if near else None)
        facility_hits += bool(near)
    assert facility_hits > 100


def test_department_for_reads_the_routing_table():
    council = AdminArea.objects.get(level="district", name="Тверской").authority
    assert department_for(council, category("yard-snow")).code == "winter"  # an exact row
    assert department_for(council, category("yard-pothole")).code == "zhkh"  # the councils' yards group
    assert department_for(council, category("illegal-trade")).code == "main"  # no row: the main department
    default = Department.objects.create(authority=council, code="front-desk", name="Приёмная")
    RoutingAssignment.objects.create(authority=council, category=None, department=default)
    assert department_for(council, category("illegal-trade")) == default  # the authority's default row
    assert department_for(council, category("yard-snow")).code == "winter"  # exact still wins
