"""The registry's spatial rules as SQL functions, each written once, called by every query that needs it.

- facilities_degree_window(radius_m, lat): the half-width in degrees of a box that surely holds every point
  within radius_m metres of a point at latitude lat: radius_m over the shortest degree on the WGS84 spheroid
  (110,574 m, a degree of latitude at the equator; a degree of longitude is never shorter than 111,319 m times
  cos(lat)), widened by 1/cos for longitude at a latitude one degree nearer the pole (the box's far edge).
- facilities_areas_covering(g): the active admin areas that cover the point (`covers`: a boundary point counts),
  tested on the subdivided pieces.
- facilities_near(g, type_ids, radius_m, lim, known): the active facilities of the given types that cover the
  point or lie within radius_m metres of it (true distance on the spheroid), covering first, then nearest,
  at most `lim`. The candidates come from the GiST index through the degree window, the type checked before any
  geometry is measured, at most 1,000 per point (far more than a sane radius holds). With `known` (facility
  ids), those facilities are measured instead and no search is made (the re-route's quick path).

Each is a single-statement LANGUAGE sql function, IMMUTABLE or STABLE, PARALLEL SAFE, with no SET clause and no
SECURITY DEFINER, so that the planner inlines it into the calling statement (tests/facilities/test_spatial_rules.py
shows it with EXPLAIN): the set-based re-route keeps its plans.
"""
from django.db import migrations

FUNCTIONS = r"""
CREATE OR REPLACE FUNCTION facilities_degree_window(radius_m float8, lat float8) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT radius_m / (110574.0 * greatest(cos(radians(least(abs(lat) + 1, 89))), 0.01)) $$;

CREATE OR REPLACE FUNCTION facilities_areas_covering(g geometry)
RETURNS TABLE (area_id bigint, level varchar, parent_id bigint, authority_id bigint)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT a.id, a.level, a.parent_id, a.authority_id
    FROM facilities_adminarea a
    WHERE a.valid_to IS NULL
      AND a.id IN (SELECT p.area_id FROM facilities_adminareapiece p WHERE ST_Covers(p.geom, g))
$$;

CREATE OR REPLACE FUNCTION facilities_near(g geometry, type_ids bigint[], radius_m float8, lim integer DEFAULT 5,
                                           known bigint[] DEFAULT NULL)
RETURNS TABLE (facility_id bigint, name varchar, owner_id bigint, type_id bigint, covers boolean, distance_m float8)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT k.id, k.name, k.owner_id, k.type_id, k.d = 0 AND ST_Covers(k.geom, g) AS covers, k.d
    FROM (
        SELECT f.id, f.name, f.owner_id, f.type_id, f.geom, ST_Distance(f.geom::geography, g::geography) AS d
        FROM facilities_facility f
        WHERE known IS NULL AND f.type_id = ANY(type_ids) AND f.valid_to IS NULL
          AND f.geom && ST_Expand(g, facilities_degree_window(radius_m, ST_Y(g)))
        UNION ALL
        SELECT f.id, f.name, f.owner_id, f.type_id, f.geom, ST_Distance(f.geom::geography, g::geography) AS d
        FROM facilities_facility f
        WHERE f.id = ANY(known) AND f.type_id = ANY(type_ids) AND f.valid_to IS NULL
        LIMIT 1000) k
    WHERE k.d <= radius_m
    ORDER BY covers DESC, k.d, k.id
    LIMIT lim
$$;
"""

DROP = """
DROP FUNCTION IF EXISTS facilities_near(geometry, bigint[], float8, integer, bigint[]);
DROP FUNCTION IF EXISTS facilities_areas_covering(geometry);
DROP FUNCTION IF EXISTS facilities_degree_window(float8, float8);
"""


class Migration(migrations.Migration):

    dependencies = [
        ("facilities", "0004_membership_audit"),
    ]

    operations = [migrations.RunSQL(FUNCTIONS, reverse_sql=DROP)]
