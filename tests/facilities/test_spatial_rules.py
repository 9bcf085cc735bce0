"""The registry's spatial rules, each an SQL function of facilities' migration 0005, tested on their own.

The areas and facilities here are made for each test far from the demo city (around 100°E), at a known number of
metres from a point (ST_Project on the spheroid), so each distance is known exactly.
"""
import pytest
from django.contrib.gis.geos import MultiPolygon, Point, Polygon
from django.db import connection
from django.utils import timezone

from facilities.models import AdminArea, Dataset, Facility, FacilityType
from facilities.selectors import areas_covering_point, degree_window, facilities_near_point
from routing.engine import ROUTE_SQL, decide_sql

pytestmark = pytest.mark.django_db

ORIGIN = (100.0, 60.0)


def sql_one(sql, params=()):
    with connection.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()


def offset(origin, metres, bearing):
    """The point `metres` from `origin` ((lon, lat)) toward `bearing` (degrees from north), on the spheroid."""
    return sql_one("SELECT ST_X(g), ST_Y(g) FROM (SELECT ST_Project(ST_SetSRID(ST_MakePoint(%s, %s), 4326)"
                   "::geography, %s, radians(%s))::geometry AS g) p", [*origin, metres, bearing])


def metres_between(a, b):
    return sql_one("SELECT ST_Distance(ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography, "
                   "ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography)", [*a, *b])[0]


def explain(sql, params=()):
    with connection.cursor() as cur:
        cur.execute("EXPLAIN (VERBOSE, COSTS OFF) " + sql, params)
        return "\n".join(r[0] for r in cur.fetchall())


# --- facilities_degree_window ---------------------------------------------------------------------------------

@pytest.mark.parametrize("lat", [55.75, 60.0, -60.0, 0.0, 5.0, 75.0])
@pytest.mark.parametrize("radius", [1, 30, 100, 1000, 20000])
def test_the_degree_window_holds_every_point_radius_metres_away(lat, radius):
    origin = (37.6, lat)
    window = degree_window(radius, lat)
    for bearing in range(0, 360, 15):
        lon, y = offset(origin, radius, bearing)
        assert abs(lon - origin[0]) <= window and abs(y - lat) <= window, (bearing, lon, y, window)


@pytest.mark.parametrize("lat", [55.75, 60.0])
@pytest.mark.parametrize("radius", [30, 100, 1000])
def test_the_degree_window_is_radius_metres_wide_give_or_take_a_few_percent(lat, radius):
    # Moscow's latitude and 60°: the box's east edge lies between R and 1.05 R metres away (true distance).
    origin = (37.6, lat)
    east_edge = (origin[0] + degree_window(radius, lat), lat)
    assert radius <= metres_between(origin, east_edge) <= 1.05 * radius


def test_the_degree_window_is_inlined_where_it_is_called():
    plan = explain("SELECT facilities_degree_window(30, ST_YMax(p.geom)) FROM facilities_adminareapiece p")
    assert "facilities_degree_window" not in plan and "110574" in plan and "cos(radians(least((abs(st_ymax(" in plan.lower()


# --- facilities_areas_covering --------------------------------------------------------------------------------

def square(lon0, lat0, size):
    return MultiPolygon(Polygon.from_bbox((lon0, lat0, lon0 + size, lat0 + size)), srid=4326)


@pytest.fixture
def two_areas():
    """Two districts side by side sharing the edge lon = 100.01, and the okrug holding both."""
    okrug = AdminArea.objects.create(name="T-okrug", level_id="okrug", geom=square(99.99, 59.99, 0.04))
    west = AdminArea.objects.create(name="T-west", level_id="district", parent=okrug, geom=square(100.0, 60.0, 0.01))
    east = AdminArea.objects.create(name="T-east", level_id="district", parent=okrug, geom=square(100.01, 60.0, 0.01))
    return okrug, west, east


def covering(lon, lat):
    with connection.cursor() as cur:
        cur.execute("SELECT area_id FROM facilities_areas_covering(ST_SetSRID(ST_MakePoint(%s, %s), 4326))",
                    [lon, lat])
        return {r[0] for r in cur.fetchall()}


@pytest.mark.parametrize("where, expected", [
    ((100.005, 60.005), {"T-okrug", "T-west"}),  # inside one district
    ((100.01, 60.005), {"T-okrug", "T-west", "T-east"}),  # on the shared edge: both districts
    ((100.01, 60.0), {"T-okrug", "T-west", "T-east"}),  # on the shared corner
    ((100.0, 60.005), {"T-okrug", "T-west"}),  # on the outer edge of a district
    ((100.025, 60.005), {"T-okrug"}),  # only the okrug
    ((100.1, 60.1), set()),  # outside everything
])
def test_areas_covering_a_point_count_its_boundary(two_areas, where, expected):
    names = {a.pk: a.name for a in two_areas}
    assert {names[i] for i in covering(*where)} == expected
    assert {a.name for a in areas_covering_point(where)} == expected  # the selector asks the same function


def test_a_retired_area_covers_nothing(two_areas):
    _okrug, west, _east = two_areas
    AdminArea.objects.filter(pk=west.pk).update(valid_to=timezone.now())
    assert west.pk not in covering(100.005, 60.005)
    assert covering(100.005, 60.005)  # the okrug still does


def test_areas_covering_is_inlined_into_the_decision_statement():
    plan = explain(decide_sql("SELECT 0::bigint AS key, ST_SetSRID(ST_MakePoint(37.62, 55.75), 4326) AS g, "
                              "c.id AS category_id, NULL::bigint AS picked_id, NULL::bigint[] AS known_facilities, "
                              "NULL::bigint AS known_area_id FROM routing_category c WHERE c.code = 'yard-pothole'"))
    assert "Function Scan on public." not in plan  # none of ours (jsonb_array_elements is pg_catalog)
    assert "facilities_areas_covering" not in plan and "facilities_adminareapiece" in plan


def test_route_s_statements_have_no_branches_for_what_they_never_get():
    # route() never gives known facilities or a known area, and most complaints pick no facility: its statements
    # have them as NULL constants, so the planner drops those branches (the re-route's known area's ancestors and
    # known facilities by id; the picked facility's search)
    source = ("SELECT 0::bigint AS key, ST_SetSRID(ST_MakePoint(37.62, 55.75), 4326) AS g, c.id AS category_id, "
              "NULL::bigint AS picked_id, NULL::bigint[] AS known_facilities, NULL::bigint AS known_area_id "
              "FROM routing_category c WHERE c.code = 'streetlight-out'")
    general, routed = explain(decide_sql(source)), explain(decide_sql(source, known=False))
    unpicked = explain(decide_sql(source, known=False, picked=False))  # no picked facility either
    # fewer nodes, and fewer of the gates a row tests before a branch runs
    assert unpicked.count("\n") < routed.count("\n") < general.count("\n")
    assert unpicked.count("One-Time Filter") < routed.count("One-Time Filter") < general.count("One-Time Filter")
    for plan in (routed, unpicked):
        assert "Function Scan on public." not in plan and "facilities_adminareapiece" in plan


# --- facilities_degree_box ------------------------------------------------------------------------------------

def degree_box(point, radius):
    """(xmin, ymin, xmax, ymax) of facilities_degree_box around `point` ((lon, lat))."""
    return sql_one("SELECT ST_XMin(b), ST_YMin(b), ST_XMax(b), ST_YMax(b) FROM (SELECT facilities_degree_box("
                   "ST_SetSRID(ST_MakePoint(%s, %s), 4326), %s) AS b) q", [*point, radius])


@pytest.mark.parametrize("lat", [55.75, 60.0, -60.0, 0.0, 5.0, 75.0])
@pytest.mark.parametrize("radius", [1, 30, 100, 1000, 20000])
def test_the_degree_box_holds_every_point_radius_metres_away(lat, radius):
    origin = (37.6, lat)
    xmin, ymin, xmax, ymax = degree_box(origin, radius)
    for bearing in range(0, 360, 5):
        lon, y = offset(origin, radius, bearing)
        assert xmin <= lon <= xmax and ymin <= y <= ymax, (bearing, lon, y)


@pytest.mark.parametrize("lat", [55.75, 60.0, 0.0])
@pytest.mark.parametrize("radius", [30, 100, 1000])
def test_the_degree_box_is_no_taller_than_it_must_be(lat, radius):
    # North and south its edges lie between R and 1.01 R metres away (a degree of latitude is 110,574 m at the
    # equator and 111,694 m at the poles); east and west as the degree window's.
    origin = (37.6, lat)
    xmin, ymin, xmax, ymax = degree_box(origin, radius)
    for edge in ((origin[0], ymax), (origin[0], ymin)):
        assert radius <= metres_between(origin, edge) <= 1.01 * radius
    assert xmax - origin[0] == pytest.approx(degree_window(radius, lat))


def test_facilities_near_searches_the_degree_box():
    # (a point from a column, as the decision statement gives it: an expression would be computed twice if inlined)
    plan = explain("SELECT n.* FROM complaints_complaint c "
                   "CROSS JOIN LATERAL facilities_near(c.location, ARRAY[c.category_id], 30, 5) n")
    assert "facilities_degree_box" not in plan and "st_expand" in plan.lower() and "110574" in plan, plan


# --- facilities_near ------------------------------------------------------------------------------------------

@pytest.fixture
def registry():
    """Two facility types; facilities of each at known distances from ORIGIN, one retired, one covering it."""
    dataset = Dataset.objects.create(code="t-spatial-rules", target=Dataset.Target.FACILITIES)
    lamp = FacilityType.objects.create(code="t-lamp", name_i18n={"ru": "фонарь", "en": "lamp"})
    bench = FacilityType.objects.create(code="t-bench", name_i18n={"ru": "скамья", "en": "bench"})
    made = {}

    def facility(key, ftype, geom, retired=False):
        made[key] = Facility.objects.create(dataset=dataset, source_key=key, type=ftype, geom=geom, name=key,
                                            valid_to=timezone.now() if retired else None)

    def at(metres, bearing):
        return Point(*offset(ORIGIN, metres, bearing), srid=4326)

    # East-west metres are ~2x shorter in degrees at 60°: by `<->` (degrees) north-20 m ranks before east-15 m.
    facility("east-15", lamp, at(15, 90))
    facility("north-20", lamp, at(20, 0))
    facility("south-29.5", lamp, at(29.5, 180))
    facility("west-30.5", lamp, at(30.5, 270))
    facility("retired-5", lamp, at(5, 45), retired=True)
    facility("bench-3", bench, at(3, 135))
    facility("bench-box", bench, Polygon.from_bbox((ORIGIN[0] - 0.0001, ORIGIN[1] - 0.0001,
                                                    ORIGIN[0] + 0.0001, ORIGIN[1] + 0.0001)))
    return {"lamp": lamp, "bench": bench, "made": made}


def near(type_ids, radius, lim=5, known=None):
    with connection.cursor() as cur:
        cur.execute("SELECT facility_id, covers, distance_m FROM facilities_near("
                    "ST_SetSRID(ST_MakePoint(%s, %s), 4326), %s::bigint[], %s::float8, %s, %s::bigint[])",
                    [*ORIGIN, type_ids, radius, lim, known])
        return cur.fetchall()


def test_nearest_by_true_distance_within_exactly_the_radius(registry):
    names = {f.pk: k for k, f in registry["made"].items()}
    rows = near([registry["lamp"].pk], 30)
    assert [names[r[0]] for r in rows] == ["east-15", "north-20", "south-29.5"]  # not west-30.5, not retired
    assert [round(r[2], 1) for r in rows] == [15.0, 20.0, 29.5]
    assert not any(r[1] for r in rows)
    # the selector is the same function
    assert [f.facility_id for f in facilities_near_point(ORIGIN, type_ids=[registry["lamp"].pk], radius_m=30)] == \
        [r[0] for r in rows]


@pytest.mark.parametrize("radius, expected", [(14.9, []), (15.0, ["east-15"]), (20.0, ["east-15", "north-20"]),
                                              (30.49, ["east-15", "north-20", "south-29.5"]),
                                              (30.6, ["east-15", "north-20", "south-29.5", "west-30.5"])])
def test_the_radius_is_exact_in_metres(registry, radius, expected):
    names = {f.pk: k for k, f in registry["made"].items()}
    assert [names[r[0]] for r in near([registry["lamp"].pk], radius)] == expected


def test_types_filter_and_covering_first(registry):
    names = {f.pk: k for k, f in registry["made"].items()}
    rows = near([registry["bench"].pk], 30)
    assert [(names[r[0]], r[1]) for r in rows] == [("bench-box", True), ("bench-3", False)]
    assert rows[0][2] == 0
    both = near([registry["bench"].pk, registry["lamp"].pk], 30, lim=3)
    assert [names[r[0]] for r in both] == ["bench-box", "bench-3", "east-15"]
    assert near([], 30) == []


def test_retired_facilities_are_never_found(registry):
    retired = registry["made"]["retired-5"]
    assert retired.pk not in {r[0] for r in near([registry["lamp"].pk], 100, lim=50)}
    assert near([registry["lamp"].pk], 100, known=[retired.pk]) == []
    Facility.objects.filter(pk=retired.pk).update(valid_to=None)  # revived: found again
    assert near([registry["lamp"].pk], 10)[0][0] == retired.pk


def test_known_facilities_are_measured_instead_of_searched(registry):
    made = registry["made"]
    rows = near([registry["lamp"].pk], 30, known=[made["north-20"].pk, made["west-30.5"].pk])
    assert [r[0] for r in rows] == [made["north-20"].pk]  # only those given, still within the radius only
    assert near([registry["lamp"].pk], 30, known=[]) == []
    assert near([registry["lamp"].pk], None) == []  # no radius: nothing searched (a category of another rule)


def test_a_call_without_known_facilities_scans_nothing_for_them(registry):
    # known given per row (as a full re-decision does) but NULL: the branch that measures the known ones by id is
    # gated by `known IS NOT NULL` and never runs; the result is the search's (facilities' migration 0018)
    sql = ("SELECT v.k, n.facility_id FROM (VALUES (1, NULL::bigint[]), (2, NULL::bigint[])) v(k, known) "
           "CROSS JOIN LATERAL facilities_near(ST_SetSRID(ST_MakePoint(%s, %s), 4326), %s::bigint[], 30, 5, "
           "v.known) n ORDER BY v.k, n.distance_m")
    params = [*ORIGIN, [registry["lamp"].pk]]
    with connection.cursor() as cur:
        cur.execute("EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF, SUMMARY OFF) " + sql, params)
        plan = [r[0] for r in cur.fetchall()]
        cur.execute(sql, params)
        rows = cur.fetchall()
    by_id = [i for i, line in enumerate(plan) if 'id = ANY ("*VALUES*".column2)' in line]
    assert by_id, "\n".join(plan)
    for i in by_id:  # the scan node each such condition belongs to (the nearest node above it) never ran
        node = next(line for line in reversed(plan[:i + 1]) if "->" in line)
        assert "never executed" in node, "\n".join(plan)
    made = registry["made"]
    assert rows == [(k, made[key].pk) for k in (1, 2) for key in ("east-15", "north-20", "south-29.5")]

def test_facilities_near_is_inlined_into_the_decision_statement():
    plan = explain(ROUTE_SQL.replace("$1", "37.62").replace("$2", "55.75").replace("$3", "1").replace(
        "$4", "NULL").replace("$5", "'x'"))
    assert "Function Scan on public." not in plan  # none of ours (jsonb_array_elements is pg_catalog)
    assert "facilities_near" not in plan and "facilities_facility" in plan
    assert "routing_department_for" not in plan and "routing_routingassignment" in plan


# --- facilities_covering ----------------------------------------------------------------------------------------

def covering_facilities(type_ids, point=ORIGIN, known=None):
    with connection.cursor() as cur:
        cur.execute("SELECT facility_id FROM facilities_covering(ST_SetSRID(ST_MakePoint(%s, %s), 4326), "
                    "%s::bigint[], %s::bigint[])", [*point, type_ids, known])
        return [r[0] for r in cur.fetchall()]


def test_covering_finds_the_outlines_that_cover_the_point_and_nothing_near(registry):
    made = registry["made"]
    assert covering_facilities([registry["bench"].pk]) == [made["bench-box"].pk]  # not bench-3, 3 m away
    assert covering_facilities([registry["lamp"].pk]) == []
    assert covering_facilities([]) == [] and covering_facilities(None) == []
    corner = (ORIGIN[0] + 0.0001, ORIGIN[1] + 0.0001)  # on the outline: covers counts it
    assert covering_facilities([registry["bench"].pk], corner) == [made["bench-box"].pk]
    assert covering_facilities([registry["bench"].pk], (ORIGIN[0] + 0.00011, ORIGIN[1])) == []


def test_covering_skips_retired_and_tests_known_facilities_only(registry):
    box = registry["made"]["bench-box"]
    assert covering_facilities([registry["bench"].pk], known=[box.pk]) == [box.pk]
    assert covering_facilities([registry["bench"].pk], known=[registry["made"]["bench-3"].pk]) == []
    assert covering_facilities([registry["bench"].pk], known=[]) == []
    Facility.objects.filter(pk=box.pk).update(valid_to=timezone.now())
    assert covering_facilities([registry["bench"].pk]) == []
    assert covering_facilities([registry["bench"].pk], known=[box.pk]) == []


def test_covering_agrees_with_facilities_near_on_the_real_registry():
    """At points inside, on and just outside real buildings, the facilities that cover a point are those that
    facilities_near finds covering it."""
    import shapely

    types = list(FacilityType.objects.filter(code__in=["school", "college", "kindergarten"])
                 .values_list("pk", flat=True))
    facilities = list(Facility.objects.active().filter(type_id__in=types).order_by("source_key")[::25])
    checked = 0
    for f in facilities:
        shape = shapely.from_wkb(bytes(f.geom.wkb))
        part = shapely.get_parts(shape)[0]
        x0, y0 = shapely.get_coordinates(part.exterior if part.geom_type == "Polygon" else part)[0]
        for point in (part.point_on_surface(), shapely.Point(x0, y0), shapely.Point(x0 + 0.0003, y0 + 0.0003)):
            with connection.cursor() as cur:
                cur.execute("SELECT facility_id FROM facilities_near(ST_SetSRID(ST_MakePoint(%s, %s), 4326), "
                            "%s::bigint[], 0, 1000) WHERE covers ORDER BY facility_id", [point.x, point.y, types])
                expected = [r[0] for r in cur.fetchall()]
            assert covering_facilities(types, (point.x, point.y)) == expected
            checked += bool(expected)
    assert checked >= 20
