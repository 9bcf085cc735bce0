"""The explanation's two lookups as SQL functions (routing migration 0009): routing_i18n_any, the last fall-back
of a translated name, and routing_group_category_i18n, the category that rule facility_group quotes; and the
explanations route() writes with them."""
import json

import pytest
from django.db import connection

from facilities.models import Facility, FacilityType
from routing.engine import ROUTE_SQLS, decide_sql, decide_unworded_sql, route
from routing.models import Category, RoutingDecision
from tests.routing.conftest import category

pytestmark = pytest.mark.django_db


def sql_one(sql, params=()):
    with connection.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()[0]


def any_text(names):
    return sql_one("SELECT routing_i18n_any(%s::jsonb)", [None if names is None else json.dumps(names)])


@pytest.mark.parametrize("names, expected", [
    ({"fr": "Lampadaire", "de": "Laterne"}, "Laterne"),  # the first by language code, not by the order given
    ({"de": "", "fr": "Lampadaire"}, "Lampadaire"),  # an empty text does not count
    ({"de": "", "fr": ""}, None),
    ({}, None),
    (None, None),
])
def test_a_names_any_language_text_is_its_first_non_empty_one_by_code(names, expected):
    assert any_text(names) == expected


def group_category(type_id, group_i18n):
    found = sql_one("SELECT routing_group_category_i18n(%s, %s::jsonb)",
                    [type_id, None if group_i18n is None else json.dumps(group_i18n)])
    return found if found is None or isinstance(found, dict) else json.loads(found)


def expected_group_category(type_id, group_i18n):
    """The rule, in Python: of the group's active categories of the facility rule that list the type, the most
    specific (fewest facility types), then by code."""
    candidates = [(k.facility_types.count(), k.code, k.name_i18n)
                  for k in Category.objects.filter(group_i18n=group_i18n, rule="facility", active=True,
                                                   facility_types__id=type_id)]
    return min(candidates)[2] if candidates else None


def test_the_group_s_category_for_a_type_is_the_most_specific_active_one_then_by_code():
    pairs = {(t.id, json.dumps(k.group_i18n, sort_keys=True))
             for k in Category.objects.filter(rule="facility") for t in k.facility_types.all()}
    assert len(pairs) >= 5  # the demo catalogue has several groups of facility categories
    for type_id, group in sorted(pairs):
        group_i18n = json.loads(group)
        assert group_category(type_id, group_i18n) == expected_group_category(type_id, group_i18n), (type_id, group)
    # the one chosen for a pair, made inactive, gives way to the next (or to none)
    type_id, group = sorted(pairs)[0]
    group_i18n = json.loads(group)
    chosen = group_category(type_id, group_i18n)
    Category.objects.filter(name_i18n=chosen, group_i18n=group_i18n).update(active=False)
    after = group_category(type_id, group_i18n)
    assert after != chosen and after == expected_group_category(type_id, group_i18n)


def test_the_group_s_category_is_none_for_a_type_or_group_it_does_not_hold_and_for_null():
    some = Category.objects.filter(rule="facility").exclude(facility_types=None).first()
    type_id = some.facility_types.first().id
    assert group_category(type_id, {"en": "No such group", "ru": "Нет такого раздела"}) is None
    assert group_category(-1, some.group_i18n) is None
    assert group_category(None, some.group_i18n) is None
    assert group_category(type_id, None) is None


def school_decision():
    """route() inside a school building that only that school's outline covers: rule facility_covers."""
    cat = category("school-territory")
    for school in Facility.objects.active().filter(type__code="school").order_by("source_key")[:40]:
        point = school.geom.point_on_surface
        decision = route((point.x, point.y), cat)
        if decision.rule == RoutingDecision.Rule.FACILITY_COVERS and decision.facility_id == school.pk:
            return school, (point.x, point.y), cat
    raise AssertionError("no school building of its own among the first 40")


def test_an_explanation_names_a_facility_type_in_any_language_it_has_then_by_its_code():
    school, point, cat = school_decision()
    owner = school.owner.short_name
    school_type = FacilityType.objects.get(code="school")
    school_type.name_i18n = {"fr": "École", "de": "Schule"}  # neither ru nor en
    school_type.save()
    decision = route(point, cat)
    assert decision.explanation_ru == f"Schule {owner} отвечает за это здание: точка внутри его контура"
    assert decision.explanation_en == f"Schule {owner} is responsible for this building: the point is inside its outline"
    school_type.name_i18n = {"de": "", "en": ""}
    school_type.save()
    assert route(point, cat).explanation_en.startswith(f"school {owner} is responsible")


def test_route_s_statements_set_up_no_subquery_for_the_rare_lookups():
    # they are function calls in the sentences' arguments, made only for the rows that need them, not subqueries
    # (SubPlans) that every call set up, and ran for most decisions (no level name, no group's category)
    for statement in ROUTE_SQLS.values():
        assert "routing_i18n_any(" in statement and "routing_group_category_i18n(" in statement
        assert "jsonb_each_text" not in statement
    source = ("SELECT 0::bigint AS key, ST_SetSRID(ST_MakePoint(37.62, 55.75), 4326) AS g, c.id AS category_id, "
              "NULL::bigint AS picked_id, NULL::bigint[] AS known_facilities, NULL::bigint AS known_area_id "
              "FROM routing_category c WHERE c.code = 'streetlight-out'")
    worded, unworded = (plan(sql(source, known=False, picked=False)) for sql in (decide_sql, decide_unworded_sql))
    assert "routing_i18n_any(" in worded and "routing_group_category_i18n(" in worded  # called, not inlined
    assert worded.count("SubPlan") == unworded.count("SubPlan")  # the words add none
    assert "routing_i18n_any(" not in unworded


def plan(sql):
    with connection.cursor() as cur:
        cur.execute("EXPLAIN (VERBOSE, COSTS OFF) " + sql)
        return "\n".join(r[0] for r in cur.fetchall())
