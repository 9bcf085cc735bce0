"""The re-route's decisions: which open complaints move, and to which decision (a plan, set-based).

Routing decides, complaints write: reroute_plan() decides the complaints again in one set-based pass and leaves
the plan in a temporary table of the transaction (ReroutePlan.table); complaints.services.complaints_reroute applies
it (the complaints, their new decisions, their history). The states that count as open belong to complaints and are
passed in. Routing reads complaints' rows here (their point, category and current decision) and writes none.
"""
import os
import time
from dataclasses import dataclass, field

from django.db import connection

from .engine import decide_unworded_sql, explain_sql

# The open complaints the engine decided (a person's decision, rule `manual`, is left alone), as DECIDE_SQL input.
# A facility the resident picked stays an input of the decision. Without `spatial`, the facilities and the area
# that the current decision found are given as known (see DECIDE_SQL), and no spatial search is made.
REROUTE_INPUT = """
    SELECT c.id AS key, c.location AS g, c.category_id,
           CASE WHEN rd.rule = 'facility_picked' THEN c.facility_id END AS picked_id,
           {known_facilities} AS known_facilities, {known_area} AS known_area_id
    FROM complaints_complaint c JOIN routing_routingdecision rd ON rd.id = c.decision_id
    WHERE c.state = ANY(%(open)s) AND rd.rule <> 'manual' {only}"""
KNOWN_FACILITIES = """ARRAY(
        SELECT rd.facility_id WHERE rd.rule IN ('facility_covers', 'facility_nearest', 'facility_group')
        UNION ALL SELECT (e->>'facility_id')::bigint FROM jsonb_array_elements(rd.candidates) e)"""

# Without a spatial search, most complaints are seen to keep their department with a few hash joins: the authority
# their decision named (the facility's owner, the area's) is looked up in the routing table again. Only those that
# may move are decided again in full (by DECIDE_SQL): their department differs, their facility or area is gone, a
# facility ranked before the chosen one (its owner had no department then) might win now, or they are in triage.
# One row: how many open complaints the pass covers, and the ids of those that may move. What the decisions name is
# looked up once per thing named, not once per complaint: the facilities (a few tens of thousands of a million) by
# their ids as one array, which each partition's id index answers in one scan (a probe per complaint costs twice
# as much; a hash join would read every current facility), and the authority of each (area, level) pair.
MAY_MOVE_SQL = """
    WITH b0 AS MATERIALIZED (
        SELECT c.id, c.department_id, c.category_id, rd.rule, rd.facility_id, rd.area_id, rd.candidates,
               rd.distance_m, k.department_id AS category_department, k.area_level_id
        FROM complaints_complaint c
        JOIN routing_routingdecision rd ON rd.id = c.decision_id
        JOIN routing_category k ON k.id = c.category_id
        WHERE c.state = ANY(%(open)s) AND rd.rule <> 'manual' {only}),
    fo AS MATERIALIZED (  -- the named facilities that are current, with their owners
        SELECT f.id, f.owner_id FROM facilities_facility f
        WHERE f.id = ANY(ARRAY(SELECT DISTINCT b0.facility_id FROM b0 WHERE b0.rule LIKE 'facility%%'))
          AND f.valid_to IS NULL),
    au AS (  -- the authority over each named area at the level its category names
        SELECT p.area_id, p.area_level_id,
               (SELECT u.authority_id FROM facilities_area_and_ancestors(p.area_id) u
                WHERE u.level = p.area_level_id ORDER BY u.depth LIMIT 1) AS authority_id
        FROM (SELECT DISTINCT b0.area_id, b0.area_level_id FROM b0 WHERE b0.rule = 'area') p),
    b AS MATERIALIZED (
        SELECT b0.id, b0.department_id, b0.category_id, b0.rule, b0.category_department,
               CASE WHEN b0.rule LIKE 'facility%%' THEN f.owner_id
                    WHEN b0.rule = 'area' AND da.id IS NOT NULL THEN au.authority_id END AS authority_id,
               (b0.rule LIKE 'facility%%' AND f.id IS NULL) OR da.id IS NULL AS gone,
               EXISTS (SELECT 1 FROM jsonb_array_elements(b0.candidates) e
                       WHERE (e->>'distance_m')::float8 <= coalesce(b0.distance_m, 'infinity')) AS contested
        FROM b0
        LEFT JOIN fo f ON f.id = b0.facility_id AND b0.rule LIKE 'facility%%'
        LEFT JOIN facilities_adminarea da ON da.id = b0.area_id AND da.valid_to IS NULL
        LEFT JOIN au ON au.area_id = b0.area_id AND au.area_level_id = b0.area_level_id AND b0.rule = 'area'),
    answers AS (  -- the routing table's answer once per (authority, category) pair, not once per complaint
        SELECT p.authority_id, p.category_id,
               (SELECT r.department_id FROM routing_department_for(p.authority_id, p.category_id) r) AS department_id
        FROM (SELECT DISTINCT b.authority_id, b.category_id FROM b
              WHERE b.rule <> 'department' AND b.authority_id IS NOT NULL) p)
    SELECT count(*), coalesce(array_agg(b.id ORDER BY b.id) FILTER (
        WHERE b.rule = 'triage' OR b.gone OR b.contested
           OR CASE WHEN b.rule = 'department' THEN b.category_department ELSE a.department_id END
              IS DISTINCT FROM b.department_id), '{{}}')
    FROM b
    LEFT JOIN answers a ON a.authority_id = b.authority_id AND a.category_id = b.category_id"""

# The complaints that a pass without a full search decides again (those that may move, and those that search
# again), as DECIDE_SQL input: their ids come as an array, each with whether it searches again (else it keeps the
# facilities and the area its decision found). Arrays, not temporary tables: the transaction writes nothing before
# the decisions, so they can be split over several connections that share its snapshot (_plan_in_parallel).
DECIDE_LISTED_INPUT = """
    SELECT c.id AS key, c.location AS g, c.category_id,
           CASE WHEN rd.rule = 'facility_picked' THEN c.facility_id END AS picked_id,
           CASE WHEN u.search THEN NULL::bigint[] ELSE {known_facilities} END AS known_facilities,
           CASE WHEN u.search THEN NULL::bigint ELSE rd.area_id END AS known_area_id
    FROM unnest(%(decide)s::bigint[], %(search)s::boolean[]) u(id, search)
    JOIN complaints_complaint c ON c.id = u.id
    JOIN routing_routingdecision rd ON rd.id = c.decision_id
    WHERE c.state = ANY(%(open)s) AND rd.rule <> 'manual' {only}"""

# The complaints that must search again after a change to some facilities, areas or categories (the `changed_*`
# arrays of ids); for every other complaint the quick path (known facilities and area, MAY_MOVE_SQL) is
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
    WHERE c.state = ANY(%(open)s) AND rd.rule <> 'manual' {only} 
      AND r.id IN (SELECT unnest(%(changed_facilities)s::bigint[]))
    UNION
    SELECT c.id FROM unnest(%(changed_facilities)s::bigint[]) a(id)
    CROSS JOIN LATERAL (  -- by id in each partition's index (a hash join would read every facility)
        SELECT f.type_id, f.geom FROM facilities_facility f WHERE f.id = a.id AND f.valid_to IS NULL OFFSET 0) f
    CROSS JOIN LATERAL (  -- the categories over its type and the others of their groups (the place over the
                          -- category: routing.engine's PLACE_RULE), and the widest of their radii
        SELECT array_agg(k.id) AS ids, max(k.radius_m) AS radius_m
        FROM routing_category k
        WHERE k.rule = 'facility' AND k.group_i18n IN (
            SELECT g.group_i18n
            FROM routing_category_facility_types m JOIN routing_category g ON g.id = m.category_id
            WHERE m.facilitytype_id = f.type_id AND g.rule = 'facility')) k
    CROSS JOIN LATERAL (  -- the complaints in the degree window of that radius, from the location index only (OFFSET
                          -- 0: the category is checked afterwards; ANDing in its own index costs more than it saves)
        SELECT c.id, c.category_id, c.decision_id FROM complaints_complaint c
        WHERE c.location && ST_Expand(f.geom, facilities_degree_window(
                  k.radius_m + 1, greatest(abs(ST_YMin(f.geom)), abs(ST_YMax(f.geom)))))
          AND c.state = ANY(%(open)s) {only}
        OFFSET 0) c
    JOIN routing_routingdecision rd ON rd.id = c.decision_id
    WHERE c.category_id = ANY(k.ids) AND rd.rule <> 'manual'"""

# Areas (created, reshaped, re-parented, retired or revived): the complaints whose decision named one of them (or
# an area inside one, at any depth: retired areas count), and those its new outline covers.
SEARCH_AREAS = """
    SELECT c.id FROM complaints_complaint c
    JOIN routing_routingdecision rd ON rd.id = c.decision_id
    WHERE c.state = ANY(%(open)s) AND rd.rule <> 'manual' {only}
      AND EXISTS (WITH RECURSIVE up (id, parent_id, depth) AS (
                      SELECT a.id, a.parent_id, 0 FROM facilities_adminarea a WHERE a.id = rd.area_id
                      UNION ALL
                      SELECT a.id, a.parent_id, up.depth + 1 FROM up JOIN facilities_adminarea a ON a.id = up.parent_id
                      WHERE up.depth < 32)
                  SELECT 1 FROM up WHERE up.id = ANY(%(changed_areas)s::bigint[]))
    UNION
    SELECT c.id FROM unnest(%(changed_areas)s::bigint[]) x(id)
    JOIN facilities_adminareapiece p ON p.area_id = x.id
    JOIN complaints_complaint c ON c.location && p.geom AND ST_Covers(p.geom, c.location)
    JOIN routing_routingdecision rd ON rd.id = c.decision_id
    WHERE c.state = ANY(%(open)s) AND rd.rule <> 'manual' {only}"""

# Categories (their rule, radius, facility types, fallback or department changed): all their complaints, and
# those of the categories of their groups (the group's facility types decide too: routing.engine's PLACE_RULE), and
# every complaint a facility of a group decided (the category may have left that group).
SEARCH_CATEGORIES = """
    SELECT c.id FROM complaints_complaint c
    JOIN routing_routingdecision rd ON rd.id = c.decision_id
    WHERE c.state = ANY(%(open)s) AND rd.rule <> 'manual' {only}
      AND (c.category_id = ANY(%(changed_categories)s::bigint[])
           OR c.category_id IN (SELECT k.id FROM routing_category k JOIN routing_category x
                                ON x.group_i18n = k.group_i18n
                                WHERE x.id = ANY(%(changed_categories)s::bigint[]))
           OR rd.rule = 'facility_group')"""

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
# it (three times the cost). Only the decisions that differ are worded (routing.engine.EXPLAIN_SQL): the names an
# explanation quotes are not part of what a decision found, so a decision that found the same needs none. (Their
# new decisions' ids are drawn afterwards: nextval() in this statement would keep it from running in parallel.)
MOVES_SELECT = """
    WITH d AS MATERIALIZED ({decide}),
    m AS (
    SELECT d.*, c.department_id AS from_department_id, c.decision_id AS from_decision_id,
           CASE WHEN rd.rule = 'facility_picked' AND d.rule <> 'facility_picked' THEN c.facility_id END
               AS kept_facility_id,
           d.department_id IS DISTINCT FROM c.department_id AS moves
    FROM d JOIN complaints_complaint c ON c.id = d.key JOIN routing_routingdecision rd ON rd.id = c.decision_id
    WHERE d.department_id IS DISTINCT FROM c.department_id OR """ + FOUND.format(t="d") + """
          IS DISTINCT FROM """ + FOUND.format(t="rd") + """)
    """ + explain_sql("SELECT * FROM m", extra=("from_department_id", "from_decision_id", "kept_facility_id",
                                                 "moves")).replace("{", "{{").replace("}", "}}")
MOVES_SQL = "CREATE TEMP TABLE routing_moves ON COMMIT DROP AS " + MOVES_SELECT

PLAN_TABLE = "routing_moves"
# For the pass's statements, in its transaction. One big statement with many small index probes: compiling it (JIT)
# costs more than it could save. And each point's degree window holds a few facilities, but the planner can't know
# the window (it depends on the row's category): it guesses a hundred and builds a bitmap per point, three times
# the cost of walking the GiST index (bench/routing_bench.py).
PLAN_SETTINGS = "SET LOCAL jit = off; SET LOCAL enable_bitmapscan = off"
PLAN_SETTINGS_RESET = "RESET jit; RESET enable_bitmapscan"
TEMP_TABLES = "routing_moves"
# A pass is split into this many parts of its complaints, each decided on a connection of its own (one per core):
# see _plan_in_parallel.
PARALLEL_RANGES = max(2, min(os.cpu_count() or 1, 8))
# Below this many complaints to decide, one connection is quicker than opening others (and planning the statement
# on each): the full re-decision, and the complaints a pass without a full search decides again.
PARALLEL_MIN = 5_000
PARALLEL_MIN_LISTED = 2_000
# A targeted pass runs its search on a second connection beside the may-move pass when the complaints table holds
# at least this many rows (the planner's estimate, pg_class.reltuples; -1, never counted, as 0): below it, both are
# quicker than opening the connection.
SEARCH_BESIDE_MIN = 20_000


@dataclass
class ReroutePlan:
    """The re-route's decisions, left in the temporary table `table` of the current transaction (dropped at its
    end): one row per complaint whose new decision differs from its current one. Columns: key (the complaint),
    decision_id (drawn for the new decision), the new decision's columns (rule, department_id, authority_id,
    facility_id, area_id, distance_m, candidates, explanation_ru, explanation_en), from_department_id and
    from_decision_id (what the complaint had when it was decided: apply only if it still has them),
    kept_facility_id (a picked facility that no longer decides but stays the complaint's), moves (its department
    changes; else a refresh: another facility or distance, the same department)."""

    table: str
    considered: int  # open complaints that the pass covers
    moves: int  # planned moves (department changes)
    refreshes: int  # planned refreshes
    searched: int | None = None  # with changed facilities, areas or categories: the complaints that searched again
    connections: int = 1  # how many connections decided at once (one per part)
    decided: int | None = None  # without a full search: the complaints decided again in full (may move or searched)
    stages: dict = field(default_factory=dict)  # seconds per stage: search, may_move, decide, plan


def _id_array(ids):
    """A bigint[] parameter as one array literal: parsed once (a list would be an ARRAY[...] of n constants), and a
    constant, so that `= ANY` of it is hashed."""
    return "{" + ",".join(str(int(i)) for i in ids) + "}"


def reroute_plan(*, open_states, complaint_ids=None, spatial=True, facilities=None, areas=None,
                 categories=None) -> ReroutePlan:
    """Decide the open complaints again in one set-based pass and leave the plan in a temporary table.

    Must run inside a transaction (the plan lives as long as it). `open_states`: the complaint states that count
    as open (complaints' to say). What changed decides how much is searched again:
    - `facilities=[ids]` (facilities created, moved, retyped, retired or revived), `areas=[ids]`
      (created, reshaped, re-parented, retired or revived), `categories=[ids]` (rule, radius, types,
      fallback or department changed), any of them: only the complaints these can concern search again (see
      SEARCHES); the others are decided as with `spatial=False`. Owners, authorities and the routing table need no
      ids here: that is who answers, which every pass looks up anyway.
    - `spatial=False` (owners' departments, an area's authority, the routing table, a department): no search; each
      complaint keeps the facilities and the area its decision found, and only who answers for them is
      decided again, for those that may move.
    - otherwise (`spatial=True`, the default: `manage.py reroute`): every complaint searches again.
    When the transaction has written nothing yet, the complaints to decide are split over several connections
    at once that share its snapshot (the full pass: ranges of ids; the others: the list of those to decide).
    Closed complaints, and complaints whose current decision a person made (rule `manual`), are not planned.
    `complaint_ids` limits the pass.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("reroute_plan() needs a transaction: its plan is a temporary table of it")
    changed = {name: ids for name, ids in (("facilities", facilities), ("areas", areas), ("categories", categories))
               if ids is not None}
    targeted = bool(changed)
    spatial = spatial and not targeted
    only = "AND c.id = ANY(%(ids)s::bigint[])" if complaint_ids is not None else ""
    params = {"open": [str(s) for s in open_states], "ids": _id_array(complaint_ids or [])}
    params.update({f"changed_{name}": _id_array(sorted({int(i) for i in ids})) for name, ids in changed.items()})
    searched = decided = None
    stages = {}
    clock = time.perf_counter()

    def stage(name):
        nonlocal clock
        now = time.perf_counter()
        stages[name] = round(now - clock, 3)
        clock = now

    with connection.cursor() as cur:
        cur.execute(PLAN_SETTINGS)
        # Nothing written yet in this transaction: other connections can share its snapshot and see what it sees.
        cur.execute("SELECT pg_current_xact_id_if_assigned() IS NULL")
        clean = cur.fetchone()[0]
        if spatial:
            source = REROUTE_INPUT.format(only=only, known_facilities="NULL::bigint[]", known_area="NULL::bigint")
            cur.execute(f"SELECT count(*) FROM ({source}) i", params)
            considered = cur.fetchone()[0]
            parts = None
            if clean and considered >= PARALLEL_MIN:
                # ranges of equal size by id
                cur.execute(f"SELECT percentile_disc(%(q)s::float8[]) WITHIN GROUP (ORDER BY i.key) FROM ({source}) i",
                            {**params, "q": [k / PARALLEL_RANGES for k in range(1, PARALLEL_RANGES)]})
                edges = [None, *(cur.fetchone()[0] or []), None]
                parts = []
                for lo, hi in zip(edges, edges[1:]):
                    where = (" AND r.key > %(lo)s" if lo is not None else "") + \
                        (" AND r.key <= %(hi)s" if hi is not None else "")
                    parts.append((f"SELECT * FROM ({source}) r WHERE true{where}", {**params, "lo": lo, "hi": hi}))
            single = (source, params)
        else:
            search_ids = []
            side = None
            if targeted:
                union = "\n    UNION\n".join(SEARCHES[name].format(only=only) for name in changed)
                search = (f"SELECT coalesce(array_agg(s.id ORDER BY s.id), '{{}}') FROM ({union}) s", params)
                beside = clean
                if beside:
                    cur.execute("SELECT greatest(reltuples, 0) FROM pg_class "
                                "WHERE oid = 'complaints_complaint'::regclass")
                    beside = cur.fetchone()[0] >= SEARCH_BESIDE_MIN
                if beside:
                    # The search and the may-move pass need nothing of each other: the search runs on a second
                    # connection that shares this transaction's snapshot while this one runs the may-move pass
                    # (each is one backend's work: on two cores, the two take the time of the longer one).
                    cur.execute("SELECT pg_export_snapshot()")
                    side = _SnapshotQuery(cur.fetchone()[0], *search)
                else:
                    cur.execute(*search)
                    search_ids = cur.fetchone()[0]
                    stage("search")
            try:
                cur.execute(MAY_MOVE_SQL.format(only=only), params)
                considered, may_move = cur.fetchone()
            except Exception:
                if side is not None:
                    side.wait()
                raise
            stage("may_move")
            if side is not None:
                (search_ids,), stages["search"] = side.result()
                stages["search_wait"] = round(time.perf_counter() - clock, 3)  # beyond the may-move pass
                clock = time.perf_counter()
            if targeted:
                searched = len(search_ids)
            searching = set(search_ids)
            listed = sorted(searching.union(may_move))
            decided = len(listed)
            source = DECIDE_LISTED_INPUT.format(
                only=only, known_facilities=KNOWN_FACILITIES)

            def listed_params(ids):
                return {**params, "decide": _id_array(ids),
                        "search": "{" + ",".join("t" if i in searching else "f" for i in ids) + "}"}

            parts = None
            if clean and decided >= PARALLEL_MIN_LISTED:
                # interleaved, so that each part gets as many of those that search again (the dearer ones)
                parts = [(source, listed_params(listed[n::PARALLEL_RANGES])) for n in range(PARALLEL_RANGES)]
            single = (source, listed_params(listed))
        connections = 1
        if parts:
            cur.execute("SELECT pg_export_snapshot()")
            snapshot = cur.fetchone()[0]
            results = _plan_in_parallel(snapshot, parts)
            cur.execute(f"DROP TABLE IF EXISTS {TEMP_TABLES}")
            cur.execute(MOVES_SQL.format(decide=decide_unworded_sql(single[0])) + " WITH NO DATA", single[1])
            for rows in results:
                cur.execute(f"INSERT INTO {PLAN_TABLE} SELECT * FROM jsonb_populate_recordset(NULL::{PLAN_TABLE}, "
                            "%s::jsonb)", [rows])
            connections = len(parts)
        else:
            cur.execute(f"DROP TABLE IF EXISTS {TEMP_TABLES}")
            cur.execute(MOVES_SQL.format(decide=decide_unworded_sql(single[0])), single[1])
        stage("decide")
        # The new decisions' ids are drawn here: nextval() in the statement above would keep it from parallel plans.
        cur.execute(f"ALTER TABLE {PLAN_TABLE} ADD COLUMN decision_id bigint "
                    "DEFAULT nextval(pg_get_serial_sequence('routing_routingdecision', 'id'))")
        cur.execute(f"ALTER TABLE {PLAN_TABLE} ADD PRIMARY KEY (key)")
        cur.execute(f"ANALYZE {PLAN_TABLE}")  # a temporary table has no statistics until it is analysed
        # With the settings put back: the caller's statements that follow are planned as usual.
        cur.execute(f"{PLAN_SETTINGS_RESET}; "
                    f"SELECT count(*) FILTER (WHERE moves), count(*) FILTER (WHERE NOT moves) FROM {PLAN_TABLE}")
        moves, refreshes = cur.fetchone()
        stage("plan")
    return ReroutePlan(table=PLAN_TABLE, considered=considered, moves=moves, refreshes=refreshes, searched=searched,
                       connections=connections, decided=decided, stages=stages)


def reroute_plan_drop():
    """Drop the plan's temporary tables before the transaction ends (they go at its end anyway)."""
    with connection.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {TEMP_TABLES}")


# One part of a pass, on a connection of its own: the same statement, its rows as one jsonb array.
RANGE_SQL = "SELECT coalesce(jsonb_agg(to_jsonb(m)), '[]')::text FROM (" + MOVES_SELECT + ") m"


def _snapshot_fetchone(snapshot, conn_params, sql, params, settings=PLAN_SETTINGS):
    """Run one read-only statement on a new connection, in a REPEATABLE READ transaction that imports `snapshot` (an
    exported snapshot of the caller's transaction, which must stay open meanwhile): it sees the very same data as
    the caller. Returns its first row."""
    raw = connection.get_new_connection(conn_params)
    raw.autocommit = True  # the transaction below is ours, begun explicitly
    try:
        with raw.cursor() as cur:
            cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            cur.execute("SET TRANSACTION SNAPSHOT %s", [snapshot])
            cur.execute(settings)
            cur.execute(sql, params)
            row = cur.fetchone()
            cur.execute("COMMIT")
            return row
    finally:
        raw.close()


class _SnapshotQuery:
    """One statement on a connection of its own that shares the caller's snapshot (_snapshot_fetchone), run in a
    thread from now on while the caller goes on; result() waits for it: (its first row, seconds), or raises what it
    raised."""

    def __init__(self, snapshot, sql, params):
        import threading

        self._row = self._error = None
        self._seconds = 0.0
        conn_params = connection.get_connection_params()

        def run():
            started = time.perf_counter()
            try:
                self._row = _snapshot_fetchone(snapshot, conn_params, sql, params)
            except Exception as exc:  # noqa: BLE001 - re-raised in the caller's thread by result()
                self._error = exc
            self._seconds = round(time.perf_counter() - started, 3)

        self._thread = threading.Thread(target=run, name="reroute-side")
        self._thread.start()

    def wait(self):
        self._thread.join()

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._row, self._seconds


def _plan_in_parallel(snapshot, parts):
    """Decide the parts of a pass ((DECIDE_SQL input, its params) each) over as many connections at once
    (PostgreSQL runs one statement in one process; its own parallel query does not run this LATERAL-per-row
    statement in workers): each part is decided on a connection of its own in a REPEATABLE READ transaction that
    imports the caller's snapshot (so every part sees the very same data as the caller), and the rows come back as
    jsonb for the caller's plan table. Read-only: nothing is written on these connections."""
    import threading

    results, errors = [None] * len(parts), []
    conn_params = connection.get_connection_params()

    def run(n):
        try:
            source, params = parts[n]
            results[n] = _snapshot_fetchone(snapshot, conn_params, RANGE_SQL.format(decide=decide_unworded_sql(source)),
                                            params)[0]
        except Exception as exc:  # noqa: BLE001 - re-raised in the caller's thread below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,), name=f"reroute-part-{n}") for n in range(len(parts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results
