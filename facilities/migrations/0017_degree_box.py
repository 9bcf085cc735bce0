"""The box of the registry's rule "which facilities of these types cover or lie nearest within R metres" made
tighter, for routing's decision statement (issue 9: the full re-decision's cost per complaint).

facilities_degree_box(g, radius_m): the box around a point that surely holds every point within radius_m metres of
it. East-west its half-width is facilities_degree_window (the longitude rule); north-south it is radius_m over
110,574 m, the shortest degree of latitude on the WGS84 spheroid (at the equator; the shortest path between two
parallels runs along a meridian). facilities_near's box used the longitude's half-width both ways, which at 55.75°N
is 1.8 times the height needed: on the routing benchmark's 1,000,000 facilities each point's index probe fetched
and filtered 21.7 candidates of any type where 13.8 lie in the tighter box (20,000 complaints' points).

Both stay single-statement LANGUAGE sql functions, IMMUTABLE or STABLE, PARALLEL SAFE, with no SET clause, so the
planner inlines them (tests/facilities/test_spatial_rules.py).
"""
from django.db import migrations

FUNCTIONS = r"""
CREATE OR REPLACE FUNCTION facilities_degree_box(g geometry, radius_m float8) RETURNS geometry
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT ST_Expand(g, facilities_degree_window(radius_m, ST_Y(g)), radius_m / 110574.0) $$;

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
          AND f.geom && facilities_degree_box(g, radius_m)
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

REVERSE = r"""
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

DROP FUNCTION IF EXISTS facilities_degree_box(geometry, float8);
"""


class Migration(migrations.Migration):

    dependencies = [("facilities", "0016_search_index_per_generation")]

    operations = [migrations.RunSQL(FUNCTIONS, reverse_sql=REVERSE)]
