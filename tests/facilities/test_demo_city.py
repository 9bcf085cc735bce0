"""The Moscow demo city, loaded through the importers, and the registry's spatial selectors on it."""
import pytest
import shapely
from django.contrib.gis.geos import Point
from django.core.management import call_command

from facilities.models import AdminArea, Authority, Department, Facility, FacilityType
from facilities.selectors import areas_covering_point, facilities_near_point
from importers.core import run_import
from importers.management.commands.load_demo import demo_steps
from importers.models import ImportRun

pytestmark = pytest.mark.django_db

RED_SQUARE = (37.6208, 55.7539)


def test_demo_has_okrugs_and_districts_with_their_authorities():
    okrugs = AdminArea.objects.active().filter(level="okrug")
    districts = AdminArea.objects.active().filter(level="district")
    assert okrugs.count() == 12
    assert districts.count() == 146
    assert not okrugs.filter(authority__isnull=True).exists()
    assert set(okrugs.values_list("authority__kind", flat=True)) == {"prefecture"}
    assert not districts.filter(authority__isnull=True).exists()
    assert districts.values("authority").distinct().count() == 146
    assert set(districts.values_list("authority__kind", flat=True)) == {"district_council"}
    # every district sits in an okrug, and its council reports to that okrug's prefecture
    assert not districts.filter(parent__isnull=True).exists()
    tverskoy = districts.get(name="Тверской")
    assert tverskoy.parent.name == "Центральный"
    assert tverskoy.authority.short_name == "Управа района Тверской"
    assert tverskoy.authority.parent == tverskoy.parent.authority
    assert tverskoy.oktmo and tverskoy.okato


def test_demo_has_education_and_health_organisations():
    donm = Authority.objects.get(code="donm")
    dzm = Authority.objects.get(code="dzm")
    assert Authority.objects.filter(parent=donm, kind="institution").count() == 590
    assert Authority.objects.filter(parent=dzm, kind="institution").count() == 44
    assert Facility.objects.filter(owner__parent=donm).count() == 590
    # two of the 44 hospital sites lie outside the city's boundary and are rejected by the import
    assert Facility.objects.filter(type__code="hospital").count() == 42
    assert Department.objects.filter(is_triage=True).count() == 1
    # every authority has a department that works its tickets
    assert not Authority.objects.filter(departments__isnull=True).exists()


def test_red_square_is_in_tverskoy_district_of_the_central_okrug():
    areas = areas_covering_point(RED_SQUARE)
    assert [(a.level_id, a.name) for a in areas] == [("district", "Тверской"), ("okrug", "Центральный")]


def test_a_point_exactly_on_a_district_boundary_is_covered():
    tverskoy = AdminArea.objects.get(level="district", name="Тверской")
    shape = shapely.from_wkb(bytes(tverskoy.geom.wkb))
    # a vertex of Тверской's outline that another district also touches: on the boundary of both
    neighbours = AdminArea.objects.filter(level="district", geom__touches=tverskoy.geom).exclude(pk=tverskoy.pk)
    assert neighbours.exists()
    shared = shapely.from_wkb(bytes(neighbours[0].geom.wkb)).boundary.intersection(shape.boundary)
    vertex = shapely.get_coordinates(shared)[0]
    on_boundary = Point(float(vertex[0]), float(vertex[1]), srid=4326)
    assert tverskoy.geom.boundary.distance(on_boundary) == 0
    covering = [a.name for a in areas_covering_point(on_boundary, level="district")]
    assert "Тверской" in covering
    assert areas_covering_point((30.0, 60.0)) == []  # Saint Petersburg is not in Moscow


def test_a_point_in_a_school_building_finds_that_school():
    school = FacilityType.objects.get(code="school")
    checked = 0
    for facility in Facility.objects.filter(type=school).order_by("source_key")[:25]:
        inside = shapely.from_wkb(bytes(facility.geom.wkb)).point_on_surface()
        found = facilities_near_point((inside.x, inside.y), type_ids=[school.pk], radius_m=50, limit=3)
        covering = [f for f in found if f.covers]
        assert facility.pk in [f.facility_id for f in covering], facility.name
        assert all(f.distance_m == 0 for f in covering)
        checked += 1
    assert checked == 25


def test_nearest_is_by_true_distance_in_metres():
    hospital_type = FacilityType.objects.get(code="hospital")
    hospital = Facility.objects.filter(type=hospital_type).order_by("source_key").first()
    site = shapely.from_wkb(bytes(hospital.geom.wkb))
    first = shapely.get_geometry(site, 0) if site.geom_type.startswith("Multi") else site
    # 0.001 degrees of longitude at 55.7N is about 62.8 m; of latitude about 111.3 m
    east = (first.x + 0.001, first.y)
    found = facilities_near_point(east, type_ids=[hospital_type.pk], radius_m=500, limit=5)
    assert found and found[0].facility_id == hospital.pk
    assert found[0].distance_m < 70
    assert found[0].distance_m > 55  # metres, not degrees: 0.001 would be the degree distance
    within_10m = facilities_near_point(east, type_ids=[hospital_type.pk], radius_m=10)
    assert hospital.pk not in [f.facility_id for f in within_10m]


def test_reimporting_the_demo_changes_nothing():
    before = list(Facility.objects.order_by("id").values_list("id", "source_key", "valid_to"))
    areas_before = list(AdminArea.objects.order_by("id").values_list("id", "valid_to"))
    for file, spec in demo_steps():
        result = run_import(file, spec, commit=True)
        assert result.run.status == ImportRun.Status.NO_CHANGE, spec.name
        assert (result.counts["created"], result.counts["updated"], result.counts["retired"]) == (0, 0, 0)
    assert list(Facility.objects.order_by("id").values_list("id", "source_key", "valid_to")) == before
    assert list(AdminArea.objects.order_by("id").values_list("id", "valid_to")) == areas_before


def test_load_demo_command_prints_each_step(capsys):
    call_command("load_demo")
    out = capsys.readouterr().out
    assert "moscow_districts" in out and "no_change" in out and "demo login: admin" in out
