"""facilities_near's second branch (the facilities a caller already knows) gets the guard facilities_covering's has:
`known IS NOT NULL`. Without it a call with known = NULL, as routing's decision statement makes for every complaint
of a full re-decision, kept a scan of the partitions for `f.id = ANY(NULL)` per complaint (on the routing benchmark
a sequential scan of the 42-row hospital partition, 4-7 µs of the ~190 µs each complaint costs); with it the
planner folds the branch away when known is a NULL constant, and adds a one-time filter when it is a parameter.
Results are unchanged: `f.id = ANY(NULL)` is never true.
"""
from django.db import migrations

FUNCTIONS = r"""CREATE OR REPLACE FUNCTION facilities_near(g geometry, type_ids bigint[], radius_m float8, lim integer DEFAULT 5,
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
        WHERE known IS NOT NULL AND f.id = ANY(known) AND f.type_id = ANY(type_ids) AND f.valid_to IS NULL
        LIMIT 1000) k
    WHERE k.d <= radius_m
    ORDER BY covers DESC, k.d, k.id
    LIMIT lim
$$;
"""

REVERSE = r"""CREATE OR REPLACE FUNCTION facilities_near(g geometry, type_ids bigint[], radius_m float8, lim integer DEFAULT 5,
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


class Migration(migrations.Migration):

    dependencies = [("facilities", "0017_degree_box")]

    operations = [migrations.RunSQL(FUNCTIONS, reverse_sql=REVERSE)]
