"""Reads of the registry. One named function owns each spatial question: each is an SQL function created by
facilities' migration 0005 (facilities_areas_covering, facilities_near, facilities_degree_window), which these
selectors, routing's decision statement and its re-route all call."""
from dataclasses import dataclass

from django.contrib.gis.geos import Point
from django.db import connection
from django.db.models.expressions import RawSQL

from .models import AdminArea


def _point(point):
    if isinstance(point, Point):
        if point.srid not in (None, 4326):
            point = point.transform(4326, clone=True)
        return float(point.x), float(point.y)
    lon, lat = point
    return float(lon), float(lat)


def areas_covering_point(point, *, level=None):
    """Active admin areas that cover the point, smallest (deepest level) first.

    `covers`, not `contains`: a point exactly on a boundary is covered by the areas on both sides, never lost.
    The test runs on the subdivided pieces, which keeps it fast on large, detailed polygons.
    """
    lon, lat = _point(point)
    covering = RawSQL("SELECT v.area_id FROM facilities_areas_covering(ST_SetSRID(ST_MakePoint(%s, %s), 4326)) v",
                      (lon, lat))
    areas = AdminArea.objects.filter(id__in=covering).select_related("authority", "parent")
    if level:
        areas = areas.filter(level=level)
    return sorted(areas, key=lambda a: (-AdminArea.LEVEL_RANK[a.level], a.name))


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
