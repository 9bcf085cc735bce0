"""Area levels are data (issue 12 §2): a city's own levels and their order, declared by its areas specs, and the
area rule naming any of them; the re-route's quick path walks a known area's ancestors, however deep."""
import pytest
import yaml
from django.db import connection

from facilities.models import AdminArea, AreaLevel
from importers.core import run_import
from importers.errors import ImportFailure
from routing.engine import decide_sql, route
from routing.models import Category, RoutingDecision
from tests.conftest import write_geojson

pytestmark = pytest.mark.django_db

# A city far from the demo's: a borough holds two wards, the first ward a neighbourhood.
BOROUGH = [[[10.0, 10.0], [10.2, 10.0], [10.2, 10.2], [10.0, 10.2], [10.0, 10.0]]]
WARDS = {"w1": [[[10.0, 10.0], [10.1, 10.0], [10.1, 10.2], [10.0, 10.2], [10.0, 10.0]]],
         "w2": [[[10.1, 10.0], [10.2, 10.0], [10.2, 10.2], [10.1, 10.2], [10.1, 10.0]]]}
HOOD = [[[10.0, 10.0], [10.05, 10.0], [10.05, 10.05], [10.0, 10.05], [10.0, 10.0]]]
IN_HOOD = (10.02, 10.02)
IN_WARD_2 = (10.15, 10.1)


def polygon(rings):
    return {"type": "Polygon", "coordinates": rings}


def load(tmp_path, name, features, spec):
    path = write_geojson(tmp_path / f"{name}.geojson", features, crs="EPSG:4326")
    result = run_import(path, spec, commit=True, reroute=False)
    assert result.counts["rejected"] == 0, result.rejects
    return result


@pytest.fixture
def city(tmp_path):
    """Three levels of the city's own, each declared by the spec that loads its areas, largest first."""
    load(tmp_path, "boroughs", [({"id": "b1", "name": "North"}, polygon(BOROUGH))], {
        "dataset": "t-lv-boroughs", "target": "areas", "key": "id", "name": "name",
        "level": {"code": "borough", "rank": 0, "name_en": "borough", "name_ru": "боро"},
        "jurisdiction": {"code": "t-lv-borough-{id}", "name": "Borough office {name}"}})
    load(tmp_path, "wards", [({"id": k, "name": f"Ward {k}", "b": "b1"}, polygon(r)) for k, r in WARDS.items()], {
        "dataset": "t-lv-wards", "target": "areas", "key": "id", "name": "name",
        "level": {"code": "ward", "rank": 1, "name_en": "ward"},
        "parent": {"level": "borough", "field": "b"},
        "jurisdiction": {"code": "t-lv-ward-{id}", "name": "Ward office {name}", "parent": {"template": "t-lv-borough-{b}"}}})
    load(tmp_path, "hoods", [({"id": "n1", "name": "Mission", "w": "Ward w1"}, polygon(HOOD))], {
        "dataset": "t-lv-hoods", "target": "areas", "key": "id", "name": "name",
        "level": {"code": "neighbourhood", "rank": 2, "name_en": "neighbourhood"},
        "parent": {"level": "ward", "field": "w", "match": "name"},
        "jurisdiction": {"code": "t-lv-hood-{id}", "name": "Neighbourhood office {name}"}})
    rows = [{"code": f"t-lv-{rule}", "name_en": rule, "name_ru": rule, "group_en": "Levels", "group_ru": "Уровни",
             "rule": rule, "fallback": fallback, "types": types}
            for rule, fallback, types in [("ward", "", ""), ("borough", "", ""), ("neighbourhood", "", ""),
                                          ("facility", "ward", "school")]]
    path = tmp_path / "cats.yaml"
    path.write_text(yaml.safe_dump(rows, allow_unicode=True), encoding="utf-8")
    spec = {"dataset": "t-lv-cats", "target": "categories", "key": "code", "code": "code", "name_en": "name_en",
            "name_ru": "name_ru", "group_en": "group_en", "group_ru": "group_ru", "rule": "rule",
            "fallback": "fallback", "facility_types": "types", "radius_m": {"value": 10}}
    result = run_import(path, spec, commit=True, reroute=False)
    assert result.counts["rejected"] == 0, result.rejects
    return {a.source_key: a for a in AdminArea.objects.filter(dataset__code__startswith="t-lv-")}


def test_the_levels_are_the_citys_in_its_order(city):
    levels = {lv.code: lv for lv in AreaLevel.objects.filter(code__in=["borough", "ward", "neighbourhood"])}
    assert [levels[c].rank for c in ("borough", "ward", "neighbourhood")] == [0, 1, 2]
    assert levels["borough"].name_i18n == {"en": "borough", "ru": "боро"}
    assert city["w1"].parent == city["b1"] and city["n1"].parent == city["w1"]
    assert city["w1"].authority.parent == city["b1"].authority  # the jurisdiction's parent, a template of a code
    assert dict(Category.objects.filter(code__startswith="t-lv-").values_list("code", "area_level")) == {
        "t-lv-ward": "ward", "t-lv-borough": "borough", "t-lv-neighbourhood": "neighbourhood",
        "t-lv-facility": "ward"}


@pytest.mark.parametrize("code, point, area", [
    ("t-lv-ward", IN_HOOD, "w1"), ("t-lv-ward", IN_WARD_2, "w2"), ("t-lv-borough", IN_HOOD, "b1"),
    ("t-lv-neighbourhood", IN_HOOD, "n1"), ("t-lv-facility", IN_HOOD, "w1"),  # no school there: its fall-back
])
def test_the_area_rule_names_any_level(city, code, point, area):
    decision = route(point, Category.objects.get(code=code))
    assert decision.rule == RoutingDecision.Rule.AREA
    assert decision.authority_id == city[area].authority_id
    # the decision keeps the smallest covering area; the explanation names the level's area, by the level's name
    assert decision.area_id == (city["n1"] if point == IN_HOOD else city["w2"]).pk
    level = city[area].level_id
    assert decision.explanation_en.endswith(f"is responsible for the territory of the {level} {city[area].name}")


def test_a_level_with_no_area_at_the_point_goes_to_triage(city):
    decision = route(IN_WARD_2, Category.objects.get(code="t-lv-neighbourhood"))  # ward 2 has no neighbourhood
    assert decision.rule == RoutingDecision.Rule.TRIAGE


@pytest.mark.parametrize("code, area", [("t-lv-ward", "w1"), ("t-lv-borough", "b1"), ("t-lv-neighbourhood", "n1")])
def test_the_quick_path_finds_the_level_among_the_known_areas_ancestors(city, code, area):
    """The re-route's quick path searches nothing: the known (smallest) area and the areas above it decide."""
    sql = decide_sql("SELECT 1::bigint AS key, ST_SetSRID(ST_MakePoint(%s, %s), 4326) AS g, %s::bigint AS category_id, "
                     "NULL::bigint AS picked_id, NULL::bigint[] AS known_facilities, %s::bigint AS known_area_id")
    with connection.cursor() as cur:
        # a point far outside every area: only the known area can answer
        cur.execute(sql, [0.0, 0.0, Category.objects.get(code=code).pk, city["n1"].pk])
        rule, department_id, authority_id = (lambda r: (r[1], r[2], r[3]))(cur.fetchone())
    assert rule == "area" and authority_id == city[area].authority_id


def test_an_areas_spec_must_name_a_level_of_the_city_or_declare_it(tmp_path, city):
    spec = {"dataset": "t-lv-bad", "target": "areas", "key": "id", "name": "name", "level": "wrad"}
    path = write_geojson(tmp_path / "x.geojson", [({"id": "x", "name": "X"}, polygon(HOOD))], crs="EPSG:4326")
    with pytest.raises(ImportFailure, match=r"spec: level 'wrad' is not one of the city's area levels "
                                            r"\(.*borough.*ward.*\): declare it"):
        run_import(path, spec, commit=True)
    with pytest.raises(ImportFailure, match="parent.level 'boro' is not one of the city's area levels"):
        run_import(path, {**spec, "level": "ward", "parent": {"level": "boro", "field": "name"}}, commit=True)
    for bad, message in [({"code": "x", "rank": -1}, "rank must be a whole number"),
                         ({"code": "x", "rank": 1, "colour": "red"}, "unknown key 'colour' in level"),
                         ({"code": "X Y", "rank": 1}, "'level' must be an area level's code")]:
        with pytest.raises(ImportFailure, match=message):
            run_import(path, {**spec, "level": bad}, commit=True)
    assert not AreaLevel.objects.filter(code__in=["wrad", "x"]).exists()


def test_a_category_naming_a_level_the_city_has_not_is_rejected(tmp_path, city):
    rows = [{"code": "t-lv-x", "name_en": "x", "name_ru": "x", "group_en": "g", "group_ru": "g", "rule": rule,
             "level": level} for rule, level in [("precinct", ""), ("area", ""), ("area", "precinct")]]
    rows = [{**r, "code": f"t-lv-x{i}"} for i, r in enumerate(rows)]
    path = tmp_path / "cats.yaml"
    path.write_text(yaml.safe_dump(rows), encoding="utf-8")
    spec = {"dataset": "t-lv-x", "target": "categories", "key": "code", "code": "code", "name_en": "name_en",
            "name_ru": "name_ru", "group_en": "group_en", "group_ru": "group_ru", "rule": "rule",
            "area_level": "level"}
    result = run_import(path, spec, commit=True, reroute=False)
    reasons = [reason for _, _, reason in result.rejects]
    assert result.counts["rejected"] == 3 and result.counts["created"] == 0
    assert reasons[0].startswith("rule 'precinct' is not facility, department, area or one of the city's area "
                                 "levels (")
    assert reasons[1] == "the area rule needs area_level (the level whose area's authority answers)"
    assert reasons[2].startswith("area level 'precinct' is not one of the city's area levels")
