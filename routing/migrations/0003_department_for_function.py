"""The routing table's rule as an SQL function, written once: which department of this authority handles this
category. An exact (authority, category) row, else the authority's default row (no category), else its `main`
department; a retired authority has none. Called by the decision statement (routing.engine), the re-route
(routing.services) and department_for().

A single-statement LANGUAGE sql function, STABLE, PARALLEL SAFE, no SET clause, no SECURITY DEFINER: it returns a
set (one row or none), so the planner inlines it where it is called in a FROM clause
(`(SELECT department_id FROM routing_department_for(a, c))`), as tests/routing/test_department_for.py shows.
"""
from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION routing_department_for(of_authority bigint, for_category bigint)
RETURNS TABLE (department_id bigint)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT z.department_id FROM (
        SELECT r.department_id, CASE WHEN r.category_id IS NULL THEN 1 ELSE 0 END AS pri
        FROM routing_routingassignment r
        WHERE r.authority_id = of_authority AND (r.category_id = for_category OR r.category_id IS NULL)
        UNION ALL
        SELECT d.id, 2 FROM facilities_department d WHERE d.authority_id = of_authority AND d.code = 'main') z
    WHERE EXISTS (SELECT 1 FROM facilities_authority a WHERE a.id = of_authority AND a.valid_to IS NULL)
    ORDER BY z.pri LIMIT 1
$$;
"""

DROP = "DROP FUNCTION IF EXISTS routing_department_for(bigint, bigint);"


class Migration(migrations.Migration):

    dependencies = [
        ("facilities", "0005_spatial_rule_functions"),
        ("routing", "0002_catalogue_import"),
    ]

    operations = [migrations.RunSQL(FUNCTION, reverse_sql=DROP)]
