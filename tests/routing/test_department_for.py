"""routing_department_for (routing's migration 0003), the one rule for "which department of this authority handles
this category", on its own: exact row, default row, `main` department, none; a retired authority has none; and the
planner inlines it where the decision statement and the re-route call it."""
import pytest
from django.db import connection
from django.utils import timezone

from facilities.models import AdminArea, Authority, Department
from routing.engine import decide_sql
from routing.models import RoutingAssignment
from routing.services import DECIDE_LISTED_INPUT, KNOWN_FACILITIES, MAY_MOVE_SQL, REROUTE_INPUT
from tests.routing.conftest import category

pytestmark = pytest.mark.django_db


def answer(authority_id, category_id):
    with connection.cursor() as cur:
        cur.execute("SELECT department_id FROM routing_department_for(%s, %s)", [authority_id, category_id])
        rows = cur.fetchall()
    assert len(rows) <= 1
    return rows[0][0] if rows else None


@pytest.fixture
def council():
    return AdminArea.objects.get(level="district", name="Тверской").authority


def test_exact_row_then_default_row_then_main(council):
    snow, trade = category("yard-snow"), category("illegal-trade")
    main = Department.objects.get(authority=council, code="main")
    winter = Department.objects.get(authority=council, code="winter")
    assert answer(council.pk, snow.pk) == winter.pk  # an exact row
    assert answer(council.pk, trade.pk) == main.pk  # no row: the main department
    desk = Department.objects.create(authority=council, code="t-desk", name="Приёмная")
    RoutingAssignment.objects.create(authority=council, category=None, department=desk)
    assert answer(council.pk, trade.pk) == desk.pk  # the default row beats main
    assert answer(council.pk, snow.pk) == winter.pk  # the exact row still wins


@pytest.mark.parametrize("authority, category_id", [(None, 1), (-1, 1), ("no-main", None)])
def test_no_department(council, authority, category_id):
    if authority == "no-main":
        bare = Authority.objects.create(code="t-bare", name="Без отделов", short_name="Без отделов")
        authority = bare.pk
    assert answer(authority, category_id) is None


def test_a_retired_authority_has_no_department(council):
    snow = category("yard-snow")
    Authority.objects.filter(pk=council.pk).update(valid_to=timezone.now())
    assert answer(council.pk, snow.pk) is None


def explain(sql, params=None):
    with connection.cursor() as cur:
        cur.execute("EXPLAIN (VERBOSE, COSTS OFF) " + sql, params)
        return "\n".join(r[0] for r in cur.fetchall())


def test_it_is_inlined_into_the_decision_statement_and_the_re_route():
    decide = explain(decide_sql("SELECT 0::bigint AS key, ST_SetSRID(ST_MakePoint(37.62, 55.75), 4326) AS g, "
                                "c.id AS category_id, NULL::bigint AS picked_id, NULL::bigint[] AS known_facilities, "
                                "NULL::bigint AS known_area_id FROM routing_category c WHERE c.code = 'yard-snow'"), ())
    may_move = explain(MAY_MOVE_SQL.format(only=""), {"open": ["assigned"]})
    # the re-route's quick path, whose known facilities are a subquery: the functions get a column of the input
    quick = explain(decide_sql(REROUTE_INPUT.format(only="", known_facilities=KNOWN_FACILITIES,
                                                    known_area="rd.area_id")), {"open": ["assigned"]})
    # the complaints a pass without a full search decides again, listed by id (some search again, some not)
    listed = explain(decide_sql(DECIDE_LISTED_INPUT.format(only="", known_facilities=KNOWN_FACILITIES)),
                     {"open": ["assigned"], "decide": "{1,2}", "search": "{t,f}"})
    for plan in (decide, may_move, quick, listed):
        assert "routing_department_for" not in plan and "Function Scan on public." not in plan
        assert "routing_routingassignment" in plan
    assert "facilities_near" not in quick and "facilities_facility" in quick
