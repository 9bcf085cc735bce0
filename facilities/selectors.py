"""Reads of the registry. One named function owns each spatial question."""
import math
from dataclasses import dataclass

from django.contrib.gis.db.models import Extent
from django.contrib.gis.geos import Point
from django.db import connection

from .models import AdminArea, AdminAreaPiece

# Metres per degree of latitude (and of longitude at the equator) on the WGS84 sphere used for the prefilter.
METRES_PER_DEGREE = 111_320.0
# How many index-ordered candidates to re-sort by true distance, at most.
NEAREST_CANDIDATES = 64


def _point(point):
    if isinstance(point, Point):
        return point if point.srid else Point(point.x, point.y, srid=4326)
    lon, lat = point
    return Point(float(lon), float(lat), srid=4326)


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
    pt = _point(point)
    pieces = AdminAreaPiece.objects.filter(geom__covers=pt).values("area_id")
    areas = AdminArea.objects.active().filter(id__in=pieces).select_related("authority", "parent")
    if level:
        areas = areas.filter(level=level)
    return sorted(areas, key=lambda a: (-AdminArea.LEVEL_RANK[a.level], a.name))


@dataclass(frozen=True)
class NearbyFacility:
    facility_id: int
    distance_m: float
    covers: bool


def facilities_near_point(point, *, type_ids, radius_m, limit=5):
    """Active facilities of the given types that cover the point or lie within radius_m metres of it.

    Nearest by true distance on the spheroid. Candidates come from the GiST index through the `<->` operator
    (ordered in degrees, which at 56° latitude rank east-west distances about 1.8 times too short), bounded
    by a degree window wide enough for radius_m at this latitude; the few candidates are then measured in metres
    with geography and re-sorted. Covering facilities come first (distance 0).
    """
    pt = _point(point)
    type_ids = [int(t) for t in type_ids]
    if not type_ids:
        return []
    # Widest degree distance that radius_m metres can span at this latitude (longitude degrees shrink by cos).
    window = radius_m / (METRES_PER_DEGREE * max(math.cos(math.radians(min(abs(pt.y) + 1, 89.0))), 0.01))
    with connection.cursor() as cur:
        cur.execute(
            """
            WITH p AS (SELECT ST_SetSRID(ST_MakePoint(%s, %s), 4326) AS g),
            cand AS (
                SELECT f.id, f.geom FROM facilities_facility f, p
                WHERE f.type_id = ANY(%s) AND f.valid_to IS NULL AND ST_DWithin(f.geom, p.g, %s)
                ORDER BY f.geom <-> p.g
                LIMIT %s
            )
            SELECT c.id, ST_Covers(c.geom, p.g) AS covers, ST_Distance(c.geom::geography, p.g::geography) AS d
            FROM cand c, p
            WHERE ST_DWithin(c.geom::geography, p.g::geography, %s)
            ORDER BY covers DESC, d, c.id
            LIMIT %s
            """,
            [pt.x, pt.y, type_ids, window, NEAREST_CANDIDATES, radius_m, limit],
        )
        return [NearbyFacility(facility_id=r[0], covers=r[1], distance_m=0.0 if r[1] else float(r[2]))
                for r in cur.fetchall()]
