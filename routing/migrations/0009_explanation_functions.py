"""Two lookups of the decision's explanation (routing.engine.EXPLAIN_SQL) as SQL functions of their own, so that
route()'s statement does not carry them as subqueries (issue 9: route()'s cost per call).

- routing_i18n_any(names): a translated field's first non-empty text by language code (the explanation's last
  fall-back, after the language asked for and the other of ru/en). NULL for NULL or when every text is empty.
- routing_group_category_i18n(of_type, of_group): the names (name_i18n) of the category of the group that the
  explanation of rule facility_group quotes for a building of that type: of the group's active categories of the
  facility rule that list the type, the most specific one (fewest facility types), then by code. NULL when none.

Both are STRICT, and their bodies read a table (a FROM clause), so the planner calls them instead of inlining
them: a call is made only for a row that needs it (a NULL argument, or a CASE that does not reach it, costs
nothing). As subqueries, each language's copy of them was a SubPlan that every route() call set up, and that
the rows of most decisions (no level name, no group's category) also ran: about 0.2 ms of a 1.2 ms call, on the
routing benchmark's database. No parameter is named as a column is: in a LANGUAGE sql function the column wins.
"""
from django.db import migrations

FUNCTIONS = r"""
CREATE OR REPLACE FUNCTION routing_i18n_any(names jsonb) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
AS $$ SELECT t.value FROM jsonb_each_text(names) t WHERE t.value <> '' ORDER BY t.key LIMIT 1 $$;

CREATE OR REPLACE FUNCTION routing_group_category_i18n(of_type bigint, of_group jsonb) RETURNS jsonb
LANGUAGE sql STABLE STRICT PARALLEL SAFE
AS $$
    SELECT k.name_i18n FROM routing_category k JOIN routing_category_facility_types m ON m.category_id = k.id
    WHERE m.facilitytype_id = of_type AND k.group_i18n = of_group AND k.rule = 'facility' AND k.active
    ORDER BY (SELECT count(*) FROM routing_category_facility_types n WHERE n.category_id = k.id), k.code
    LIMIT 1
$$;
"""

DROP = """
DROP FUNCTION IF EXISTS routing_i18n_any(jsonb);
DROP FUNCTION IF EXISTS routing_group_category_i18n(bigint, jsonb);
"""


class Migration(migrations.Migration):

    dependencies = [("routing", "0008_merge_translated_fields_and_facility_group")]

    operations = [migrations.RunSQL(FUNCTIONS, reverse_sql=DROP)]
