"""The place over the category (issue 11 §2), on the real Moscow registry (data/moscow: data.mos.ru's education
organisations and adult hospitals, loaded by the demo): a complaint whose point lies inside the outline of a
facility of a type of the picked category's group goes to that building's owner (rule facility_group), the
explanation says so, and no facility of another owner nearby takes it. The same rule holds in route() and in the
set-based re-route (routing.engine's DECIDE_SQL serves both)."""
import pytest
import shapely

from complaints.models import Complaint
from complaints.services import complaints_reroute
from facilities.models import Authority, Facility
from facilities.selectors import facilities_near_point
from routing.engine import route
from routing.models import RoutingDecision
from tests.routing.conftest import category, make_complaint

pytestmark = pytest.mark.django_db

GROUP = RoutingDecision.Rule.FACILITY_GROUP
EDUCATION_TYPES = ("school", "kindergarten", "college", "extracurricular", "education")
UNIVERSITY = "образовательная организация высшего образования"
COLLEGE = "профессиональная образовательная организация"

# (the building: its facility type and, for colleges, the organisation's kind in data.mos.ru; the category filed;
# the category of the group for such a building, named in the explanation: the one with the fewest facility types,
# then by code). Universities are of type college in
# the demo (data/specs/moscow_education_buildings.yaml).
CASES = {
    "college-under-school-territory": ("college", COLLEGE, "school-territory", "college-territory"),
    "university-under-school-territory": ("college", UNIVERSITY, "school-territory", "college-territory"),
    "kindergarten-under-school-building": ("kindergarten", None, "school-building", "kindergarten-territory"),
    "school-under-college-territory": ("school", None, "college-territory", "school-building"),
    "extracurricular-under-school-territory": ("extracurricular", None, "school-territory",
                                               "extracurricular-territory"),
    "extracurricular-under-kindergarten": ("extracurricular", None, "kindergarten-territory",
                                           "extracurricular-territory"),
    "hospital-under-clinic-service": ("hospital", None, "clinic-service", "hospital-access"),
}


def shape(geom):
    return shapely.from_wkb(bytes(geom.wkb))


@pytest.fixture(scope="module")
def registry(django_db_blocker):
    """Every current education and hospital facility with its shape, and an index over them."""
    with django_db_blocker.unblock():
        facilities = list(Facility.objects.active().filter(type__code__in=EDUCATION_TYPES + ("hospital",))
                          .select_related("type", "owner").order_by("source_key"))
    shapes = [shape(f.geom) for f in facilities]
    return facilities, shapes, shapely.STRtree(shapes)


def inside_points(registry, type_code, org_type, limit=12, per_facility=3):
    """(facility, point) for real buildings of the type: a point inside each of a few building parts of each
    facility that no other facility of the registry touches (for a hospital's MultiPoint site: its points)."""
    facilities, shapes, tree = registry
    out = []
    for n, facility in enumerate(facilities):
        if facility.type.code != type_code or (org_type and facility.attrs.get("OrgType") != org_type):
            continue
        taken = 0
        for part in shapely.get_parts(shapes[n]):
            p = part if part.geom_type == "Point" else part.point_on_surface()
            if {int(i) for i in tree.query(p, predicate="intersects")} == {n}:
                out.append((facility, (p.x, p.y)))
                taken += 1
                if taken >= per_facility or len(out) >= limit:
                    break
        if len(out) >= limit:
            break
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_inside_a_building_of_the_group_its_owner_answers(registry, case):
    type_code, org_type, code, matching = CASES[case]
    cat = category(code)
    assert not cat.facility_types.filter(code=type_code).exists()  # the building is not of the category's types
    points = inside_points(registry, type_code, org_type, per_facility=12 if org_type == UNIVERSITY else 3)
    # the real registry has 2 standalone kindergartens (the others belong to school complexes), one university
    assert len(points) >= (2 if type_code == "kindergarten" else 5), case
    for facility, point in points:
        decision = route(point, cat)
        assert decision.rule == GROUP, (case, facility.name, decision.explanation_en)
        assert decision.facility_id == facility.pk
        assert decision.authority_id == facility.owner_id
        assert decision.department.authority_id == facility.owner_id
        assert decision.distance_m == 0
        group, matching_name = cat.group_i18n["en"], category(matching).name_i18n["en"]
        assert decision.explanation_en == (
            f"{facility.type.name_i18n['en']} {facility.owner.short_name} is responsible for this building: the point is "
            f"inside its outline, and the building belongs to the group «{group}» of the category picked "
            f"(the category for such a building: «{matching_name}»), so no facility of another owner "
            f"nearby was chosen")
        assert decision.explanation_ru.startswith(
            f"{facility.type.name_i18n['ru']} {facility.owner.short_name} отвечает за это здание: точка внутри его контура")
        assert f"«{category(matching).name_i18n['ru']}»" in decision.explanation_ru


def test_a_facility_of_another_owner_nearby_does_not_take_a_point_inside_a_building(registry):
    """The issue's own cases: "school territory" inside a college's or a university's building, with a school of
    another owner within the category's radius, went to that school (or to the Department of Education)."""
    cat = category("school-territory")
    school_ids = list(cat.facility_types.values_list("pk", flat=True))
    contested = 0
    for org_type in (COLLEGE, UNIVERSITY):
        for facility, point in inside_points(registry, "college", org_type, limit=400):
            near = [n for n in facilities_near_point(point, type_ids=school_ids, radius_m=cat.radius_m)]
            others = Facility.objects.filter(pk__in=[n.facility_id for n in near]).exclude(owner=facility.owner_id)
            if not others.exists():
                continue
            decision = route(point, cat)
            assert decision.rule == GROUP and decision.facility_id == facility.pk, facility.name
            assert decision.authority_id == facility.owner_id
            contested += 1
    assert contested >= 3  # measured: the real registry has such buildings with a school of another owner nearby


def test_the_category_of_the_buildings_own_type_still_answers_with_facility_covers(registry):
    facility, point = inside_points(registry, "college", COLLEGE)[0]
    decision = route(point, category("college-territory"))
    assert decision.rule == RoutingDecision.Rule.FACILITY_COVERS
    assert decision.facility_id == facility.pk


@pytest.mark.parametrize("code", ["hospital-territory", "yard-pothole", "road-pothole", "park-rubbish"])
def test_a_building_of_another_group_does_not_decide(registry, code):
    """A school building under a hospital, yard, road or park category: not of the category's group."""
    facility, point = inside_points(registry, "school", None)[0]
    decision = route(point, category(code))
    assert decision.rule != GROUP
    assert decision.facility_id != facility.pk


def test_inside_a_building_whose_owner_can_not_answer_the_fallback_answers_not_a_facility_nearby(registry):
    cat = category("school-territory")
    school_ids = list(cat.facility_types.values_list("pk", flat=True))
    for facility, point in inside_points(registry, "college", None, limit=400):
        near = facilities_near_point(point, type_ids=school_ids, radius_m=cat.radius_m)
        if near:
            break
    else:
        pytest.fail("no college building with a school nearby")
    Authority.objects.filter(pk=facility.owner_id).update(valid_to="2026-01-01T00:00:00Z")  # retired: no department
    decision = route(point, cat)
    assert decision.rule == RoutingDecision.Rule.DEPARTMENT  # the category's fallback (ДОНМ), not the school nearby
    assert decision.department_id == cat.department_id


# --- the same rule in the set-based re-route -----------------------------------------------------------------

def _retire(facility, retired):
    Facility.objects.filter(pk=facility.pk).update(valid_to="2026-01-01T00:00:00Z" if retired else None)


def _contested_college(registry):
    """A college building with a school of another owner within school-territory's radius."""
    cat = category("school-territory")
    school_ids = list(cat.facility_types.values_list("pk", flat=True))
    for facility, point in inside_points(registry, "college", None, limit=400):
        near = facilities_near_point(point, type_ids=school_ids, radius_m=cat.radius_m)
        if Facility.objects.filter(pk__in=[n.facility_id for n in near]).exclude(owner=facility.owner_id).exists():
            return facility, point
    pytest.fail("no contested college building")


@pytest.mark.parametrize("how", ["facilities", "spatial"])
def test_a_building_added_to_the_registry_takes_its_open_complaints_in_the_re_route(registry, how):
    college, point = _contested_college(registry)
    _retire(college, True)  # the building is not in the registry yet: the school nearby took the complaints
    complaints = [make_complaint(point, code) for code in ("school-territory", "school-building")]
    closed = make_complaint(point, "school-territory", state="resolved")
    assert {c.decision.rule for c in complaints} == {RoutingDecision.Rule.FACILITY_NEAREST}
    _retire(college, False)  # the building arrives (an import would ask for exactly this re-route)

    if how == "facilities":
        result = complaints_reroute(facilities=[college.pk], reason="test")
    else:
        result = complaints_reroute(complaint_ids=[c.pk for c in (*complaints, closed)], reason="test")
    assert result.moved == len(complaints)
    for c in complaints:
        c.refresh_from_db()
        assert c.decision.rule == GROUP and c.facility_id == college.pk
        assert c.department.authority_id == college.owner_id
        assert c.decision.explanation_en == route(point, c.category).explanation_en  # one rule, the same answer
    closed.refresh_from_db()
    assert closed.decision.rule == RoutingDecision.Rule.FACILITY_NEAREST  # closed complaints keep theirs

    # The building leaves the registry again: the quick path knows it from the decision, and they go back.
    _retire(college, True)
    result = complaints_reroute(facilities=[college.pk], reason="test")
    assert result.moved == len(complaints)
    for c in complaints:
        c.refresh_from_db()
        assert c.decision.rule == RoutingDecision.Rule.FACILITY_NEAREST and c.facility_id != college.pk


def test_a_type_leaving_the_group_re_routes_the_groups_other_categories(registry):
    college, point = _contested_college(registry)
    complaint = make_complaint(point, "school-territory")
    assert complaint.decision.rule == GROUP
    # college-territory moves to another group: colleges are no longer of the schools' group
    college_cat = category("college-territory")
    type(college_cat).objects.filter(pk=college_cat.pk).update(group_i18n={"ru": "Колледжи", "en": "Colleges"})
    result = complaints_reroute(categories=[college_cat.pk], reason="test")
    assert result.moved == 1
    complaint.refresh_from_db()
    assert complaint.decision.rule == RoutingDecision.Rule.FACILITY_NEAREST
    assert complaint.department.authority_id != college.owner_id


def test_no_open_complaint_disagrees_with_route_after_a_full_re_route(registry):
    """Complaints at the buildings of every case, decided by route(), then a full re-route: nothing moves (the
    re-route reaches the same answers as route() for every one)."""
    made = []
    for type_code, org_type, code, _matching in CASES.values():
        for _facility, point in inside_points(registry, type_code, org_type, limit=3):
            made.append(make_complaint(point, code))
    assert {c.decision.rule for c in made} == {GROUP}
    result = complaints_reroute(complaint_ids=[c.pk for c in made], reason="test")
    assert result.moved == 0
    assert Complaint.objects.filter(pk__in=[c.pk for c in made], decision__rule=GROUP).count() == len(made)
