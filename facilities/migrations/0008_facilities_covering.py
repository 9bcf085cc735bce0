"""The registry's rule "which facilities of these types cover this point" as an SQL function, written once:
facilities_covering(g, type_ids, known). The active facilities of the given types whose geometry covers the point
(`covers`: a point on an outline counts), by id. Candidates come from the GiST index (the bounding box holds the
point), then ST_Covers; no distance is measured (facilities_near measures true distances for every candidate in
its window, which for an organisation's many buildings in one MultiPolygon is the costly part). With `known`
(facility ids), those facilities are tested instead and no search is made (the re-route's quick path).

Called by routing's decision statement for the place over the category (routing.engine.PLACE_RULE). Single
statement, LANGUAGE sql, STABLE, PARALLEL SAFE, no SET clause, no SECURITY DEFINER: the planner inlines it.
"""
from django.db import migrations

FUNCTION = r"""
CREATE OR REPLACE FUNCTION facilities_covering(g geometry, type_ids bigint[], known bigint[] DEFAULT NULL)
RETURNS TABLE (facility_id bigint, name varchar, owner_id bigint, type_id bigint)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT k.id, k.name, k.owner_id, k.type_id FROM (
        SELECT f.id, f.name, f.owner_id, f.type_id
        FROM facilities_facility f
        WHERE known IS NULL AND f.type_id = ANY(type_ids) AND f.valid_to IS NULL
          AND f.geom && g AND ST_Covers(f.geom, g)
        UNION ALL
        SELECT f.id, f.name, f.owner_id, f.type_id
        FROM facilities_facility f
        WHERE known IS NOT NULL AND f.id = ANY(known) AND f.type_id = ANY(type_ids) AND f.valid_to IS NULL AND ST_Covers(f.geom, g)
        LIMIT 1000) k
    ORDER BY k.id
$$;
"""

DROP = "DROP FUNCTION IF EXISTS facilities_covering(geometry, bigint[], bigint[]);"


class Migration(migrations.Migration):

    dependencies = [
        ("facilities", "0007_merge_working_weeks_target"),
    ]

    operations = [migrations.RunSQL(FUNCTION, reverse_sql=DROP)]
