"""The routing engine: a point and a category -> the department that must act, with a reason a person can read.

The order is DESIGN.md's: (1) the point must lie in the city; (2) a facility the resident picked, or one of the
category's facility types covering the point, or one of a type of the category's group covering the point (the
place over the category: PLACE_RULE below), or the nearest one within the category's radius (true distance in
metres) decides, through its owner's department for the category; (3) otherwise the authority with jurisdiction
over the covering area of the level the category names (any of the city's area levels), or the category's fixed
department; (4) otherwise city triage.

The whole decision is ONE SQL statement (DECIDE_SQL) over a set of inputs, so `route()` costs one round trip and
`routing.services.reroute_plan` runs the very same logic over every open complaint at once. Each rule is
an SQL function written once and inlined by the planner into this statement, so it runs per input row as a few
index probes: which areas cover the point (`facilities_areas_covering`), which facilities of the category's types
cover it or lie nearest within its radius (`facilities_near`, through the box of `facilities_degree_box`), which
facilities of the category's group cover it (`facilities_covering`), created by facilities' migrations; which
department of an authority handles the category (`routing_department_for`, routing's migration 0003).
facilities.selectors and routing.services call the same functions. The explanations are a layer over the decisions
(EXPLAIN_SQL), so that a caller can word only those it keeps.
"""
import hashlib
import json

from django.contrib.gis.geos import Point
from django.db import DEFAULT_DB_ALIAS, ProgrammingError, connection, connections

from facilities.models import AdminArea, Authority, Department, Facility

from .models import RoutingDecision

ENGINE_VERSION = "1.0"
# How many of the best facilities to keep on the decision (the chosen one and the runners-up).
KEPT_CANDIDATES = 5


class OutsideCity(ValueError):
    """The point lies in no admin area of the city."""

    def __init__(self, lon, lat):
        super().__init__(f"The point ({lon:.6f}, {lat:.6f}) is outside the city: no admin area of the city covers it.")
        self.lon, self.lat = lon, lat


class FacilityNotAllowed(ValueError):
    """The facility a resident picked can not decide the routing; `reason` says why (PICKED_REASONS)."""

    def __init__(self, reason, *, distance_m=None, radius_m=None):
        super().__init__(f"picked facility refused: {reason}")
        self.reason, self.distance_m, self.radius_m = reason, distance_m, radius_m


# The rule for a facility the resident picked: it must be one that facilities_near finds when given it (a current
# facility of the category's types that covers the point or lies within the category's radius, true distance in
# metres). DECIDE_SQL applies it (so route() and every re-route do); picked_facility_check() says why not.
PICKED_REASONS = ("unknown", "retired", "wrong_type", "too_far")

PICKED_CHECK_SQL = """
SELECT f.valid_to IS NULL,
       f.type_id IN (SELECT m.facilitytype_id FROM routing_category_facility_types m WHERE m.category_id = c.id),
       EXISTS (SELECT FROM facilities_near(i.g, ARRAY[f.type_id], c.radius_m, 1, ARRAY[f.id])),
       ST_Distance(f.geom::geography, i.g::geography), c.radius_m
FROM facilities_facility f, routing_category c, (SELECT ST_SetSRID(ST_MakePoint(%s, %s), 4326) AS g) i
WHERE f.id = %s AND c.id = %s
"""


def picked_facility_check(point, category, facility):
    """Check a facility a resident picked for a complaint at `point` ((lon, lat)) in `category`: it must be a
    current facility of one of the category's facility types that covers the point or lies within the category's
    radius. Returns its id; raises FacilityNotAllowed (reason: unknown, retired, wrong_type, too_far) otherwise."""
    facility_id = getattr(facility, "pk", facility)
    lon, lat = (float(v) for v in point)
    with connection.cursor() as cur:
        cur.execute(PICKED_CHECK_SQL, [lon, lat, int(facility_id), category.pk])
        row = cur.fetchone()
    if row is None:
        raise FacilityNotAllowed("unknown")
    current, of_type, fits, distance_m, radius_m = row
    if not current:
        raise FacilityNotAllowed("retired")
    if not of_type:
        raise FacilityNotAllowed("wrong_type")
    if not fits:
        raise FacilityNotAllowed("too_far", distance_m=distance_m, radius_m=radius_m)
    return facility_id


# PLACE_RULE, the place over the category (issue 11): when the point lies inside the outline of a current facility of a type
# that belongs to the picked category's group (the facility types of the group's categories of the facility rule:
# a college building under "school territory", a kindergarten's grounds under a school category), that building's
# owner answers through its department for the picked category (rule facility_group), and the explanation names
# the group and the group's category for such a building. While the point is inside such a building, no facility
# of another owner nearby takes it: if the building's owner has no department, the category's fallback answers.
# Order: a picked facility, a covering facility of the category's own types (facility_covers), then this rule,
# then the nearest facility within the radius. It is part of DECIDE_SQL, so route() and every re-route apply it.

# Explanations. Arguments: 1 who (the organisation; for a facility, its type and owner), 2 distance in metres,
# 3 area name, 4 facility name, 5 the category's radius in metres, 6 the department's display name, 7 the area's
# level (its name in the language, else in the other, else in any, else its code), 8 the category's group (the same
# fall-backs), 9 (rule facility_group) the category of that group for the building's type (the most specific).
EXPLANATIONS = {
    "facility_picked": ("%1$s отвечает за объект «%4$s», который выбрал заявитель",
                        "%1$s is responsible for «%4$s», the facility the reporter picked"),
    "facility_covers": ("%1$s отвечает за это здание: точка внутри его контура",
                        "%1$s is responsible for this building: the point is inside its outline"),
    "facility_nearest": ("%1$s отвечает за этот объект: ближайший объект в %2$s м",
                         "%1$s is responsible for this facility: the nearest one, %2$s m away"),
    "facility_group": ("%1$s отвечает за это здание: точка внутри его контура, а здание относится к разделу "
                       "«%8$s», как и выбранная категория (категория для такого здания: «%9$s»), поэтому объект "
                       "другого владельца рядом не выбран",
                       "%1$s is responsible for this building: the point is inside its outline, and the building "
                       "belongs to the group «%8$s» of the category picked (the category for such a building: "
                       "«%9$s»), so no facility of another owner nearby was chosen"),
    "area": ("%1$s отвечает за территорию: %7$s %3$s",
             "%1$s is responsible for the territory of the %7$s %3$s"),
    "department": ("%6$s отвечает за эту категорию обращений во всём городе",
                   "%6$s handles this category city-wide"),
    "triage": ("Ни одно правило не определило исполнителя: обращение разберёт %6$s",
               "No rule found who is responsible: %6$s will sort it out"),
}
# Put before the area / department sentence when a facility category found no facility.
NO_FACILITY = ("Подходящих объектов в радиусе %5$s м нет. ", "No matching facility within %5$s m. ")

# The routing table for (authority, category), routing's SQL function (migration 0003): an exact row, the
# authority's default row, its `main` department; none for a retired authority.
DEPARTMENT_FOR = "SELECT r.department_id FROM routing_department_for({authority}, {category}) r"

# `{input}` is a query giving (key, g, category_id, picked_id, known_facilities, known_area_id): the point (SRID
# 4326), the category, the facility the resident picked (or NULL), and for a re-route that keeps what the spatial
# search found before (routing.services), the facilities it found (a bigint[] of ids) and the area: then no
# spatial search is made. NULLs: search. One row out per input that lies in the city. Every step is a LATERAL
# subquery of its input row (no CTEs): per row it is a few index probes, nothing is materialised, and a caller that
# keeps only some rows (the re-route keeps those that move) pays for the explanations of those only. OFFSET 0 keeps
# a subquery from being flattened into its parent, which would copy (and so repeat) its expressions.
# The input is kept whole the same way: a function is inlined only when its arguments hold no subquery, and
# the re-route's known facilities are one (an ARRAY(SELECT ...)); a column of the kept input is not.
# `{known_facilities}`, `{known_area}` and `{picked}` are those input columns (i.known_facilities, i.known_area_id,
# i.picked_id), or NULL constants for an input that never gives them (route(): decide_sql(known=False), and
# picked=False for a complaint without a picked facility), whose branches then go at planning.
# (GATE): a search that can find nothing for the row (no picked facility; a category of another rule, whose
# radius and types are then NULL) is not started: a condition on the outer row alone is tested once per row,
# before the subquery's index scans in every facility partition (about a third of a decision's work otherwise).
DECIDE_SQL = """
SELECT i.key, i.category_id, x.rule, x.department_id, dep.authority_id, x.facility_id, ar.area_id, x.distance_m,
       coalesce(ru.candidates, '[]') AS candidates,
       x.type_id, x.facility_name, x.owner_name, x.named_area_id, dep.name AS department_name  -- for EXPLAIN_SQL
FROM (SELECT * FROM ({input}) i0 OFFSET 0) i  -- OFFSET 0: the rules' functions get columns, not expressions
JOIN routing_category c ON c.id = i.category_id
CROSS JOIN LATERAL (
    SELECT coalesce(array_agg(m.facilitytype_id), '{{}}') AS type_ids
    FROM routing_category_facility_types m WHERE m.category_id = c.id) ct
CROSS JOIN LATERAL (  -- the areas that cover the point (or, kept by a re-route, the known area and those above it):
                     -- the smallest (the deepest level), and the one of the level the category names
    SELECT (array_agg(a.id ORDER BY lv.rank DESC, a.id))[1] AS area_id,
           (array_agg(a.id ORDER BY lv.rank DESC, a.id) FILTER (WHERE a.level = c.area_level_id))[1] AS level_area_id
    FROM (SELECT v.area_id AS id, v.level FROM facilities_areas_covering(i.g) v WHERE {known_area} IS NULL
          UNION ALL  -- known: the area and its ancestors
          SELECT k.area_id, k.level FROM facilities_area_and_ancestors({known_area}) k
          WHERE {known_area} IS NOT NULL) a
    JOIN facilities_arealevel lv ON lv.code = a.level) ar
LEFT JOIN LATERAL (  -- the facility the resident picked, if facilities_near finds it (its types, its radius)
    SELECT f.facility_id AS id, f.name, f.type_id, f.distance_m AS d, o.short_name AS owner_name,
           ({dept_picked}) AS department_id
    FROM facilities_near(i.g, ct.type_ids, CASE WHEN {picked} IS NOT NULL THEN c.radius_m END, 1,
                         ARRAY[{picked}]) f
    JOIN facilities_authority o ON o.id = f.owner_id AND o.valid_to IS NULL
    WHERE {picked} IS NOT NULL OFFSET 0) pk ON true  -- (GATE)
LEFT JOIN LATERAL (  -- facilities_near: the best few of the category's types, covering first, then nearest (none
                     -- searched for a category of another rule: no radius); a re-route may give the known ones
    SELECT jsonb_agg(jsonb_build_object('facility_id', n.facility_id, 'name', n.name, 'owner', o.short_name,
                                        'distance_m', n.distance_m, 'covers', n.covers, 'type_id', n.type_id,
                                        'department_id', CASE WHEN o.id IS NOT NULL THEN ({dept_owner}) END)
                     ORDER BY n.covers DESC, n.distance_m, n.facility_id) AS cands
    FROM facilities_near(i.g, ct.type_ids, CASE WHEN c.rule = 'facility' THEN c.radius_m END, {kept},
                         {known_facilities}) n
    LEFT JOIN facilities_authority o ON o.id = n.owner_id AND o.valid_to IS NULL
    WHERE c.rule = 'facility') nr ON true  -- (GATE)
CROSS JOIN LATERAL (  -- the facility types of the category's group: those of its categories of the facility rule
    SELECT coalesce(array_agg(DISTINCT m.facilitytype_id), '{{}}') AS type_ids
    FROM routing_category k JOIN routing_category_facility_types m ON m.category_id = k.id
    WHERE k.group_i18n = c.group_i18n AND k.rule = 'facility' AND (k.active OR k.id = c.id)
    ) cg
LEFT JOIN LATERAL (  -- the place over the category (PLACE_RULE above): a facility of a type of the group whose outline
                     -- covers the point, one with a department first, then one of the category's own types
    SELECT * FROM (
        SELECT g.facility_id AS id, g.name, g.type_id, o.short_name AS owner_name,
               CASE WHEN o.id IS NOT NULL THEN ({dept_group}) END AS department_id
        FROM facilities_covering(i.g, CASE WHEN c.rule = 'facility' THEN cg.type_ids END, {known_facilities}) g
        LEFT JOIN facilities_authority o ON o.id = g.owner_id AND o.valid_to IS NULL
        WHERE c.rule = 'facility' AND cg.type_ids <> '{{}}' OFFSET 0) g  -- (GATE)
    ORDER BY g.department_id IS NULL, g.type_id = ANY(ct.type_ids) DESC, g.id LIMIT 1) gp ON true
LEFT JOIN LATERAL (  -- the first of them whose owner has a department
    SELECT (e->>'facility_id')::bigint AS id, e->>'name' AS name, (e->>'type_id')::bigint AS type_id,
           (e->>'distance_m')::float8 AS d, (e->>'covers')::boolean AS covers, e->>'owner' AS owner_name,
           (e->>'department_id')::bigint AS department_id
    FROM jsonb_array_elements(nr.cands) WITH ORDINALITY AS t(e, n)
    WHERE e->>'department_id' IS NOT NULL ORDER BY t.n LIMIT 1) ch ON true
CROSS JOIN LATERAL (  -- the facility rule that decides, if one does: inside a building of the group, only its owner
    SELECT CASE WHEN pk.department_id IS NOT NULL THEN 'facility_picked'
                WHEN ch.department_id IS NOT NULL AND ch.covers THEN 'facility_covers'
                WHEN gp.department_id IS NOT NULL THEN 'facility_group'
                WHEN ch.department_id IS NOT NULL AND gp.id IS NULL THEN 'facility_nearest' END AS rule) fx
LEFT JOIN facilities_adminarea la ON la.id = ar.level_area_id
CROSS JOIN LATERAL (  -- the rule that decides, in DESIGN.md's order; an area's department only when needed
    SELECT r.rule,
        CASE r.rule WHEN 'facility_picked' THEN pk.department_id WHEN 'facility_covers' THEN ch.department_id
             WHEN 'facility_nearest' THEN ch.department_id WHEN 'facility_group' THEN gp.department_id
             WHEN 'area' THEN r.a_dep
             WHEN 'department' THEN c.department_id
             ELSE (SELECT t.id FROM facilities_department t WHERE t.is_triage ORDER BY t.id LIMIT 1) END AS department_id,
        CASE WHEN r.rule = 'facility_picked' THEN pk.id WHEN r.rule = 'facility_group' THEN gp.id
             WHEN r.rule LIKE 'facility%%' THEN ch.id END AS facility_id,
        CASE WHEN r.rule = 'facility_picked' THEN pk.d WHEN r.rule IN ('facility_covers', 'facility_group') THEN 0
             WHEN r.rule = 'facility_nearest' THEN ch.d END AS distance_m,
        CASE WHEN r.rule = 'facility_picked' THEN pk.type_id WHEN r.rule = 'facility_group' THEN gp.type_id
             ELSE ch.type_id END AS type_id,
        CASE WHEN r.rule = 'facility_picked' THEN pk.name WHEN r.rule = 'facility_group' THEN gp.name
             ELSE ch.name END AS facility_name,
        CASE WHEN r.rule = 'facility_picked' THEN pk.owner_name WHEN r.rule = 'facility_group' THEN gp.owner_name
             ELSE ch.owner_name END AS owner_name,
        CASE WHEN r.rule = 'area' THEN ar.level_area_id ELSE ar.area_id END AS named_area_id
    FROM (SELECT s.*, CASE
            WHEN fx.rule IS NOT NULL THEN fx.rule
            WHEN s.level IS NOT NULL THEN CASE WHEN s.a_dep IS NOT NULL THEN 'area' ELSE 'triage' END
            WHEN c.department_id IS NOT NULL THEN 'department'
            ELSE 'triage' END AS rule
          FROM (SELECT l.level, CASE WHEN l.level IS NOT NULL THEN ({dept_area}) END AS a_dep
                FROM (SELECT CASE WHEN fx.rule IS NOT NULL THEN NULL
                                  WHEN c.rule IN ('area', 'facility') THEN c.area_level_id END AS level) l
                OFFSET 0) s OFFSET 0) r OFFSET 0) x
LEFT JOIN LATERAL (  -- the others among the best few, for the record
    SELECT jsonb_agg(jsonb_build_object('facility_id', e->'facility_id', 'name', e->'name', 'owner', e->'owner',
                                        'distance_m', round((e->>'distance_m')::numeric, 1)) ORDER BY t.n) AS candidates
    FROM jsonb_array_elements(nr.cands) WITH ORDINALITY AS t(e, n)
    WHERE (e->>'facility_id')::bigint IS DISTINCT FROM x.facility_id) ru ON true
-- The department's authority and name, one primary-key probe per row (OFFSET 0: kept as such; as a plain join the
-- planner, which can't estimate x.department_id, once joined all departments to every row in a nested loop).
CROSS JOIN LATERAL (SELECT d.authority_id, d.name FROM facilities_department d
                    WHERE d.id = x.department_id OFFSET 0) dep
WHERE ar.area_id IS NOT NULL
"""

# The explanation of each decision DECIDE_SQL made (`{source}` gives its rows), in both languages, with the names it
# needs (each one primary-key probe per row). A layer of its own, so that the re-route, which keeps only the
# decisions that differ from the complaints' current ones, words only those (routing.services.MOVES_SELECT): in
# the full re-decision of 100,000 complaints where nothing changed, it would word 100,000 for none. `{extra}`:
# further columns of the source to pass through. OFFSET 0: the source's columns are computed once, not copied
# into every expression that reads them; so are the sentences' arguments (w: those of either language; w_ru,
# w_en: each language's), which both of a language's sentences read. The rare lookups (a name in a language
# other than ru and en; the category quoted by rule facility_group) are SQL functions (routing migration 0009),
# called only for the rows that need them: as subqueries here, every route() call set them up, and ran most.
EXPLAIN_SQL = """
SELECT x.key, x.rule, x.department_id, x.authority_id, x.facility_id, x.area_id, x.distance_m, x.candidates,
       {explain_ru} AS explanation_ru, {explain_en} AS explanation_en{extra}
FROM (SELECT * FROM ({source}) x0 OFFSET 0) x
JOIN routing_category c ON c.id = x.category_id
CROSS JOIN LATERAL (SELECT a.short_name FROM facilities_authority a WHERE a.id = x.authority_id OFFSET 0) auth
LEFT JOIN LATERAL (SELECT t.code, t.name_i18n FROM facilities_facilitytype t
                   WHERE t.id = x.type_id OFFSET 0) ft ON true
LEFT JOIN LATERAL (SELECT n.name, n.level FROM facilities_adminarea n WHERE n.id = x.named_area_id OFFSET 0) na ON true
LEFT JOIN LATERAL (SELECT l.code, l.name_i18n FROM facilities_arealevel l WHERE l.code = na.level OFFSET 0) nl ON true
CROSS JOIN LATERAL (
    SELECT CASE WHEN strpos(x.department_name, auth.short_name) > 0 THEN x.department_name  -- Department.display_name:
                ELSE x.department_name || ' (' || auth.short_name || ')' END AS dept,         -- it names the authority
           CASE WHEN x.rule = 'facility_group' THEN routing_group_category_i18n(x.type_id, c.group_i18n) END
               AS matching_i18n
    OFFSET 0) w
CROSS JOIN LATERAL ({words_ru} OFFSET 0) w_ru
CROSS JOIN LATERAL ({words_en} OFFSET 0) w_en
"""


def _words(lang):
    """The sentences' arguments that depend on the language: who (for a facility, its type and owner), the area's
    level, the category's group, and (rule facility_group) the category of that group for the building's type."""
    type_name = _i18n_sql("ft.name_i18n", lang, last="ft.code")
    return (f"SELECT CASE WHEN x.rule LIKE 'facility%%' THEN {type_name} || ' ' || x.owner_name "
            f"ELSE auth.short_name END AS who, {_i18n_sql('nl.name_i18n', lang, last='nl.code')} AS level_name, "
            f"{_i18n_sql('c.group_i18n', lang)} AS group_name, {_i18n_sql('w.matching_i18n', lang)} AS matching")


def _explain(lang):
    """The explanation sentence in SQL: the rule's template through format(), in one language."""
    col = 0 if lang == "ru" else 1
    w = f"w_{lang}"
    cases = " ".join(f"WHEN {_lit(rule)} THEN {_lit(texts[col])}" for rule, texts in EXPLANATIONS.items())
    args = (f"{w}.who, round(x.distance_m)::bigint, na.name, x.facility_name, c.radius_m, w.dept, {w}.level_name, "
            f"{w}.group_name, {w}.matching")
    prefix = (f"CASE WHEN c.rule = 'facility' AND x.rule NOT LIKE 'facility%%' "
              f"THEN format({_lit(NO_FACILITY[col])}, {args}) ELSE '' END")
    return f"{prefix} || format(CASE x.rule {cases} END, {args})"


def _i18n_sql(column, lang, last="''"):
    """A translated field's text in SQL ({language: text}): in `lang`, else in the other of ru/en, else in any
    language (the first by code: routing_i18n_any), else `last`."""
    other = "en" if lang == "ru" else "ru"
    return (f"coalesce(nullif({column}->>'{lang}', ''), nullif({column}->>'{other}', ''), "
            f"routing_i18n_any({column}), {last})")


def _lit(text):
    """A SQL string literal (the templates are ours, but quote them properly all the same)."""
    return "'" + text.replace("'", "''").replace("%", "%%") + "'"


def decide_unworded_sql(input_sql, *, known=True, picked=True):
    """DECIDE_SQL over the rows `input_sql` gives, without the explanations (explain_sql words them);
    %-placeholders in input_sql stay for the caller's params. known=False: the input never gives known
    facilities or a known area (route()); picked=False: nor a picked facility. Those are then NULL constants in
    the statement, so the planner drops the branches that use them (a smaller plan to start for each call)."""
    return DECIDE_SQL.format(
        input=input_sql, kept=KEPT_CANDIDATES,
        known_facilities="i.known_facilities" if known else "NULL::bigint[]",
        known_area="i.known_area_id" if known else "NULL::bigint",
        picked="i.picked_id" if picked else "NULL::bigint",
        dept_owner=DEPARTMENT_FOR.format(authority="o.id", category="c.id"),
        dept_picked=DEPARTMENT_FOR.format(authority="o.id", category="c.id"),
        dept_group=DEPARTMENT_FOR.format(authority="o.id", category="c.id"),
        dept_area=DEPARTMENT_FOR.format(authority="la.authority_id", category="c.id"))


def explain_sql(source_sql, extra=()):
    """EXPLAIN_SQL over the rows of `source_sql` (decide_unworded_sql's columns, and the `extra` ones passed
    through): the decisions with their explanations."""
    return EXPLAIN_SQL.format(source=source_sql, explain_ru=_explain("ru"), explain_en=_explain("en"),
                              words_ru=_words("ru"), words_en=_words("en"),
                              extra="".join(f", x.{name}" for name in extra))


def decide_sql(input_sql, *, known=True, picked=True):
    """The decisions, worded: DECIDE_SQL and EXPLAIN_SQL over the rows `input_sql` gives, as one statement."""
    return explain_sql(decide_unworded_sql(input_sql, known=known, picked=picked))


DECISION_COLUMNS = ("department_id", "authority_id", "facility_id", "area_id", "rule", "distance_m", "candidates",
                    "engine_version", "explanation_ru", "explanation_en", "created_at")


def _route_sql(picked):
    """route()'s statement: decide, store, and return the decision with what its related objects need. $1, $2 the
    point, $3 the category, $4 the picked facility (unused when `picked` is False), $5 the engine's version."""
    return f"""
WITH d AS ({decide_sql("SELECT 0::bigint AS key, ST_SetSRID(ST_MakePoint($1, $2), 4326) AS g, "
                       "$3::bigint AS category_id, $4::bigint AS picked_id, NULL::bigint[] AS known_facilities, "
                       "NULL::bigint AS known_area_id", known=False, picked=picked)}),
ins AS (
    INSERT INTO routing_routingdecision ({", ".join(DECISION_COLUMNS)})
    SELECT department_id, authority_id, facility_id, area_id, rule, distance_m, candidates, $5,
           explanation_ru, explanation_en, now() FROM d
    RETURNING *)
SELECT ins.id, ins.created_at, ins.department_id, ins.authority_id, ins.facility_id, ins.area_id, ins.rule,
       ins.distance_m, ins.candidates, ins.explanation_ru, ins.explanation_en,
       dep.code, dep.name, dep.is_triage, a.code, a.name, a.short_name, a.kind,
       ar.name, ar.level, ar.parent_id, ar.authority_id, f.name, f.type_id, f.owner_id
FROM ins JOIN facilities_department dep ON dep.id = ins.department_id
JOIN facilities_authority a ON a.id = ins.authority_id
LEFT JOIN facilities_adminarea ar ON ar.id = ins.area_id
LEFT JOIN facilities_facility f ON f.id = ins.facility_id
"""


# One statement for a complaint with a picked facility, one for the others (most): the same template.
ROUTE_SQLS = {True: _route_sql(picked=True), False: _route_sql(picked=False)}
ROUTE_SQL = ROUTE_SQLS[True]

# route() calls its statement through a PL/pgSQL function, created by `manage.py migrate` (install_route_function).
# Planning the statement costs more than running it; PL/pgSQL keeps the plan of each statement in the server
# process, for the life of that process, whoever the client is. So nothing is prepared on the client's session,
# and it holds behind a transaction-mode pooler (pgbouncer 1.18 keeps no prepared statements: docs/database.md),
# where consecutive transactions of one client land on different server connections. Its generic plan (made once)
# is as good as a custom one for every point: the function's SET makes PostgreSQL keep it instead of planning
# afresh. One function per statement (ROUTE_SQLS: with a picked facility, without); their names carry a digest of
# both statements, so a changed statement makes new functions.
_ROUTE_DIGEST = hashlib.sha256((ROUTE_SQLS[True] + ROUTE_SQLS[False]).encode()).hexdigest()[:12]
ROUTE_FUNCTIONS = {True: f"routing_route_{_ROUTE_DIGEST}_picked", False: f"routing_route_{_ROUTE_DIGEST}"}
ROUTE_CALLS = {picked: f"SELECT * FROM {name}(%s, %s, %s, %s, %s)" for picked, name in ROUTE_FUNCTIONS.items()}


def install_route_function(using=DEFAULT_DB_ALIAS):
    """Create route()'s functions (and drop the ones of other versions of the statements). Run by migrate."""
    with connections[using].cursor() as cur:
        cur.execute("SELECT bool_and(to_regproc(n) IS NOT NULL) FROM unnest(%s::text[]) n",
                    [list(ROUTE_FUNCTIONS.values())])
        if cur.fetchone()[0]:
            return
        cur.execute("SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                    "WHERE n.nspname = current_schema() AND p.proname LIKE 'routing\\_route\\_%%' "
                    "AND NOT p.proname = ANY(%s)", [list(ROUTE_FUNCTIONS.values())])
        for (old,) in cur.fetchall():
            cur.execute(f"DROP FUNCTION {old}")
        for picked, name in ROUTE_FUNCTIONS.items():
            sql = ROUTE_SQLS[picked]
            # The result's column types, as PostgreSQL infers them: the statement run for no point (it stores
            # nothing).
            cur.execute(sql.replace("$1", "%s").replace("$2", "%s").replace("$3", "%s").replace("$4", "%s")
                        .replace("$5", "%s"), [None] * 5)
            oids = [d.type_code for d in cur.description]
            cur.execute("SELECT format_type(t, NULL) FROM unnest(%s::oid[]) WITH ORDINALITY u(t, n) ORDER BY n",
                        [oids])
            columns = ", ".join(f"c{n} {t}" for n, (t,) in enumerate(cur.fetchall()))
            body = sql.replace("%%", "%")
            cur.execute(f"""CREATE OR REPLACE FUNCTION {name}(float8, float8, bigint, bigint, text)
                RETURNS TABLE ({columns}) LANGUAGE plpgsql VOLATILE SET plan_cache_mode = force_generic_plan
                AS $route$ BEGIN RETURN QUERY {body}; END $route$""")


def install_route_function_after_migrate(sender, using=DEFAULT_DB_ALIAS, **kwargs):
    install_route_function(using)


def _execute_route(cur, params):
    picked = params[3] is not None
    try:
        cur.execute(ROUTE_CALLS[picked], params)
    except ProgrammingError as exc:
        if getattr(exc.__cause__, "pgcode", None) == "42883":  # undefined_function
            raise RuntimeError(f"the database lacks {ROUTE_FUNCTIONS[picked]}(): run manage.py migrate") from exc
        raise
    return cur.fetchone()


def route(point, category, facility=None):
    """Decide who must act on a complaint at `point` ((lon, lat) or a GEOS Point) in `category`; store the
    decision and return it (a saved RoutingDecision, its department, authority, area and facility loaded).

    Raises OutsideCity when no admin area covers the point; never raises for want of a rule (city triage).
    """
    if isinstance(point, Point):
        if point.srid not in (None, 4326):
            point = point.transform(4326, clone=True)
        lon, lat = point.x, point.y
    else:
        lon, lat = (float(v) for v in point)
    connection.ensure_connection()
    with connection.cursor() as cur:
        row = _execute_route(cur, [lon, lat, category.pk, getattr(facility, "pk", facility), ENGINE_VERSION])
    if row is None:
        if not Department.objects.filter(is_triage=True).exists() and _in_city(lon, lat):
            raise RuntimeError("no triage department is configured (an authority with triage: yes)")
        raise OutsideCity(lon, lat)
    return _decision_from_row(row, category)


def _in_city(lon, lat):
    from facilities.selectors import areas_covering_point

    return bool(areas_covering_point((lon, lat)))


def _loaded(model, db, **values):
    """A model instance from some of its columns; the others load on first access (Model.from_db)."""
    names = [f.attname for f in model._meta.concrete_fields if f.attname in values]
    return model.from_db(db, names, [values[n] for n in names])


def _decision_from_row(row, category):
    (pk, created_at, department_id, authority_id, facility_id, area_id, rule, distance_m, candidates,
     explanation_ru, explanation_en, dep_code, dep_name, dep_triage, a_code, a_name, a_short, a_kind,
     area_name, area_level, area_parent, area_authority, f_name, f_type, f_owner) = row
    db = connection.alias
    authority = _loaded(Authority, db, id=authority_id, code=a_code, name=a_name, short_name=a_short, kind=a_kind)
    department = _loaded(Department, db, id=department_id, authority_id=authority_id, code=dep_code, name=dep_name,
                         is_triage=dep_triage)
    department.authority = authority
    decision = _loaded(
        RoutingDecision, db, id=pk, created_at=created_at, department_id=department_id, authority_id=authority_id,
        facility_id=facility_id, area_id=area_id, rule=rule, distance_m=distance_m,
        candidates=json.loads(candidates) if isinstance(candidates, str) else candidates,
        engine_version=ENGINE_VERSION, explanation_ru=explanation_ru, explanation_en=explanation_en)
    decision.department, decision.authority = department, authority
    decision.area = None if area_id is None else _loaded(
        AdminArea, db, id=area_id, name=area_name, level=area_level, parent_id=area_parent,
        authority_id=area_authority)
    decision.facility = None if facility_id is None else _loaded(
        Facility, db, id=facility_id, name=f_name, type_id=f_type, owner_id=f_owner)
    return decision


def department_for(authority, category):
    """The department of `authority` that handles `category` (the routing table), or None if it has none."""
    with connection.cursor() as cur:
        cur.execute(DEPARTMENT_FOR.format(authority="%(a)s", category="%(c)s"),
                    {"a": authority.pk, "c": getattr(category, "pk", category)})
        row = cur.fetchone()
    return Department.objects.select_related("authority").get(pk=row[0]) if row else None
