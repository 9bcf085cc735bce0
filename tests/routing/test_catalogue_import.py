"""The service catalogue as data: the demo catalogue, and the importer targets categories, assignments, holidays."""
from pathlib import Path

import pytest
import yaml
from django.conf import settings

from facilities.models import Authority, Department, FacilityType
from importers.core import run_import
from importers.errors import ImportFailure
from importers.models import ImportRun
from routing.models import Category, CategoryAttribute, Holiday, RoutingAssignment

pytestmark = pytest.mark.django_db

DATA = Path(settings.BASE_DIR) / "data"
CATALOGUE = DATA / "moscow" / "catalogue.yaml"
CATEGORIES_SPEC = DATA / "specs" / "moscow_categories.yaml"


def test_the_demo_catalogue():
    categories = Category.objects.filter(active=True)
    assert categories.count() >= 25
    groups = {c.group_i18n["en"] for c in categories}
    assert {"Yards", "Roads", "Schools and kindergartens", "Clinics and hospitals", "Public transport stops", "Parks",
            "Lighting", "Waste"} <= groups
    assert set(categories.values_list("rule", flat=True)) == {"facility", "area", "department"}
    # the area rule names the city's own levels (data: the areas specs declare them)
    assert set(categories.filter(rule="area").values_list("area_level", flat=True)) == {"district", "okrug"}
    assert all(c.name_i18n.get("ru") and c.name_i18n.get("en") for c in categories)
    attributes = CategoryAttribute.objects.filter(category__in=categories)
    assert set(attributes.values_list("datatype", flat=True)) == {c.value for c in CategoryAttribute.Datatype}
    assert attributes.filter(required=True).exists() and attributes.filter(required=False).exists()
    size = CategoryAttribute.objects.get(category__code="yard-pothole", code="size")
    assert size.required and size.order == 1
    assert [v["key"] for v in size.values] == ["small", "medium", "large"]
    assert size.values[0] == {"key": "small", "name_i18n": {"ru": "До 30 см", "en": "Up to 30 cm"}}
    school = Category.objects.get(code="kindergarten-territory")
    assert set(school.facility_types.values_list("code", flat=True)) == {"kindergarten", "school"}
    assert school.radius_m == 100 and school.area_level is None and school.department.authority.code == "donm"
    pothole = Category.objects.get(code="yard-pothole")
    assert pothole.keywords.startswith("яма, выбоина, асфальт, провал") and "pothole" not in pothole.keywords
    assert pothole.keywords_en == "pothole, hole, asphalt, yard, driveway, broken surface"  # per language
    # the declared types of things the demo has no data for yet
    assert FacilityType.objects.get(code="streetlight").name_i18n == {"ru": "Фонарь", "en": "Streetlight"}


def test_the_demo_routing_table():
    councils = Authority.objects.filter(kind="district_council", valid_to__isnull=True)
    yards = Category.objects.filter(group_i18n__en="Yards").count()
    zhkh = RoutingAssignment.objects.filter(authority__kind="district_council", department__code="zhkh")
    assert zhkh.count() == councils.count() * (yards + Category.objects.filter(group_i18n__en="Waste").count()) - 1
    snow = RoutingAssignment.objects.get(authority__code="council-45382000", category__code="yard-snow")
    assert snow.department.name == "Штаб зимней уборки"  # the specific row beat the kind-and-group row
    assert Department.objects.get(authority__code="council-45382000", code="zhkh").display_name == \
        "Отдел ЖКХ и благоустройства (Управа района Тверской)"


def write_catalogue(tmp_path, rows):
    path = tmp_path / "catalogue.yaml"
    path.write_text(yaml.safe_dump(rows, allow_unicode=True), encoding="utf-8")
    return path


def spec(**extra):
    raw = yaml.safe_load(CATEGORIES_SPEC.read_text(encoding="utf-8"))
    raw.update(dataset="test-catalogue", **extra)
    return raw


# Every field the spec names, so that a one-row file still has them all (a missing field stops an import).
BASE = {"group_ru": "Тест", "group_en": "Test", "rule": "district", "deadline_days": 3, "description_ru": "",
        "description_en": "", "keywords": "", "keywords_en": "", "facility_types": "", "radius_m": "", "fallback": "",
        "department": "",
        "attributes": []}


def test_categories_are_created_updated_and_retired_and_bad_rows_rejected(tmp_path):
    rows = [
        {**BASE, "code": "t-one", "name_ru": "Один", "name_en": "One", "attributes": [
            {"code": "a", "datatype": "string", "description": "A?"},
            {"code": "b", "datatype": "multivaluelist", "required": True, "description": "B?",
             "values": [{"key": "x", "name_ru": "Икс", "name_en": "Ex"}, "y"]}]},
        {**BASE, "code": "t-two", "name_ru": "Два", "name_en": "Two", "rule": "facility",
         "facility_types": "school, hospital", "radius_m": 50, "fallback": "department", "department": "dzm"},
        {**BASE, "code": "t-bad-rule", "name_ru": "x", "name_en": "x", "rule": "nearest"},
        {**BASE, "code": "t-bad-type", "name_ru": "x", "name_en": "x", "rule": "facility", "facility_types": ["ufo"]},
        {**BASE, "code": "t-bad-dept", "name_ru": "x", "name_en": "x", "rule": "department", "department": "nobody"},
        {**BASE, "code": "t-bad-attr", "name_ru": "x", "name_en": "x",
         "attributes": [{"code": "c", "datatype": "singlevaluelist", "description": "no values"}]},
        {**BASE, "code": "t-bad-days", "name_ru": "x", "name_en": "x", "deadline_days": "soon"},
    ]
    result = run_import(write_catalogue(tmp_path, rows), spec(), commit=True)
    assert (result.counts["created"], result.counts["rejected"]) == (2, 5)
    reasons = {key: reason for _, key, reason in result.rejects}
    assert "rule 'nearest'" in reasons["t-bad-rule"]
    assert "unknown facility type 'ufo'" in reasons["t-bad-type"]
    assert reasons["t-bad-dept"] == "unknown department: no department with code 'nobody'"
    assert "needs a list of values" in reasons["t-bad-attr"]
    assert "deadline_days" in reasons["t-bad-days"]
    one = Category.objects.get(code="t-one")
    assert [(a.code, a.datatype, a.required, a.order) for a in one.attributes.all()] == [
        ("a", "string", False, 1), ("b", "multivaluelist", True, 2)]
    assert one.attributes.get(code="b").values == [{"key": "x", "name_i18n": {"ru": "Икс", "en": "Ex"}},
                                                   {"key": "y", "name_i18n": {"ru": "y"}}]  # the default's
    two = Category.objects.get(code="t-two")
    assert set(two.facility_types.values_list("code", flat=True)) == {"school", "hospital"}
    assert two.department.authority.code == "dzm" and two.dataset.code == "test-catalogue"

    again = run_import(write_catalogue(tmp_path, rows), spec(), commit=True)
    assert again.run.status == ImportRun.Status.NO_CHANGE

    rows[0]["attributes"][0]["required"] = True
    result = run_import(write_catalogue(tmp_path, rows[:1]), spec(), commit=True)
    assert (result.counts["updated"], result.counts["retired"], result.counts["unchanged"]) == (1, 1, 0)
    assert one.attributes.get(code="a").required
    assert not Category.objects.get(code="t-two").active  # retired, not deleted: complaints point at it


def test_a_spec_must_name_the_required_category_fields():
    raw = spec()
    del raw["rule"]
    with pytest.raises(ImportFailure, match="'rule' is required"):
        run_import(CATALOGUE, raw)


def test_assignments_expand_kinds_and_groups_and_create_departments(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text("key,authority_match,authority,category_match,category,department,department_name\n"
                    "a,kind,prefecture,group,Yards,yards,Отдел дворов\n"
                    "b,code,prefecture-45286000,code,yard-snow,snow,Снег\n"
                    "c,code,dzm,code,,main,\n"
                    "d,code,nobody,code,yard-snow,x,\n"
                    "e,code,dzm,code,no-such-category,x,\n"
                    "f,planet,mars,code,,x,\n", encoding="utf-8")
    raw = {"dataset": "test-table", "target": "assignments", "key": "key",
           "authority": {"match": {"field": "authority_match"}, "field": "authority"},
           "category": {"match": {"field": "category_match"}, "field": "category"},
           "department": "department", "department_name": "department_name"}
    dry = run_import(path, raw)
    prefectures = Authority.objects.filter(kind="prefecture").count()
    yards = Category.objects.filter(group_i18n__en="Yards").count()
    assert dry.counts["created"] == prefectures * yards + 1  # b overrides one of a's; c is dzm's default row
    assert dry.counts["rejected"] == 3
    assert RoutingAssignment.objects.filter(department__code="yards").count() == 0  # a dry run
    result = run_import(path, raw, commit=True)
    assert result.counts["created"] == prefectures * yards + 1
    central = Authority.objects.get(code="prefecture-45286000")
    assert RoutingAssignment.objects.get(authority=central, category__code="yard-snow").department.name == "Снег"
    assert RoutingAssignment.objects.get(authority=central, category__code="yard-pothole").department.name == "Отдел дворов"
    assert RoutingAssignment.objects.get(authority__code="dzm", category=None).department.code == "main"
    assert run_import(path, raw, commit=True).run.status == ImportRun.Status.NO_CHANGE
    path.write_text("key,authority_match,authority,category_match,category,department,department_name\n"
                    "b,code,prefecture-45286000,code,yard-snow,snow,Зимняя уборка\n", encoding="utf-8")
    result = run_import(path, raw, commit=True)
    assert (result.counts["updated"], result.counts["retired"]) == (1, prefectures * yards)
    assert RoutingAssignment.objects.filter(dataset__code="test-table").count() == 1
    assert Department.objects.get(authority=central, code="snow").name == "Зимняя уборка"


def test_holidays(tmp_path):
    path = tmp_path / "days.csv"
    path.write_text("date,name\n2031-01-01,New Year\n2031-13-01,bad\n2031-01-02,\n", encoding="utf-8")
    raw = {"dataset": "test-days", "target": "holidays", "key": "date", "date": "date", "name": "name"}
    result = run_import(path, raw, commit=True)
    assert (result.counts["created"], result.counts["rejected"]) == (2, 1)
    assert Holiday.objects.get(date="2031-01-01").name == "New Year"
    path.write_text("date,name\n2031-01-01,Новый год\n", encoding="utf-8")
    result = run_import(path, raw, commit=True)
    assert (result.counts["updated"], result.counts["retired"]) == (1, 1)
    assert list(Holiday.objects.filter(date__year=2031).values_list("name", flat=True)) == ["Новый год"]


def test_catalogue_selectors(django_assert_num_queries):
    from routing.selectors import categories_active, category_active

    with django_assert_num_queries(3):
        categories = list(categories_active())
        attributes = {c.code: [a.code for a in c.attributes.all()] for c in categories}
        types = {c.code: {t.code for t in c.facility_types.all()} for c in categories}
    assert attributes["yard-pothole"] == ["size", "depth_cm"] and types["stop-pavilion"] == {"bus_stop"}
    assert category_active("yard-pothole").name_i18n["en"] == "Pothole or broken asphalt in a yard"
    assert category_active("no-such-thing") is None
