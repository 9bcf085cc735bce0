"""Writes of the routing app: the set-based re-route of open complaints."""
import time
from dataclasses import dataclass, field

from django.db import connection, transaction

from complaints.models import OPEN_STATES

from .engine import ENGINE_VERSION, METRES_PER_DEGREE, decide_sql

# The open complaints the engine decided (a person's decision, rule `manual`, is left alone), as DECIDE_SQL input.
# A facility the resident picked stays an input of the decision. Without `spatial`, the facilities and the district
# that the current decision found are given as known (see DECIDE_SQL), and no spatial search is made.
REROUTE_INPUT = """
    SELECT c.id AS key, c.location AS g, c.category_id,
           CASE WHEN rd.rule = 'facility_picked' THEN c.facility_id END AS picked_id,
           {known_facilities} AS known_facilities, {known_area} AS known_area_id
    FROM complaints_complaint c JOIN routing_routingdecision rd ON rd.id = c.decision_id
    WHERE c.state = ANY(%(open)s) AND rd.rule <> 'manual' {only}"""
KNOWN_FACILITIES = """(SELECT coalesce(jsonb_agg(v), '[]') FROM (
        SELECT to_jsonb(rd.facility_id) AS v WHERE rd.rule IN ('facility_covers', 'facility_nearest')
        UNION ALL SELECT e->'facility_id' FROM jsonb_array_elements(rd.candidates) e) kf)"""

# Without a spatial search, most complaints are seen to keep their department with a few hash joins: the authority
# their decision named (the facility's owner, the area's) is looked up in the routing table again. Only those that
# may move are decided again in full (by DECIDE_SQL): their department differs, their facility or area is gone, a
# facility ranked before the chosen one (its owner had no department then) might win now, or they are in triage.
MAY_MOVE_SQL = """
    CREATE TEMP TABLE routing_may_move ON COMMIT DROP AS
    SELECT b.id FROM (
        SELECT c.id, c.department_id, c.category_id, rd.rule, k.department_id AS category_department,
               CASE WHEN rd.rule LIKE 'facility%%' THEN f.owner_id
                    WHEN rd.rule = 'district' THEN da.authority_id
                    WHEN rd.rule = 'okrug' THEN CASE WHEN da.level = 'okrug' THEN da.authority_id
                                                     ELSE oa.authority_id END END AS authority_id,
               (rd.rule LIKE 'facility%%' AND f.id IS NULL) OR da.id IS NULL AS gone,
               EXISTS (SELECT 1 FROM jsonb_array_elements(rd.candidates) e
                       WHERE (e->>'distance_m')::float8 <= coalesce(rd.distance_m, 'infinity')) AS contested
        FROM complaints_complaint c
        JOIN routing_routingdecision rd ON rd.id = c.decision_id
        JOIN routing_category k ON k.id = c.category_id
        LEFT JOIN facilities_facility f ON f.id = rd.facility_id AND f.valid_to IS NULL
        LEFT JOIN facilities_adminarea da ON da.id = rd.area_id AND da.valid_to IS NULL
        LEFT JOIN facilities_adminarea oa ON oa.id = da.parent_id AND oa.valid_to IS NULL
        WHERE c.state = ANY(%(open)s) AND rd.rule <> 'manual' {only}) b
    LEFT JOIN facilities_authority a ON a.id = b.authority_id AND a.valid_to IS NULL
    LEFT JOIN routing_routingassignment re ON re.authority_id = a.id AND re.category_id = b.category_id
    LEFT JOIN routing_routingassignment rn ON rn.authority_id = a.id AND rn.category_id IS NULL
    LEFT JOIN facilities_department dm ON dm.authority_id = a.id AND dm.code = 'main'
    WHERE b.rule = 'triage' OR b.gone OR b.contested
       OR CASE WHEN b.rule = 'department' THEN b.category_department
               ELSE coalesce(re.department_id, rn.department_id, dm.id) END IS DISTINCT FROM b.department_id"""

# The complaints that must search again after a change to some facilities, areas or categories (the `changed_*`
# temporary tables); for every other complaint the quick path (known facilities and district, MAY_MOVE_SQL) is
# exact, since nothing it relies on has changed. Facilities (created, moved, retyped, retired or revived): the
# complaints whose decision names one of them (chosen, runner-up or picked: with it gone or moved, the next one in
# line may win), and those of a category over its type around where it now lies (it may win now). The window is
# generous (a box around the circle, a metre wider, the widest radius of the type's categories): a few complaints
# decided again for nothing cost little, one missed would keep a stale answer.
SEARCH_FACILITIES = """
    SELECT c.id FROM complaints_complaint c
    JOIN routing_routingdecision rd ON rd.id = c.decision_id
    CROSS JOIN LATERAL (SELECT rd.facility_id UNION ALL SELECT c.facility_id
                        UNION ALL SELECT (e->>'facility_id')::bigint FROM jsonb_array_elements(rd.candidates) e) r(id)
    WHERE c.state = ANY(%(open)s) AND rd.rule <> 'manual' {only} AND r.id IN (SELECT id FROM changed_facilities)
    UNION
    SELECT c.id FROM changed_facilities a
    CROSS JOIN LATERAL (  -- by id in each partition's index (a hash join would read every facility)
        SELECT f.type_id, f.geom FROM facilities_facility f WHERE f.id = a.id AND f.valid_to IS NULL OFFSET 0) f
    CROSS JOIN LATERAL (  -- the categories over its type, and the widest of their radii
        SELECT array_agg(k.id) AS ids, max(k.radius_m) AS radius_m
        FROM routing_category_facility_types m JOIN routing_category k ON k.id = m.category_id
        WHERE m.facilitytype_id = f.type_id AND k.rule = 'facility') k
    CROSS JOIN LATERAL (  -- the complaints in the degree window of that radius, from the location index only (OFFSET
                          -- 0: the category is checked afterwards; ANDing in its own index costs more than it saves)
        SELECT c.id, c.category_id, c.decision_id FROM complaints_complaint c
        WHERE c.location && ST_Expand(f.geom, (k.radius_m + 1) / ({mpd} * greatest(cos(radians(least(
                                      greatest(abs(ST_YMin(f.geom)), abs(ST_YMax(f.geom))) + 1, 89))), 0.01)))
          AND c.state = ANY(%(open)s) {only}
        OFFSET 0) c
    JOIN routing_routingdecision rd ON rd.id = c.decision_id
    WHERE c.category_id = ANY(k.ids) AND rd.rule <> 'manual'"""

# Areas (created, reshaped, re-parented, retired or revived): the complaints whose decision named one of them (or
# a district of one), and those its new outline covers.
SEARCH_AREAS = """
    SELECT c.id FROM complaints_complaint c
    JOIN routing_routingdecision rd ON rd.id = c.decision_id
    LEFT JOIN facilities_adminarea da ON da.id = rd.area_id
    WHERE c.state = ANY(%(open)s) AND rd.rule <> 'manual' {only}
      AND (rd.area_id IN (SELECT id FROM changed_areas) OR da.parent_id IN (SELECT id FROM changed_areas))
    UNION
    SELECT c.id FROM changed_areas x
    JOIN facilities_adminareapiece p ON p.area_id = x.id
    JOIN complaints_complaint c ON c.location && p.geom AND ST_Covers(p.geom, c.location)
    JOIN routing_routingdecision rd ON rd.id = c.decision_id
    WHERE c.state = ANY(%(open)s) AND rd.rule <> 'manual' {only}"""

# Categories (their rule, radius, facility types, fallback or department changed): all their complaints.
SEARCH_CATEGORIES = """
    SELECT c.id FROM complaints_complaint c
    JOIN routing_routingdecision rd ON rd.id = c.decision_id
    WHERE c.state = ANY(%(open)s) AND rd.rule <> 'manual' {only}
      AND c.category_id IN (SELECT id FROM changed_categories)"""

SEARCHES = {"facilities": SEARCH_FACILITIES, "areas": SEARCH_AREAS, "categories": SEARCH_CATEGORIES}

# What a decision found, for telling whether a new one found the same: the rule, the facility, the area and the
# best few facilities with their distances (their names and owners' names are for reading only).
FOUND = """ROW({t}.rule, {t}.facility_id, {t}.area_id, round({t}.distance_m::numeric, 1), (
    SELECT jsonb_agg(jsonb_build_array(e->'facility_id', e->'distance_m') ORDER BY n)
    FROM jsonb_array_elements({t}.candidates) WITH ORDINALITY AS q(e, n)))"""

# The new decisions that differ: those whose department changed (moves), and those whose department stays but
# which found other facilities or distances (refreshes: a facility was added or moved near them). A refresh keeps
# the stored decision current, which the quick path relies on: it trusts each decision's best few facilities.
# MATERIALIZED: the comparison reads the decision's columns, and an inlined subquery would compute them again for
# it (three times the cost). (Their new decisions' ids are drawn afterwards: nextval() in this statement would keep
# it from running in parallel.)
MOVES_SQL = """
    CREATE TEMP TABLE routing_moves ON COMMIT DROP AS
    WITH d AS MATERIALIZED ({decide})
    SELECT d.*, c.department_id AS from_department_id, c.decision_id AS from_decision_id,
           CASE WHEN rd.rule = 'facility_picked' AND d.rule <> 'facility_picked' THEN c.facility_id END
               AS kept_facility_id,
           d.department_id IS DISTINCT FROM c.department_id AS moves
    FROM d JOIN complaints_complaint c ON c.id = d.key JOIN routing_routingdecision rd ON rd.id = c.decision_id
    WHERE d.department_id IS DISTINCT FROM c.department_id OR """ + FOUND.format(t="d") + """
          IS DISTINCT FROM """ + FOUND.format(t="rd")

# Apply the moves and refreshes in one statement. A complaint that changed since they were computed (a member of
# staff acted on it meanwhile) no longer matches its from_* columns and is skipped: the person's change stands.
# A move gets a public history entry; a refresh a staff-only one (the same department, another facility or
# distance in the explanation).
# complaints.decision is a deferred foreign key, so the decisions may be inserted after the update.
APPLY_SQL = """
    WITH moved AS (
        UPDATE complaints_complaint c
        SET decision_id = m.decision_id, department_id = m.department_id, area_id = m.area_id,
            facility_id = coalesce(m.facility_id, m.kept_facility_id), updated_at = now()
        FROM routing_moves m
        WHERE c.id = m.key AND c.decision_id = m.from_decision_id AND c.department_id = m.from_department_id
          AND c.state = ANY(%(open)s)
        RETURNING c.id),
    decisions AS (
        INSERT INTO routing_routingdecision (id, department_id, authority_id, facility_id, area_id, rule, distance_m,
                                             candidates, engine_version, explanation_ru, explanation_en, created_at)
        SELECT m.decision_id, m.department_id, m.authority_id, m.facility_id, m.area_id, m.rule, m.distance_m,
               m.candidates, %(version)s, m.explanation_ru, m.explanation_en, now()
        FROM routing_moves m JOIN moved ON moved.id = m.key),
    events AS (
        INSERT INTO complaints_complaintevent (complaint_id, at, actor_label, kind, from_state, to_state,
                                               from_department_id, to_department_id, decision_id, reason, public)
        SELECT m.key, now(), 'system:reroute', 'routed', '', '', m.from_department_id, m.department_id,
               m.decision_id, %(reason)s || CASE WHEN m.moves THEN '' ELSE %(refreshed)s END || m.explanation_ru,
               m.moves
        FROM routing_moves m JOIN moved ON moved.id = m.key)
    SELECT count(*) FILTER (WHERE m.moves), count(*) FILTER (WHERE NOT m.moves)
    FROM routing_moves m JOIN moved ON moved.id = m.key"""

PREVIEW_SQL = """
    SELECT m.key, c.tracking_code, fd.id, fd.name, fa.short_name, td.id, td.name, ta.short_name, m.rule,
           m.explanation_ru, m.explanation_en
    FROM routing_moves m JOIN complaints_complaint c ON c.id = m.key
    JOIN facilities_department fd ON fd.id = m.from_department_id JOIN facilities_authority fa ON fa.id = fd.authority_id
    JOIN facilities_department td ON td.id = m.department_id JOIN facilities_authority ta ON ta.id = td.authority_id
    WHERE m.moves ORDER BY m.key"""


@dataclass
class Move:
    complaint_id: int
    tracking_code: str
    from_department: str
    to_department: str
    rule: str
    explanation_ru: str
    explanation_en: str


@dataclass
class RerouteResult:
    considered: int  # open complaints the engine decided again
    moved: int  # those whose department changed (in a dry run: would change)
    dry_run: bool
    seconds: float
    moves: list = field(default_factory=list)  # Move, filled in a dry run
    refreshed: int = 0  # same department, but the decision found other facilities (a new decision, no move)
    searched: int | None = None  # with changed facilities, areas or categories: the complaints that searched again


def _display(name, short_name):
    return name if short_name in name else f"{name} ({short_name})"  # Department.display_name


def complaints_reroute(*, dry_run=False, complaint_ids=None, reason="", spatial=True, facilities=None, areas=None,
                       categories=None) -> RerouteResult:
    """Decide the open complaints again, in one set-based pass; move those whose department changed.

    What changed decides how much is searched again:
    - `facilities=[ids]` (facilities created, moved, retyped, retired or revived), `areas=[ids]`
      (created, reshaped, re-parented, retired or revived), `categories=[ids]` (rule, radius, types,
      fallback or department changed), any of them: only the complaints these can concern search again (see
      SEARCHES); the others are decided as with `spatial=False`. Owners, authorities and the routing table need no
      ids here: that is who answers, which every pass looks up anyway.
    - `spatial=False` (owners' departments, an area's authority, the routing table, a department): no search; each
      complaint keeps the facilities and the district its decision found, and only who answers for them is
      decided again, for those that may move.
    - otherwise (`spatial=True`, the default: `manage.py reroute`): every complaint searches again.

    Each moved complaint gets a new RoutingDecision and a ComplaintEvent (kind `routed`, actor `system:reroute`,
    `reason` before the explanation). One whose department stays but whose decision found other facilities or
    distances gets a new decision too, with a staff-only event (`refreshed`). Closed complaints, and complaints
    whose current decision a person made (rule `manual`: a transfer to a named department), keep theirs.
    `complaint_ids` limits the pass. A dry run changes nothing and lists the moves.
    """
    started = time.perf_counter()
    open_states = [str(s) for s in OPEN_STATES]
    changed = {name: ids for name, ids in (("facilities", facilities), ("areas", areas), ("categories", categories))
               if ids is not None}
    targeted = bool(changed)
    spatial = spatial and not targeted
    only = "AND c.id = ANY(%(ids)s)" if complaint_ids is not None else ""
    if spatial:
        decide_only, known_facilities, known_area = only, "NULL::jsonb", "NULL::bigint"
    elif targeted:
        searched_again = "c.id IN (SELECT id FROM routing_search)"
        decide_only = only + f" AND (c.id IN (SELECT id FROM routing_may_move) OR {searched_again})"
        known_facilities = f"CASE WHEN {searched_again} THEN NULL::jsonb ELSE {KNOWN_FACILITIES} END"
        known_area = f"CASE WHEN {searched_again} THEN NULL::bigint ELSE rd.area_id END"
    else:
        decide_only = only + " AND c.id IN (SELECT id FROM routing_may_move)"
        known_facilities, known_area = KNOWN_FACILITIES, "rd.area_id"
    source = REROUTE_INPUT.format(only=decide_only, known_facilities=known_facilities, known_area=known_area)
    params = {"open": open_states, "ids": [int(i) for i in complaint_ids or []], "version": ENGINE_VERSION,
              "reason": f"{reason}: " if reason else "", "refreshed": "decision refreshed: "}
    temp_tables = "routing_moves, routing_may_move, routing_search, changed_facilities, changed_areas, " \
                  "changed_categories"
    searched = None
    with transaction.atomic(), connection.cursor() as cur:
        # One big statement with many small index probes: compiling it (JIT) costs more than it could save.
        cur.execute("SET LOCAL jit = off")
        if not dry_run:
            # One re-route at a time: two would compute the same moves and the second would only find them done.
            cur.execute("SELECT pg_advisory_xact_lock(hashtext('geo_ourcity.reroute'))")
        cur.execute(f"SELECT count(*) FROM ({REROUTE_INPUT.format(only=only, known_facilities='NULL', known_area='NULL')}) i",
                    params)
        considered = cur.fetchone()[0]
        cur.execute(f"DROP TABLE IF EXISTS {temp_tables}")
        if targeted:
            for name, ids in changed.items():
                cur.execute(f"CREATE TEMP TABLE changed_{name} (id bigint PRIMARY KEY) ON COMMIT DROP")
                cur.execute(f"INSERT INTO changed_{name} SELECT DISTINCT unnest(%s::bigint[])", [[int(i) for i in ids]])
                cur.execute(f"ANALYZE changed_{name}")
            union = "\n    UNION\n".join(SEARCHES[name].format(only=only, mpd=METRES_PER_DEGREE) for name in changed)
            cur.execute(f"CREATE TEMP TABLE routing_search ON COMMIT DROP AS {union}", params)
            cur.execute("ALTER TABLE routing_search ADD PRIMARY KEY (id)")
            cur.execute("ANALYZE routing_search")
            cur.execute("SELECT count(*) FROM routing_search")
            searched = cur.fetchone()[0]
        if not spatial:
            cur.execute(MAY_MOVE_SQL.format(only=only), params)
            cur.execute("ANALYZE routing_may_move")
        cur.execute(MOVES_SQL.format(decide=decide_sql(source)), params)
        cur.execute("ALTER TABLE routing_moves ADD COLUMN decision_id bigint "
                    "DEFAULT nextval(pg_get_serial_sequence('routing_routingdecision', 'id'))")
        cur.execute("ALTER TABLE routing_moves ADD PRIMARY KEY (key)")
        cur.execute("ANALYZE routing_moves")  # a temporary table has no statistics until it is analysed
        moves = []
        if dry_run:
            cur.execute(PREVIEW_SQL)
            moves = [Move(r[0], r[1], _display(r[3], r[4]), _display(r[6], r[7]), r[8], r[9], r[10])
                     for r in cur.fetchall()]
            moved = len(moves)
            cur.execute("SELECT count(*) FROM routing_moves WHERE NOT moves")
            refreshed = cur.fetchone()[0]
        else:
            cur.execute(APPLY_SQL, params)
            moved, refreshed = cur.fetchone()
        cur.execute(f"DROP TABLE IF EXISTS {temp_tables}")
    return RerouteResult(considered=considered, moved=moved, dry_run=dry_run,
                         seconds=round(time.perf_counter() - started, 3), moves=moves, refreshed=refreshed,
                         searched=searched)
