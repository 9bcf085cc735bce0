"""Reads of the registry. One named function owns each spatial question: each is an SQL function created by
facilities' migration 0005 (facilities_areas_covering, facilities_near, facilities_degree_window), which these
selectors, routing's decision statement and its re-route all call."""
from dataclasses import dataclass

from django.contrib.gis.db.models import Extent
from django.contrib.gis.geos import Point
from django.db import connection
from django.db.models.expressions import RawSQL

from .models import AdminArea, AreaLevel


def _point(point):
    if isinstance(point, Point):
        if point.srid not in (None, 4326):
            point = point.transform(4326, clone=True)
        return float(point.x), float(point.y)
    lon, lat = point
    return float(lon), float(lat)


def areas_extent():
    """The box of the city's active admin areas, (west, south, east, north) in degrees, or None when none are loaded:
    the residents' map and the admin's map widget open over it."""
    box = AdminArea.objects.active().aggregate(box=Extent("geom"))["box"]
    return tuple(round(v, 5) for v in box) if box else None


def areas_covering_point(point, *, level=None):
    """Active admin areas that cover the point, smallest (deepest level) first.

    `covers`, not `contains`: a point exactly on a boundary is covered by the areas on both sides, never lost.
    The test runs on the subdivided pieces, which keeps it fast on large, detailed polygons.
    """
    lon, lat = _point(point)
    covering = RawSQL("SELECT v.area_id FROM facilities_areas_covering(ST_SetSRID(ST_MakePoint(%s, %s), 4326)) v",
                      (lon, lat))
    areas = AdminArea.objects.filter(id__in=covering).select_related("authority", "parent", "level")
    if level:
        areas = areas.filter(level=level)
    return sorted(areas, key=lambda a: (-a.level.rank, a.name))


def finest_level(using=None):
    """The code of the deepest area level that has active areas (the districts of the residents' map and filters;
    a ward, a neighbourhood ... in another city), or None when no areas are loaded. `using`: a database alias."""
    return (AreaLevel.objects.using(using).filter(areas__valid_to__isnull=True).order_by("-rank", "code")
            .values_list("code", flat=True).first())


def degree_window(radius_m, lat):
    """The half-width in degrees of a box that surely holds every point within radius_m metres of a point at
    latitude `lat` (facilities_degree_window, the one rule; for index prefilters outside SQL strings)."""
    with connection.cursor() as cur:
        cur.execute("SELECT facilities_degree_window(%s, %s)", [float(radius_m), float(lat)])
        return cur.fetchone()[0]


@dataclass(frozen=True)
class NearbyFacility:
    facility_id: int
    distance_m: float
    covers: bool


def facilities_near_point(point, *, type_ids, radius_m, limit=5):
    """Active facilities of the given types that cover the point or lie within radius_m metres of it.

    Nearest by true distance on the spheroid, covering facilities first (distance 0). The candidates come from the
    GiST index in the degree window of the radius at this latitude (the type checked before any geometry is
    measured), then are measured in metres with geography and sorted (facilities_near).
    """
    lon, lat = _point(point)
    type_ids = [int(t) for t in type_ids]
    if not type_ids:
        return []
    with connection.cursor() as cur:
        cur.execute(
            "SELECT n.facility_id, n.covers, n.distance_m "
            "FROM facilities_near(ST_SetSRID(ST_MakePoint(%s, %s), 4326), %s::bigint[], %s::float8, %s) n",
            [lon, lat, type_ids, float(radius_m), int(limit)],
        )
        return [NearbyFacility(facility_id=r[0], covers=r[1], distance_m=0.0 if r[1] else float(r[2]))
                for r in cur.fetchall()]


# How many of the nearest facilities (of any type) tell what kind of place a point is, at most.
NEAREST_CANDIDATES = 64


@dataclass(frozen=True)
class NearbyType:
    type_id: int
    distance_m: float  # to the nearest active facility of the type (0 when one covers the point)
    covers: bool


def facility_types_near_point(point, *, radius_m, limit=NEAREST_CANDIDATES):
    """The facility types of the active facilities that cover the point or lie within radius_m metres of it, each
    with the distance to its nearest one: what kind of place this is (a park, a school's grounds, a bus stop
    nearby). See facility_types_near_points."""
    return facility_types_near_points([point], radius_m=radius_m, limit=limit)[0]


def facility_types_near_points(points, *, radius_m, limit=NEAREST_CANDIDATES):
    """facility_types_near_point for many points in one statement: a list of [NearbyType] per point, in order.

    Same method as facilities_near_point (a degree window from the GiST index in `<->` order, at most `limit`
    candidates per point, then true distance by geography), over every type at once."""
    return [types for _in_city, types in place_of_points(points, radius_m=radius_m, limit=limit)]


def place_of_points(points, *, radius_m, limit=NEAREST_CANDIDATES):
    """For each point, in one statement: (whether an active area covers it, its [NearbyType]). The rules are
    the registry's own SQL functions (facilities_areas_covering, facilities_near over every facility type, at most
    `limit` facilities per point), so this reads the place exactly as routing does."""
    pts = [_point(p) for p in points]
    if not pts:
        return []
    with connection.cursor() as cur:
        cur.execute(
            """
            WITH p AS (SELECT n, ST_SetSRID(ST_MakePoint(x, y), 4326) AS g
                       FROM unnest(%s::int[], %s::float8[], %s::float8[]) AS u(n, x, y)),
            types AS (SELECT array_agg(id) AS ids FROM facilities_facilitytype)
            SELECT p.n, EXISTS (SELECT 1 FROM facilities_areas_covering(p.g)), t.type_id, t.covers, t.d
            FROM p CROSS JOIN types LEFT JOIN LATERAL (
                SELECT f.type_id, bool_or(f.covers) AS covers, min(f.distance_m) AS d
                FROM facilities_near(p.g, types.ids, %s::float8, %s) f
                GROUP BY f.type_id) t ON true
            """,
            [list(range(len(pts))), [x for x, _y in pts], [y for _x, y in pts], float(radius_m), int(limit)],
        )
        out = [(False, []) for _ in pts]
        for n, in_city, type_id, covers, distance in cur.fetchall():
            out[n] = (in_city, out[n][1])
            if type_id is not None:
                out[n][1].append(NearbyType(type_id=type_id, covers=covers,
                                            distance_m=0.0 if covers else float(distance)))
        return out
