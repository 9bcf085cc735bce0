"""The decision statement of the engine before issue 9 (routing/engine.py at commit f9c4ef9), the peer of the
routing benchmark's full re-decision: the same work for every open complaint (district covers on the subdivided
pieces, the box search for the category's facility types, geography distances, the routing table, the explanation)
written inline, before the rules became SQL functions, a place rule (issue 11) and area levels (issue 12) came.

Kept verbatim except where the schema has changed since (each marked ADAPTED): the category's area level is
`area_level_id` (issue 12: levels are data) where it was `rule` / `fallback_level`. Known facilities (the
re-route's quick path) were a jsonb array then; the benchmark runs it for the full re-decision only, where there
are none. For bench/routing_bench.py only: nothing in the project imports it.
"""
WINDOW_CAP = 1000
KEPT_CANDIDATES = 5
METRES_PER_DEGREE = 111_320.0
PICKED_FITS = "(ST_Covers(f.geom, i.g) OR ST_DWithin(f.geom::geography, i.g::geography, c.radius_m))"

EXPLANATIONS = {
    "facility_picked": ("%1$s отвечает за объект «%4$s», который выбрал заявитель",
                        "%1$s is responsible for «%4$s», the facility the reporter picked"),
    "facility_covers": ("%1$s отвечает за это здание: точка внутри его контура",
                        "%1$s is responsible for this building: the point is inside its outline"),
    "facility_nearest": ("%1$s отвечает за этот объект: ближайший объект в %2$s м",
                         "%1$s is responsible for this facility: the nearest one, %2$s m away"),
    "district": ("%1$s отвечает за территорию района",
                 "%1$s is responsible for the territory of the district %3$s"),
    "okrug": ("%1$s отвечает за территорию округа",
              "%1$s is responsible for the territory of the okrug %3$s"),
    "department": ("%6$s отвечает за эту категорию обращений во всём городе",
                   "%6$s handles this category city-wide"),
    "triage": ("Ни одно правило не определило исполнителя: обращение разберёт %6$s",
               "No rule found who is responsible: %6$s will sort it out"),
}
# Put before the area / department sentence when a facility category found no facility.
NO_FACILITY = ("Подходящих объектов в радиусе %5$s м нет. ", "No matching facility within %5$s m. ")

DEPARTMENT_FOR = """
    SELECT z.department_id FROM (
        SELECT r.department_id, CASE WHEN r.category_id IS NULL THEN 1 ELSE 0 END AS pri
        FROM routing_routingassignment r
        WHERE r.authority_id = {authority} AND (r.category_id = {category} OR r.category_id IS NULL)
        UNION ALL
        SELECT d.id, 2 FROM facilities_department d WHERE d.authority_id = {authority} AND d.code = 'main'
    ) z ORDER BY z.pri LIMIT 1"""

# The same for an authority that may have been retired (an area's authority): a retired one has no department.
DEPARTMENT_FOR_ACTIVE = ("SELECT (" + DEPARTMENT_FOR + ") FROM facilities_authority aa "
                         "WHERE aa.id = {authority} AND aa.valid_to IS NULL")

DECIDE_SQL = """
SELECT i.key, x.rule, x.department_id, dep.authority_id, x.facility_id, ar.area_id, x.distance_m,
       coalesce(ru.candidates, '[]') AS candidates, {explain_ru} AS explanation_ru, {explain_en} AS explanation_en
FROM ({input}) i
JOIN routing_category c ON c.id = i.category_id
CROSS JOIN LATERAL (
    SELECT coalesce(array_agg(m.facilitytype_id), '{{}}') AS type_ids
    FROM routing_category_facility_types m WHERE m.category_id = c.id) ct
CROSS JOIN LATERAL (  -- areas_covering_point: covers (a boundary point counts), on the subdivided pieces
    SELECT (array_agg(a.id ORDER BY a.id) FILTER (WHERE a.level = 'district'))[1] AS district_id,
           (array_agg(a.id ORDER BY a.id) FILTER (WHERE a.level = 'okrug'))[1] AS okrug_id,
           (array_agg(a.id ORDER BY a.level = 'district' DESC, a.level = 'okrug' DESC, a.id))[1] AS area_id
    FROM (SELECT p.area_id FROM facilities_adminareapiece p WHERE i.known_area_id IS NULL AND ST_Covers(p.geom, i.g)
          UNION ALL  -- known: the district and its okrug
          SELECT k.id FROM facilities_adminarea k WHERE k.id = i.known_area_id
          UNION ALL
          SELECT k.parent_id FROM facilities_adminarea k WHERE k.id = i.known_area_id AND k.parent_id IS NOT NULL) p
    JOIN facilities_adminarea a ON a.id = p.area_id AND a.valid_to IS NULL) ar
LEFT JOIN LATERAL (  -- the facility the resident picked, if it is of the category's types
    SELECT f.id, f.name, f.type_id, ST_Distance(f.geom::geography, i.g::geography) AS d, o.short_name AS owner_name,
           ({dept_picked}) AS department_id
    FROM facilities_facility f JOIN facilities_authority o ON o.id = f.owner_id AND o.valid_to IS NULL
    WHERE i.picked_id IS NOT NULL AND f.id = i.picked_id AND f.valid_to IS NULL AND f.type_id = ANY(ct.type_ids)
      AND {picked_fits}
    OFFSET 0) pk ON true
LEFT JOIN LATERAL (  -- facilities_near_point: the best few of the category's types, covering first, then nearest
    SELECT jsonb_agg(jsonb_build_object('facility_id', n.id, 'name', n.name, 'owner', o.short_name,
                                        'distance_m', n.d, 'covers', n.covers, 'type_id', n.type_id,
                                        'department_id', CASE WHEN o.id IS NOT NULL THEN ({dept_owner}) END)
                     ORDER BY n.covers DESC, n.d, n.id) AS cands
    FROM (
        SELECT k.id, k.name, k.owner_id, k.type_id, k.d, k.d = 0 AND ST_Covers(k.geom, i.g) AS covers
        FROM (  -- a box scan: the degree window wide enough for the radius at this latitude, from the GiST
                -- index; the type checked before any geometry is read; then metres by geography
            SELECT f.id, f.name, f.owner_id, f.type_id, f.geom, ST_Distance(f.geom::geography, i.g::geography) AS d
            FROM facilities_facility f
            WHERE c.rule = 'facility' AND i.known_facilities IS NULL AND f.type_id = ANY(ct.type_ids)
              AND f.valid_to IS NULL
              AND f.geom && ST_Expand(i.g, c.radius_m / ({mpd} * greatest(cos(radians(least(abs(ST_Y(i.g)) + 1, 89))), 0.01)))
            UNION ALL  -- known: the facilities found before, measured again
            SELECT f.id, f.name, f.owner_id, f.type_id, f.geom, ST_Distance(f.geom::geography, i.g::geography) AS d
            FROM jsonb_array_elements_text(i.known_facilities) kf(id)
            JOIN facilities_facility f ON f.id = kf.id::bigint
            WHERE c.rule = 'facility' AND f.type_id = ANY(ct.type_ids) AND f.valid_to IS NULL
            LIMIT {window_cap}) k
        WHERE k.d <= c.radius_m
        ORDER BY covers DESC, k.d, k.id LIMIT {kept}) n
    LEFT JOIN facilities_authority o ON o.id = n.owner_id AND o.valid_to IS NULL) nr ON true
LEFT JOIN LATERAL (  -- the first of them whose owner has a department
    SELECT (e->>'facility_id')::bigint AS id, e->>'name' AS name, (e->>'type_id')::bigint AS type_id,
           (e->>'distance_m')::float8 AS d, (e->>'covers')::boolean AS covers, e->>'owner' AS owner_name,
           (e->>'department_id')::bigint AS department_id
    FROM jsonb_array_elements(nr.cands) WITH ORDINALITY AS t(e, n)
    WHERE e->>'department_id' IS NOT NULL ORDER BY t.n LIMIT 1) ch ON true
LEFT JOIN facilities_adminarea da ON da.id = ar.district_id
LEFT JOIN facilities_adminarea oa ON oa.id = ar.okrug_id
CROSS JOIN LATERAL (  -- the rule that decides, in DESIGN.md's order; an area's department only when needed
    SELECT r.rule,
        CASE r.rule WHEN 'facility_picked' THEN pk.department_id WHEN 'facility_covers' THEN ch.department_id
             WHEN 'facility_nearest' THEN ch.department_id WHEN 'district' THEN r.d_dep WHEN 'okrug' THEN r.o_dep
             WHEN 'department' THEN c.department_id
             ELSE (SELECT t.id FROM facilities_department t WHERE t.is_triage ORDER BY t.id LIMIT 1) END AS department_id,
        CASE WHEN r.rule = 'facility_picked' THEN pk.id WHEN r.rule LIKE 'facility%%' THEN ch.id END AS facility_id,
        CASE WHEN r.rule = 'facility_picked' THEN pk.d WHEN r.rule = 'facility_covers' THEN 0
             WHEN r.rule = 'facility_nearest' THEN ch.d END AS distance_m,
        CASE WHEN r.rule = 'facility_picked' THEN pk.type_id ELSE ch.type_id END AS type_id,
        CASE WHEN r.rule = 'facility_picked' THEN pk.name ELSE ch.name END AS facility_name,
        CASE WHEN r.rule = 'facility_picked' THEN pk.owner_name ELSE ch.owner_name END AS owner_name,
        CASE WHEN r.rule = 'okrug' THEN ar.okrug_id ELSE ar.district_id END AS named_area_id
    FROM (SELECT s.*, CASE
            WHEN pk.department_id IS NOT NULL THEN 'facility_picked'
            WHEN ch.department_id IS NOT NULL THEN CASE WHEN ch.covers THEN 'facility_covers' ELSE 'facility_nearest' END
            WHEN s.level = 'district' THEN CASE WHEN s.d_dep IS NOT NULL THEN 'district' ELSE 'triage' END
            WHEN s.level = 'okrug' THEN CASE WHEN s.o_dep IS NOT NULL THEN 'okrug' ELSE 'triage' END
            WHEN c.department_id IS NOT NULL THEN 'department'
            ELSE 'triage' END AS rule
          FROM (SELECT l.level,
                       CASE WHEN l.level = 'district' THEN ({dept_district}) END AS d_dep,
                       CASE WHEN l.level = 'okrug' THEN ({dept_okrug}) END AS o_dep
                FROM (SELECT CASE WHEN pk.department_id IS NOT NULL OR ch.department_id IS NOT NULL THEN NULL
                                  WHEN c.rule IN ('area', 'facility') AND c.area_level_id IN ('district', 'okrug')
                                       THEN c.area_level_id END AS level) l OFFSET 0) s OFFSET 0) r OFFSET 0) x
LEFT JOIN LATERAL (  -- the others among the best few, for the record
    SELECT jsonb_agg(jsonb_build_object('facility_id', e->'facility_id', 'name', e->'name', 'owner', e->'owner',
                                        'distance_m', round((e->>'distance_m')::numeric, 1)) ORDER BY t.n) AS candidates
    FROM jsonb_array_elements(nr.cands) WITH ORDINALITY AS t(e, n)
    WHERE (e->>'facility_id')::bigint IS DISTINCT FROM x.facility_id) ru ON true
JOIN facilities_department dep ON dep.id = x.department_id
JOIN facilities_authority auth ON auth.id = dep.authority_id
LEFT JOIN facilities_facilitytype ft ON ft.id = x.type_id
LEFT JOIN facilities_adminarea na ON na.id = x.named_area_id
WHERE ar.area_id IS NOT NULL
"""



def _explain(lang):
    """The explanation sentence in SQL: the rule's template through format(), in one language."""
    col = 0 if lang == "ru" else 1
    type_name = "coalesce(ft.name_i18n->>'ru', ft.code)" if lang == "ru" else "coalesce(ft.name_i18n->>'en', ft.code)"  # the names became translations (facilities 0012)
    cases = " ".join(f"WHEN {_lit(rule)} THEN {_lit(texts[col])}" for rule, texts in EXPLANATIONS.items())
    who = f"CASE WHEN x.rule LIKE 'facility%%' THEN {type_name} || ' ' || x.owner_name ELSE auth.short_name END"
    # The department's display name (Department.display_name): it always names the authority.
    dept = ("CASE WHEN strpos(dep.name, auth.short_name) > 0 THEN dep.name "
            "ELSE dep.name || ' (' || auth.short_name || ')' END")
    args = f"{who}, round(x.distance_m)::bigint, na.name, x.facility_name, c.radius_m, {dept}"
    prefix = (f"CASE WHEN c.rule = 'facility' AND x.rule NOT LIKE 'facility%%' "
              f"THEN format({_lit(NO_FACILITY[col])}, {args}) ELSE '' END")
    return f"{prefix} || format(CASE x.rule {cases} END, {args})"


def _lit(text):
    return "'" + text.replace("'", "''").replace("%", "%%") + "'"


def decide_sql(input_sql):
    """The old DECIDE_SQL over the rows `input_sql` gives (key, g, category_id, picked_id, known_facilities jsonb,
    known_area_id)."""
    return DECIDE_SQL.format(
        input=input_sql, mpd=METRES_PER_DEGREE, window_cap=WINDOW_CAP, kept=KEPT_CANDIDATES, picked_fits=PICKED_FITS,
        dept_owner=DEPARTMENT_FOR.format(authority="o.id", category="c.id"),
        dept_picked=DEPARTMENT_FOR.format(authority="o.id", category="c.id"),
        dept_district=DEPARTMENT_FOR_ACTIVE.format(authority="da.authority_id", category="c.id"),
        dept_okrug=DEPARTMENT_FOR_ACTIVE.format(authority="oa.authority_id", category="c.id"),
        explain_ru=_explain("ru"), explain_en=_explain("en"))
