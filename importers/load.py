"""The database side of an import: COPY into a staging table, then set-based SQL. No per-row ORM saves.

Facilities, which can be millions of rows, are never updated in place: a commit that changes anything builds a
new generation of the dataset's partition (ids of known source keys kept, missing ones retired) in a table of its
own that no reader touches, indexes it, and only then switches it in (switch_generation). Readers see the old
generation until the commit and the new one after it; a failed or killed run leaves the old one as it was.

Locks: nothing that a reader of facilities_facility would wait for is taken while the import reads, validates,
copies, finds owners, compares or indexes. The one lock that stops readers, the ACCESS EXCLUSIVE lock of DETACH
PARTITION (when a dataset's old generation is replaced), is taken in the switch, the last step before COMMIT,
under a short lock_timeout and retried: a switch that would have to queue behind a long reader gives way (and
lets the readers queued behind it through) instead of stalling every reader behind itself.
"""
import io
import json
import logging
import random
import time

import pyarrow.csv as pacsv
from django.db import OperationalError, transaction

from facilities.models import subdivide_areas

from .errors import ImportFailure

log = logging.getLogger(__name__)

COPY_CHUNK = 200_000


def copy_rows(cur, table, rows, columns, progress=None):
    """Stream an Arrow table's columns into a table through COPY (CSV), in chunks."""
    n = rows.num_rows
    for start in range(0, n, COPY_CHUNK):
        chunk = rows.select(columns).slice(start, COPY_CHUNK)
        buf = io.BytesIO()
        pacsv.write_csv(chunk, buf, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
        buf.seek(0)
        cur.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)", buf)
        if progress:
            progress.advance(chunk.num_rows)


def new_stage(cur):
    # ON COMMIT DROP covers the normal case; when the import runs inside an outer transaction (tests, a caller's
    # atomic block) an earlier run's stage may still exist in this session.
    cur.execute("DROP TABLE IF EXISTS import_stage")


def stage_rejected_keys(cur, keys):
    """Keys of rejected rows: in a full import they are not "missing from the file", so they are not retired."""
    cur.execute("DROP TABLE IF EXISTS import_keep")
    cur.execute("CREATE TEMP TABLE import_keep (source_key text PRIMARY KEY) ON COMMIT DROP")
    keys = sorted({k for k in keys if k})
    if keys:
        buf = io.StringIO("".join(k.replace("\\", "\\\\").replace("\n", " ").replace("\t", " ") + "\n" for k in keys))
        cur.copy_expert("COPY import_keep (source_key) FROM STDIN", buf)


KEEP = "AND NOT EXISTS (SELECT 1 FROM import_keep k WHERE k.source_key = {alias}.source_key)"


def fetch_rejects(cur, sql, params, reason):
    cur.execute(sql, params)
    return [(row_no, key, reason) for row_no, key in cur.fetchall()]


# --------------------------------------------------------------------------------------------------------------
# facilities

def resolve_owners_by_area(cur, level):
    """Owner = the authority with jurisdiction over the covering area of the level, for the rows that the spec's
    earlier owner rules left without one; rows with none are rejects."""
    cur.execute("""
        UPDATE import_stage s SET owner_id = (
            SELECT a.authority_id FROM facilities_adminareapiece p
            JOIN facilities_adminarea a ON a.id = p.area_id
            WHERE a.level = %s AND a.valid_to IS NULL AND a.authority_id IS NOT NULL
              AND ST_Covers(p.geom, ST_PointOnSurface(s.geom))
            LIMIT 1) WHERE s.owner_id IS NULL""", [level])
    return fetch_rejects(cur, """WITH gone AS (DELETE FROM import_stage WHERE owner_id IS NULL
                                              RETURNING row_no, source_key),
                                    kept AS (INSERT INTO import_keep SELECT DISTINCT source_key FROM gone
                                             ON CONFLICT DO NOTHING)
                                 SELECT row_no, source_key FROM gone""", [],
                         f"no {level} with a jurisdiction authority covers it")


FACILITY_VALUES = ("type_id", "owner_id", "name", "address", "attrs", "geom")


def classify_facilities(cur, partition, full, staged_rows):
    """One classification of the staged facilities against the dataset's generation `partition` ("" for a dataset
    new to the registry), in one hash join: import_marks holds each created, updated or retired source key
    (a staged key not in it is unchanged; `staged_rows`: how many the stage holds). Returns the counts of those
    marks."""
    cur.execute("ANALYZE import_stage")
    cur.execute("DROP TABLE IF EXISTS import_marks")
    if not partition:
        cur.execute("CREATE TEMP TABLE import_marks ON COMMIT DROP AS "
                    "SELECT source_key, 'created'::text AS state FROM import_stage")
    else:
        staged = ", ".join(f"s.{c}" for c in FACILITY_VALUES)
        stored = ", ".join(f"f.{c}" for c in FACILITY_VALUES)
        cur.execute(f"""
            CREATE TEMP TABLE import_marks ON COMMIT DROP AS
            SELECT coalesce(s.source_key, f.source_key) AS source_key,
                   CASE WHEN f.id IS NULL THEN 'created' WHEN s.source_key IS NULL THEN 'retired' ELSE 'updated' END
                   AS state
            FROM import_stage s FULL JOIN {partition} f ON f.source_key = s.source_key
            LEFT JOIN import_keep k ON k.source_key = f.source_key AND s.source_key IS NULL
            WHERE f.id IS NULL
               OR (s.source_key IS NOT NULL AND (f.valid_to IS NOT NULL OR ROW({staged}) IS DISTINCT FROM ROW({stored})))
               OR ({"true" if full else "false"} AND s.source_key IS NULL AND f.valid_to IS NULL
                   AND k.source_key IS NULL)""")
    cur.execute("""SELECT count(*) FILTER (WHERE state = 'created'), count(*) FILTER (WHERE state = 'updated'),
                          count(*) FILTER (WHERE state = 'retired') FROM import_marks""")
    created, updated, retired = cur.fetchone()
    return {"created": created, "updated": updated, "unchanged": staged_rows - created - updated, "retired": retired}


def swap_facilities(cur, dataset_id, partition, new_name, full, progress=None):
    """Apply the marks (classify_facilities): build the dataset's next generation from the stage (rows marked
    created or updated) and the current generation `partition` (every other row; those marked retired get
    valid_to), and switch it in. `full` is in the marks already.

    Returns the ids of the facilities that the re-route must search around (see moved_facilities)."""
    ds = int(dataset_id)
    step = progress.step if progress else (lambda name: None)
    step("building the new generation")
    create_generation(cur, ds, new_name)
    columns = "id, dataset_id, source_key, type_id, owner_id, name, address, attrs, geom, valid_from, valid_to"
    if not partition:
        cur.execute(f"""
            INSERT INTO {new_name} ({columns})
            SELECT nextval('facilities_facility_id_seq'), {ds}, s.source_key, s.type_id, s.owner_id, s.name,
                   s.address, s.attrs, s.geom, now(), NULL
            FROM import_stage s JOIN import_marks m ON m.source_key = s.source_key AND m.state = 'created'""")
    else:
        written = "m.state IN ('created', 'updated')"
        values = ", ".join(f"CASE WHEN {written} THEN s.{c} ELSE f.{c} END" for c in FACILITY_VALUES)
        cur.execute(f"""
            INSERT INTO {new_name} ({columns})
            SELECT coalesce(f.id, nextval('facilities_facility_id_seq')), {ds}, coalesce(s.source_key, f.source_key),
                   {values},
                   CASE WHEN m.state = 'created' OR (m.state = 'updated' AND f.valid_to IS NOT NULL) THEN now()
                        ELSE f.valid_from END,
                   CASE WHEN m.state = 'retired' THEN now() WHEN {written} THEN NULL ELSE f.valid_to END
            FROM import_stage s FULL JOIN {partition} f ON f.source_key = s.source_key
            LEFT JOIN import_marks m ON m.source_key = coalesce(s.source_key, f.source_key)""")
    moved = moved_facilities(cur, new_name, partition)
    index_and_switch(cur, ds, partition, new_name, progress)
    return moved


# Up to this many moved facilities, the re-route after an import searches around them only; beyond, it decides
# every open complaint again (one probe per complaint costs less than one per facility then).
MOVED_CAP = 100_000


def moved_facilities(cur, new_name, partition=None):
    """The facilities of generation `new_name` that are new, or whose geometry, type or validity differ from the
    old generation `partition`: where the answer to "which facility is this complaint about?" may have changed.
    An owner's change is not a move (re-routing looks up who answers for the facilities it found anyway). None
    when there are more than MOVED_CAP."""
    if partition:
        cur.execute(f"""
            SELECT n.id FROM {new_name} n LEFT JOIN {partition} f ON f.id = n.id
            WHERE f.id IS NULL OR n.type_id IS DISTINCT FROM f.type_id OR (n.valid_to IS NULL) <> (f.valid_to IS NULL)
               OR (n.valid_to IS NULL AND n.geom IS DISTINCT FROM f.geom)
            LIMIT {MOVED_CAP + 1}""")
    else:
        cur.execute(f"SELECT id FROM {new_name} LIMIT {MOVED_CAP + 1}")
    ids = [r[0] for r in cur.fetchall()]
    return ids if len(ids) <= MOVED_CAP else None


def create_generation(cur, dataset_id, new_name):
    """An empty table shaped like facilities_facility, to become the dataset's partition."""
    ds = int(dataset_id)
    cur.execute(f"CREATE TABLE {new_name} (LIKE facilities_facility INCLUDING DEFAULTS)")
    cur.execute(f"ALTER TABLE {new_name} ADD CONSTRAINT {new_name}_ds CHECK (dataset_id = {ds})")
    cur.execute(f"ALTER TABLE {new_name} ALTER COLUMN dataset_id SET DEFAULT {ds}")


def index_and_switch(cur, dataset_id, partition, new_name, progress=None, analyze=True):
    """Index a filled generation (index_generation), then swap it in for `partition` (switch_generation)."""
    index_generation(cur, dataset_id, new_name, progress, analyze=analyze)
    switch_generation(cur, dataset_id, partition, new_name, progress)


def attach_empty_generation(cur, dataset_id, new_name, progress=None):
    """A dataset new to the registry whose run stored nothing still gets its (empty) partition, the same way."""
    create_generation(cur, dataset_id, new_name)
    index_and_switch(cur, dataset_id, "", new_name, progress, analyze=False)


def index_generation(cur, dataset_id, new_name, progress=None, analyze=True):
    """Give a filled generation the parent's partitioned indexes (ATTACH adopts equal ones instead of building
    them). Only the new table, which no reader knows of yet, is locked.

    The parent's foreign keys are not added here: ATTACH would adopt them, and adopting a foreign key drops its
    triggers on the referenced tables (authorities, types, datasets) under ACCESS EXCLUSIVE locks held to COMMIT,
    which every routing query and the import log would wait for. ATTACH clones and checks them itself (a scan of
    the new generation), holding no more than SHARE ROW EXCLUSIVE on those tables (writers wait, readers do not).
    When an old generation is replaced that check runs inside DETACH's lock: readers of facilities wait for it."""
    step = progress.step if progress else (lambda name: None)
    step("indexing the new generation")
    # A constraint, not just a unique index: the parent's uniqueness is the constraint facility_source_unique,
    # and ATTACH adopts only a matching constraint (with a bare index it would build a second one).
    cur.execute(f"ALTER TABLE {new_name} ADD CONSTRAINT {new_name}_key UNIQUE (dataset_id, source_key)")
    cur.execute(f"CREATE INDEX {new_name}_geom ON {new_name} USING gist (geom)")
    cur.execute(f"CREATE INDEX {new_name}_id ON {new_name} (id)")
    # The place search's index is not built here but just after the commit (facilities.search
    # generation_make_searchable, migration 0016): it was half a 1M import's time inside the transaction.
    if analyze:  # a generation filled by one COPY is left to autovacuum, which analyzes it soon after COMMIT
        cur.execute(f"ANALYZE {new_name}")


# The switch waits at most this long for a lock before it gives way; then it tries again after a short pause,
# for at most SWITCH_PATIENCE_S in all. A reader that queues behind a waiting switch waits at most this long.
SWITCH_LOCK_TIMEOUT_MS = 100
SWITCH_PATIENCE_S = 120.0
LOCK_NOT_AVAILABLE = "55P03"


def switch_generation(cur, dataset_id, partition, new_name, progress=None):
    """Swap generation `new_name` in for `partition` ("" for a dataset that has none): catalogue changes only.

    Each try is a savepoint with a short lock_timeout: a try that can not have its locks at once is rolled back
    (releasing what it took), and the next one comes after a pause. ATTACH alone (a new dataset) takes SHARE
    UPDATE EXCLUSIVE on facilities_facility, which blocks no reader or writer; DETACH of the old generation takes
    ACCESS EXCLUSIVE, which readers then wait for until COMMIT: the rest of the switch (ATTACH, which checks the
    new rows against the tables the foreign keys reference, one scan; 0.7 s for 300,000 rows on a loaded 2-core
    machine) and the run record.
    """
    ds = int(dataset_id)
    step = progress.step if progress else (lambda name: None)
    step("switching generations")
    deadline, tries = time.monotonic() + SWITCH_PATIENCE_S, 0
    while True:
        tries += 1
        try:
            with transaction.atomic():  # a savepoint
                cur.execute(f"SET LOCAL lock_timeout = '{int(SWITCH_LOCK_TIMEOUT_MS)}ms'")
                _switch(cur, ds, partition, new_name)
            break
        except OperationalError as exc:
            if getattr(exc.__cause__, "pgcode", None) != LOCK_NOT_AVAILABLE:
                raise
            if time.monotonic() > deadline:
                raise ImportFailure(
                    f"could not switch the new generation of the dataset's facilities in: other sessions held "
                    f"the facilities table for {SWITCH_PATIENCE_S:g} s ({tries} tries); nothing was changed, "
                    "try again") from None
            # Back off a little more each time (with jitter), so the readers queued behind the try get through.
            time.sleep(min(0.02 * 2 ** min(tries, 6), 1.0) * (0.5 + random.random()))
    cur.execute("SET LOCAL lock_timeout = DEFAULT")  # a released savepoint's SET LOCAL lasts to COMMIT otherwise
    return tries


def _switch(cur, ds, partition, new_name):
    # The old generation is detached and renamed, not dropped: dropping a table with foreign keys takes an
    # exclusive lock on the tables it references (authorities, types, datasets), which would stall every reader
    # until COMMIT. It is kept (as the previous Generation) or dropped after the commit, by tidy_generations().
    if partition:  # a new dataset has none yet
        cur.execute(f"ALTER TABLE facilities_facility DETACH PARTITION {partition}")
        cur.execute(f"ALTER TABLE {partition} RENAME TO {RETIRED_PREFIX}{new_name.removeprefix('facilities_facility_')}")
    cur.execute(f"ALTER TABLE facilities_facility ATTACH PARTITION {new_name} FOR VALUES IN ({ds})")
    cur.execute(f"ALTER TABLE {new_name} DROP CONSTRAINT {new_name}_ds")
    cur.execute(f"ALTER TABLE {new_name} ALTER COLUMN dataset_id DROP DEFAULT")
    cur.execute("UPDATE facilities_dataset SET partition_table = %s WHERE id = %s", [new_name, ds])


RETIRED_PREFIX = "facilities_facility_old_"


def record_generation(cur, dataset_id, new_name, *, run_id, actor, counts, rows=None):
    """The generation just switched in (switch_generation) becomes the dataset's active Generation row; the one
    it replaced is kept as `previous` (its table detached under RETIRED_PREFIX, for a rollback); the one kept
    before that is dropped (its table goes after COMMIT, in tidy_generations)."""
    ds = int(dataset_id)
    retired_name = RETIRED_PREFIX + new_name.removeprefix("facilities_facility_")
    cur.execute("""UPDATE facilities_generation SET state = 'dropped', ended_at = now()
                   WHERE dataset_id = %s AND state = 'previous'""", [ds])
    cur.execute("""UPDATE facilities_generation SET state = 'previous', table_name = %s, ended_at = now()
                   WHERE dataset_id = %s AND state = 'active'""", [retired_name, ds])
    if rows is None:
        cur.execute(f"SELECT count(*), count(*) FILTER (WHERE valid_to IS NULL) FROM {new_name}")
        rows, active = cur.fetchone()
    else:  # a generation of new rows only (the caller knows how many: no scan of a million)
        active = rows
    cur.execute("""INSERT INTO facilities_generation (dataset_id, created_at, state, table_name, counts, run_id, actor,
                                                     searchable)
                   VALUES (%s, now(), 'active', %s, %s, %s, %s, false)""",
                [ds, new_name, json.dumps({**counts, "rows": rows, "active": active}), run_id, actor or ""])


def tidy_generations(connection, tries=8):
    """After COMMIT: drop the detached generations that no Generation row keeps as `previous` (also mops up
    after a crash), and take the foreign keys off the kept ones, each in a short transaction of its own.

    A kept generation keeps no foreign keys: they would make the tables they reference (authorities, types,
    datasets) impossible to truncate or drop, and a rollback's ATTACH adds them again (and checks them).
    DROP TABLE, or dropping a foreign key, takes ACCESS EXCLUSIVE locks on the referenced tables, which every
    routing query reads: so each try waits at most SWITCH_LOCK_TIMEOUT_MS and gives way, and only after `tries`
    (about 5 s) does a last one wait longer (the next commit tries again anyway)."""
    with connection.cursor() as cur:
        cur.execute("""SELECT t.tablename, g.id IS NOT NULL FROM pg_tables t
                       LEFT JOIN facilities_generation g ON g.table_name = t.tablename AND g.state = 'previous'
                       WHERE t.schemaname = current_schema() AND t.tablename LIKE %s""",
                    [RETIRED_PREFIX.replace("_", r"\_") + "%"])
        tables = cur.fetchall()
        work = []
        for name, kept in tables:
            if not kept:
                work.append(f'DROP TABLE IF EXISTS "{name}"')
                continue
            cur.execute("SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'", [name])
            work += [f'ALTER TABLE "{name}" DROP CONSTRAINT "{con}"' for (con,) in cur.fetchall()]
    for statement in work:
        for attempt in range(tries + 1):
            timeout = SWITCH_LOCK_TIMEOUT_MS if attempt < tries else 10 * 1000
            try:
                with transaction.atomic(using=connection.alias), connection.cursor() as cur:
                    cur.execute(f"SET LOCAL lock_timeout = '{int(timeout)}ms'")
                    cur.execute(statement)
                break
            except OperationalError as exc:
                if getattr(exc.__cause__, "pgcode", None) != LOCK_NOT_AVAILABLE:
                    raise
                if attempt == tries:  # the data is committed: the next commit tries again
                    log.warning("could not %s (its tables stayed locked)", statement)
                    break
                time.sleep(min(0.05 * 2 ** attempt, 1.0) * (0.5 + random.random()))




# --------------------------------------------------------------------------------------------------------------
# the small targets: one classification, then an apply step that uses it
#
# classify_<target>() marks each staged row created, updated or unchanged (the stage's `state` column) and puts the
# registry rows a full import retires in import_retire; the counts are counted from those marks (count_marks), and
# apply_<target>() writes exactly the rows marked: the dry run stops after the marks, the commit applies them.

def new_marks(cur):
    cur.execute("DROP TABLE IF EXISTS import_retire")
    cur.execute("CREATE TEMP TABLE import_retire (id bigint PRIMARY KEY) ON COMMIT DROP")


def count_marks(cur, table="import_stage"):
    cur.execute(f"""SELECT count(*) FILTER (WHERE state = 'created'), count(*) FILTER (WHERE state = 'updated'),
                           count(*) FILTER (WHERE state = 'unchanged') FROM {table}""")
    created, updated, unchanged = cur.fetchone()
    cur.execute("SELECT count(*) FROM import_retire")
    return {"created": created, "updated": updated, "unchanged": unchanged, "retired": cur.fetchone()[0]}


def _mark(cur, stage, key, select, params=()):
    """Set stage.state from `select`, which yields (key, state) for every staged row."""
    cur.execute(f"UPDATE {stage} t SET state = x.state FROM ({select}) x WHERE x.{key} = t.{key}", list(params))


def _retire(cur, select, params=()):
    cur.execute(f"INSERT INTO import_retire (id) {select} ON CONFLICT DO NOTHING", list(params))


# --------------------------------------------------------------------------------------------------------------
# authorities

AUTHORITY_COLUMNS = ["row_no", "source_key", "code", "name", "short_name", "kind", "inn", "ogrn", "parent_code",
                     "department", "triage", "moderate_answers"]


def stage_authorities(cur, prepared, progress=None):
    new_stage(cur)
    cur.execute("""CREATE TEMP TABLE import_stage (row_no integer, source_key text, code text, name text,
                   short_name text, kind text, inn text, ogrn text, parent_code text, department text,
                   triage boolean, moderate_answers boolean, state text) ON COMMIT DROP""")
    copy_rows(cur, "import_stage", prepared.rows, AUTHORITY_COLUMNS, progress)
    for col in AUTHORITY_COLUMNS[1:-2]:
        cur.execute(f"UPDATE import_stage SET {col} = '' WHERE {col} IS NULL")
    cur.execute("ANALYZE import_stage")


def authority_differs(a, p, d, s, *, kind, dataset, source_key, with_parent, with_department, department_name,
                      with_moderation=False):
    """SQL: authority `a` (its parent `p`, its main department `d`) differs from the row `s` would write."""
    parent = f"OR coalesce({p}.code, '') <> {s}.parent_code" if with_parent else ""
    name = f"OR {d}.name <> {department_name}" if with_department else ""
    moderation = f"OR {a}.moderate_answers IS DISTINCT FROM {s}.moderate_answers" if with_moderation else ""
    return f"""({a}.valid_to IS NOT NULL
        OR ROW({a}.name, {a}.short_name, {a}.kind, {a}.inn, {a}.ogrn, {a}.dataset_id, {a}.source_key)
           IS DISTINCT FROM ROW({s}.name, {s}.short_name, {kind}, {s}.inn, {s}.ogrn, {dataset}::bigint, {source_key})
        {parent} OR {d}.id IS NULL OR {d}.is_triage <> {s}.triage {name} {moderation})"""


def classify_authorities(cur, dataset_id, full, with_parent, with_department, with_moderation=False):
    differs = authority_differs("a", "p", "d", "s", kind="s.kind", dataset="%s", source_key="s.source_key",
                                with_parent=with_parent, with_department=with_department,
                                with_moderation=with_moderation,
                                department_name="CASE WHEN s.department <> '' THEN s.department ELSE s.short_name END")
    _mark(cur, "import_stage", "row_no", f"""
        SELECT s.row_no, CASE WHEN a.id IS NULL THEN 'created' WHEN {differs} THEN 'updated' ELSE 'unchanged' END
               AS state
        FROM import_stage s LEFT JOIN facilities_authority a ON a.code = s.code
        LEFT JOIN facilities_authority p ON p.id = a.parent_id
        LEFT JOIN facilities_department d ON d.authority_id = a.id AND d.code = 'main'""", [dataset_id])
    if full:
        _retire(cur, f"""SELECT a.id FROM facilities_authority a WHERE a.dataset_id = %s AND a.valid_to IS NULL
                         AND NOT EXISTS (SELECT 1 FROM import_stage s WHERE s.code = a.code)
                         {KEEP.format(alias="a")}""", [dataset_id])
    return count_marks(cur)


def apply_authorities(cur, dataset_id, *, with_parent, with_department, kind_sql="s.kind", stage="import_stage",
                      with_moderation=False):
    """Write the staged rows marked created or updated (and retire the marked ones, for a stage of its own)."""
    rows = f"(SELECT * FROM {stage} WHERE state <> 'unchanged')"
    cur.execute(f"""
        INSERT INTO facilities_authority (code, name, short_name, kind, inn, ogrn, dataset_id, source_key,
                                          valid_from, valid_to)
        SELECT s.code, s.name, s.short_name, {kind_sql}, s.inn, s.ogrn, %s, s.source_key, now(), NULL
        FROM {rows} s
        ON CONFLICT (code) DO UPDATE SET
            name = EXCLUDED.name, short_name = EXCLUDED.short_name, kind = EXCLUDED.kind, inn = EXCLUDED.inn,
            ogrn = EXCLUDED.ogrn, dataset_id = EXCLUDED.dataset_id, source_key = EXCLUDED.source_key,
            valid_to = NULL""", [dataset_id])
    if with_parent:
        cur.execute(f"""
            UPDATE facilities_authority a SET parent_id = p.id
            FROM {rows} s LEFT JOIN facilities_authority p ON p.code = s.parent_code
            WHERE a.code = s.code AND a.parent_id IS DISTINCT FROM p.id""")
    if with_moderation:  # issue 10: only where the spec names it (a jurisdiction authority of an areas file: never)
        cur.execute(f"""
            UPDATE facilities_authority a SET moderate_answers = s.moderate_answers
            FROM {rows} s WHERE a.code = s.code AND a.moderate_answers IS DISTINCT FROM s.moderate_answers""")
    # Every authority gets a department to work tickets; a spec may name it.
    cur.execute(f"""
        INSERT INTO facilities_department (authority_id, code, name, is_triage)
        SELECT a.id, 'main', CASE WHEN s.department <> '' THEN s.department ELSE a.short_name END, s.triage
        FROM {rows} s JOIN facilities_authority a ON a.code = s.code
        ON CONFLICT (authority_id, code) DO UPDATE SET
            name = CASE WHEN {"true" if with_department else "false"} THEN EXCLUDED.name ELSE facilities_department.name END,
            is_triage = EXCLUDED.is_triage""")


def retire_authorities(cur):
    cur.execute("UPDATE facilities_authority SET valid_to = now() WHERE id IN (SELECT id FROM import_retire)")


# --------------------------------------------------------------------------------------------------------------
# admin areas

AREA_COLUMNS = ["row_no", "source_key", "name", "okato", "oktmo", "parent_id", "geom", "j_code", "j_name",
                "j_short_name", "j_parent_code", "j_department"]


def stage_areas(cur, prepared, progress=None):
    new_stage(cur)
    cur.execute("""CREATE TEMP TABLE import_stage (row_no integer, source_key text, name text, okato text,
                   oktmo text, parent_id bigint, geom geometry(MultiPolygon, 4326), j_code text, j_name text,
                   j_short_name text, j_parent_code text, j_department text, state text) ON COMMIT DROP""")
    copy_rows(cur, "import_stage", prepared.rows, AREA_COLUMNS, progress)
    for col in ("name", "okato", "oktmo", "j_code", "j_name", "j_short_name", "j_parent_code", "j_department"):
        cur.execute(f"UPDATE import_stage SET {col} = '' WHERE {col} IS NULL")
    cur.execute("ANALYZE import_stage")


# The jurisdiction authorities an areas stage names, in the shape of an authorities stage (apply_authorities).
AREA_JURISDICTION = """SELECT j_code AS code, j_name AS name, j_short_name AS short_name, ''::text AS inn,
                              ''::text AS ogrn, source_key, j_parent_code AS parent_code, j_department AS department,
                              false AS triage, state
                       FROM import_stage WHERE j_code <> ''"""


def classify_areas(cur, dataset_id, level, full, jurisdiction_kind):
    """An area is unchanged only if the area and, where the spec names one, its jurisdiction authority (with
    its parent and department) are as the file states them; without a jurisdiction the area keeps its own."""
    juris = "false"
    params = [level]
    if jurisdiction_kind:
        differs = authority_differs(
            "j", "jp", "jd", "js", kind="%s", dataset="%s", source_key="js.source_key", with_parent=True,
            with_department=True,
            department_name="CASE WHEN js.department <> '' THEN js.department ELSE js.short_name END")
        juris = f"(j.id IS NULL OR a.authority_id IS DISTINCT FROM j.id OR {differs})"
        params += [jurisdiction_kind, dataset_id]
    else:  # an existing authority named by reference (spec key `authority`), or none: the area keeps its own
        juris = "(js.code IS NOT NULL AND a.authority_id IS DISTINCT FROM j.id)"
    _mark(cur, "import_stage", "row_no", f"""
        SELECT s.row_no, CASE WHEN a.id IS NULL THEN 'created'
            WHEN a.valid_to IS NOT NULL
              OR ROW(a.name, a.level, a.okato, a.oktmo, a.parent_id, a.geom)
                 IS DISTINCT FROM ROW(s.name, %s, s.okato, s.oktmo, s.parent_id, s.geom)
              OR {juris} THEN 'updated' ELSE 'unchanged' END AS state
        FROM import_stage s
        LEFT JOIN ({AREA_JURISDICTION.replace(", state", "")}) js ON js.source_key = s.source_key
        LEFT JOIN facilities_adminarea a ON a.dataset_id = %s AND a.source_key = s.source_key
        LEFT JOIN facilities_authority j ON j.code = js.code
        LEFT JOIN facilities_authority jp ON jp.id = j.parent_id
        LEFT JOIN facilities_department jd ON jd.authority_id = j.id AND jd.code = 'main'""",
          params + [dataset_id])
    if full:
        _retire(cur, f"""SELECT a.id FROM facilities_adminarea a WHERE a.dataset_id = %s AND a.valid_to IS NULL
                         AND NOT EXISTS (SELECT 1 FROM import_stage s WHERE s.source_key = a.source_key)
                         {KEEP.format(alias="a")}""", [dataset_id])
    return count_marks(cur)


def apply_areas(cur, dataset_id, level, *, jurisdiction_kind):
    """Write the areas marked created or updated (with their jurisdiction authorities), retire the marked ones;
    return the ids of the areas changed or retired."""
    if jurisdiction_kind:
        cur.execute(f"CREATE TEMP VIEW import_stage_juris AS {AREA_JURISDICTION}")
        apply_authorities(cur, dataset_id, with_parent=True, with_department=True,
                          kind_sql=cur.mogrify("%s", [jurisdiction_kind]).decode(), stage="import_stage_juris")
        cur.execute("DROP VIEW import_stage_juris")
    cur.execute("""
        INSERT INTO facilities_adminarea (name, level, parent_id, okato, oktmo, authority_id, geom, dataset_id,
                                          source_key, valid_from, valid_to)
        SELECT s.name, %s, s.parent_id, s.okato, s.oktmo, j.id, s.geom, %s, s.source_key, now(), NULL
        FROM import_stage s LEFT JOIN facilities_authority j ON j.code = s.j_code AND s.j_code <> ''
        WHERE s.state <> 'unchanged'
        ON CONFLICT (dataset_id, source_key) WHERE dataset_id IS NOT NULL DO UPDATE SET
            name = EXCLUDED.name, level = EXCLUDED.level, parent_id = EXCLUDED.parent_id, okato = EXCLUDED.okato,
            oktmo = EXCLUDED.oktmo, authority_id = coalesce(EXCLUDED.authority_id, facilities_adminarea.authority_id),
            geom = EXCLUDED.geom, valid_to = NULL
        RETURNING id""", [level, dataset_id])
    changed = [row[0] for row in cur.fetchall()]
    cur.execute("UPDATE facilities_adminarea SET valid_to = now() WHERE id IN (SELECT id FROM import_retire) "
                "RETURNING id")
    retired = [row[0] for row in cur.fetchall()]
    if retired:
        cur.execute("DELETE FROM facilities_adminareapiece WHERE area_id = ANY(%s)", [retired])
    subdivide_areas(changed)
    return changed + retired


# --------------------------------------------------------------------------------------------------------------
# the service catalogue: categories (with their facility types and questions), the routing table, holidays

CATEGORY_COLUMNS = ["row_no", "source_key", "code", "name_i18n", "group_i18n", "description_i18n", "keywords",
                    "keywords_en", "radius_m", "deadline_days", "rule", "area_level_id", "department_id",
                    "moderate_answers", "confirm_days", "type_codes", "attributes"]
CATEGORY_FIELDS = CATEGORY_COLUMNS[3:15]  # the columns of routing_category a file sets, besides the code

# A category as the file states it, and as the registry holds it: the same shape, so one comparison decides.
CATEGORY_CURRENT = """
    SELECT c.*,
        (SELECT coalesce(jsonb_agg(t.code ORDER BY t.code COLLATE "C"), '[]')
         FROM routing_category_facility_types m JOIN facilities_facilitytype t ON t.id = m.facilitytype_id
         WHERE m.category_id = c.id) AS type_codes,
        (SELECT coalesce(jsonb_agg(jsonb_build_object(
                    'code', a.code, 'datatype', a.datatype, 'required', a.required, 'variable', a.variable,
                    'order', a."order", 'description_i18n', a.description_i18n,
                    'datatype_description', a.datatype_description, 'values', a."values")
                ORDER BY a."order", a.code COLLATE "C"), '[]')
         FROM routing_categoryattribute a WHERE a.category_id = c.id) AS attributes
    FROM routing_category c"""


def stage_categories(cur, prepared, progress=None):
    new_stage(cur)
    cur.execute("""CREATE TEMP TABLE import_stage (
                       row_no integer, source_key text, code text, name_i18n jsonb, group_i18n jsonb,
                       description_i18n jsonb, keywords text, keywords_en text, radius_m integer,
                       deadline_days integer, rule text, area_level_id text, department_id bigint,
                       moderate_answers boolean, confirm_days integer,
                       type_codes jsonb, attributes jsonb, state text) ON COMMIT DROP""")
    copy_rows(cur, "import_stage", prepared.rows, CATEGORY_COLUMNS, progress)
    for col in ("keywords", "keywords_en"):
        cur.execute(f"UPDATE import_stage SET {col} = '' WHERE {col} IS NULL")
    cur.execute("UPDATE import_stage SET area_level_id = NULL WHERE area_level_id = ''")


def classify_categories(cur, dataset_id, full):
    current = ", ".join(f"c.{f}" for f in CATEGORY_FIELDS)
    staged = ", ".join(f"s.{f}" for f in CATEGORY_FIELDS)
    _mark(cur, "import_stage", "code", f"""
        SELECT s.code, CASE
            WHEN c.id IS NULL THEN 'created'
            WHEN NOT c.active OR ROW({current}, c.dataset_id, c.source_key, c.type_codes, c.attributes)
                 IS DISTINCT FROM ROW({staged}, %s::bigint, s.source_key, s.type_codes, s.attributes)
                 THEN 'updated'
            ELSE 'unchanged' END AS state
        FROM import_stage s LEFT JOIN ({CATEGORY_CURRENT}) c ON c.code = s.code""", [dataset_id])
    if full:
        _retire(cur, f"""SELECT c.id FROM routing_category c WHERE c.dataset_id = %s AND c.active
                         AND NOT EXISTS (SELECT 1 FROM import_stage s WHERE s.code = c.code)
                         {KEEP.format(alias="c")}""", [dataset_id])
    return count_marks(cur)


def apply_categories(cur, dataset_id):
    """Write the categories marked created or updated, retire the marked ones; return the ids of both."""
    fields = ", ".join(CATEGORY_FIELDS)
    cur.execute(f"""
        INSERT INTO routing_category (code, {fields}, active, dataset_id, source_key)
        SELECT code, {fields}, true, %s, source_key FROM import_stage WHERE state <> 'unchanged'
        ON CONFLICT (code) DO UPDATE SET {", ".join(f"{f} = EXCLUDED.{f}" for f in CATEGORY_FIELDS)},
            active = true, dataset_id = EXCLUDED.dataset_id, source_key = EXCLUDED.source_key""", [dataset_id])
    # A changed category's facility types and questions are replaced as a whole (nothing points at them).
    changed = "SELECT c.id FROM routing_category c JOIN import_stage s ON s.code = c.code AND s.state <> 'unchanged'"
    cur.execute(f"DELETE FROM routing_category_facility_types WHERE category_id IN ({changed})")
    cur.execute("""
        INSERT INTO routing_category_facility_types (category_id, facilitytype_id)
        SELECT c.id, t.id FROM import_stage s JOIN routing_category c ON c.code = s.code
        CROSS JOIN jsonb_array_elements_text(s.type_codes) tc(code) JOIN facilities_facilitytype t ON t.code = tc.code
        WHERE s.state <> 'unchanged'""")
    cur.execute(f"DELETE FROM routing_categoryattribute WHERE category_id IN ({changed})")
    cur.execute("""
        INSERT INTO routing_categoryattribute (category_id, code, datatype, required, variable, "order",
                                               description_i18n, datatype_description, "values")
        SELECT c.id, a->>'code', a->>'datatype', (a->>'required')::boolean, (a->>'variable')::boolean,
               (a->>'order')::integer, a->'description_i18n', a->>'datatype_description',
               a->'values'
        FROM import_stage s JOIN routing_category c ON c.code = s.code CROSS JOIN jsonb_array_elements(s.attributes) a
        WHERE s.state <> 'unchanged'""")
    cur.execute(changed)
    changed_ids = [row[0] for row in cur.fetchall()]
    # Retired, never deleted: complaints keep pointing at the category they were filed under.
    cur.execute("UPDATE routing_category SET active = false WHERE id IN (SELECT id FROM import_retire) RETURNING id")
    return changed_ids + [row[0] for row in cur.fetchall()]


ASSIGNMENT_COLUMNS = ["row_no", "source_key", "authority_match", "authority_ref", "authority_id", "category_match",
                      "category_ref", "category_id", "department_code", "department_name"]

# A row names one authority (resolved by importers.refs: match 'id') or a kind of authorities, and one category
# ('id'), a group of categories, or none (the authority's default row).
ASSIGNMENT_AUTHORITY_MATCH = """CASE s.authority_match WHEN 'id' THEN a.id = s.authority_id
    ELSE a.kind = s.authority_ref END"""
ASSIGNMENT_CATEGORY_MATCH = """CASE s.category_match WHEN 'id' THEN c.id = s.category_id
    ELSE s.category_ref IN (SELECT g.value FROM jsonb_each_text(c.group_i18n) g) END"""
ASSIGNMENT_HAS_CATEGORY = "(s.category_id IS NOT NULL OR s.category_ref <> '')"


def stage_assignments(cur, prepared, progress=None):
    """Stage the rows, reject those that match no authority or category, and expand the rest into
    import_assign: one row per (authority, category or none), the most specific row winning."""
    new_stage(cur)
    cur.execute("""CREATE TEMP TABLE import_stage (row_no integer, source_key text, authority_match text,
                   authority_ref text, authority_id bigint, category_match text, category_ref text,
                   category_id bigint, department_code text, department_name text) ON COMMIT DROP""")
    copy_rows(cur, "import_stage", prepared.rows, ASSIGNMENT_COLUMNS, progress)
    cur.execute("UPDATE import_stage SET category_ref = coalesce(category_ref, ''), "
                "authority_ref = coalesce(authority_ref, ''), department_name = coalesce(department_name, '')")
    rejects = []
    for condition, reason in [
        (f"NOT EXISTS (SELECT 1 FROM facilities_authority a WHERE a.valid_to IS NULL AND {ASSIGNMENT_AUTHORITY_MATCH})",
         "no active authority matches it"),
        (f"""{ASSIGNMENT_HAS_CATEGORY} AND NOT EXISTS (SELECT 1 FROM routing_category c WHERE c.active
             AND {ASSIGNMENT_CATEGORY_MATCH})""", "no active category matches it (load the categories first)"),
    ]:
        rejects += fetch_rejects(cur, f"""
            WITH gone AS (DELETE FROM import_stage s WHERE {condition} RETURNING row_no, source_key),
                 kept AS (INSERT INTO import_keep SELECT DISTINCT source_key FROM gone ON CONFLICT DO NOTHING)
            SELECT row_no, source_key FROM gone""", [], reason)
    cur.execute("DROP TABLE IF EXISTS import_assign")
    cur.execute(f"""
        CREATE TEMP TABLE import_assign ON COMMIT DROP AS
        SELECT DISTINCT ON (a.id, c.id) s.source_key, a.id AS authority_id, c.id AS category_id,
               s.department_code, s.department_name, NULL::text AS state
        FROM import_stage s
        JOIN facilities_authority a ON a.valid_to IS NULL AND {ASSIGNMENT_AUTHORITY_MATCH}
        LEFT JOIN routing_category c ON {ASSIGNMENT_HAS_CATEGORY} AND c.active AND {ASSIGNMENT_CATEGORY_MATCH}
        WHERE NOT {ASSIGNMENT_HAS_CATEGORY} OR c.id IS NOT NULL
        ORDER BY a.id, c.id, s.authority_match <> 'kind' DESC, s.category_match <> 'group' DESC, s.row_no DESC""")
    cur.execute("ANALYZE import_assign")
    return rejects


def classify_assignments(cur, dataset_id, full):
    """Counts are of routing-table entries (a row for a kind of authority or a group expands to many)."""
    cur.execute("ALTER TABLE import_assign ADD COLUMN entry serial")
    _mark(cur, "import_assign", "entry", """
        SELECT i.entry, CASE WHEN r.id IS NULL THEN 'created'
            WHEN d.code <> i.department_code OR (i.department_name <> '' AND d.name <> i.department_name)
              OR r.dataset_id IS DISTINCT FROM %s OR r.source_key <> i.source_key THEN 'updated'
            ELSE 'unchanged' END AS state
        FROM import_assign i
        LEFT JOIN routing_routingassignment r ON r.authority_id = i.authority_id
             AND r.category_id IS NOT DISTINCT FROM i.category_id
        LEFT JOIN facilities_department d ON d.id = r.department_id""", [dataset_id])
    if full:
        _retire(cur, f"""SELECT r.id FROM routing_routingassignment r WHERE r.dataset_id = %s
                         AND NOT EXISTS (SELECT 1 FROM import_assign i WHERE i.authority_id = r.authority_id
                                         AND i.category_id IS NOT DISTINCT FROM r.category_id)
                         {KEEP.format(alias="r")}""", [dataset_id])
    return count_marks(cur, "import_assign")


def apply_assignments(cur, dataset_id):
    rows = "(SELECT * FROM import_assign WHERE state <> 'unchanged')"
    # Departments the table names are created (named by the file, else by their code) or renamed.
    cur.execute(f"""
        INSERT INTO facilities_department (authority_id, code, name, is_triage)
        SELECT DISTINCT ON (authority_id, department_code) authority_id, department_code,
               coalesce(nullif(department_name, ''), department_code), false
        FROM {rows} i ORDER BY authority_id, department_code, department_name DESC
        ON CONFLICT (authority_id, code) DO NOTHING""")
    cur.execute(f"""
        UPDATE facilities_department d SET name = i.department_name
        FROM (SELECT DISTINCT ON (authority_id, department_code) * FROM {rows} i WHERE department_name <> ''
              ORDER BY authority_id, department_code) i
        WHERE d.authority_id = i.authority_id AND d.code = i.department_code AND d.name <> i.department_name""")
    select = f"""SELECT i.authority_id, i.category_id, d.id, %s, i.source_key FROM {rows} i
                 JOIN facilities_department d ON d.authority_id = i.authority_id AND d.code = i.department_code"""
    update = """DO UPDATE SET department_id = EXCLUDED.department_id, dataset_id = EXCLUDED.dataset_id,
                source_key = EXCLUDED.source_key"""
    columns = "(authority_id, category_id, department_id, dataset_id, source_key)"
    # Two statements: the per-category and the authority-default rows have different unique indexes.
    cur.execute(f"""INSERT INTO routing_routingassignment {columns} {select} WHERE i.category_id IS NOT NULL
                    ON CONFLICT (authority_id, category_id) {update}""", [dataset_id])
    cur.execute(f"""INSERT INTO routing_routingassignment {columns} {select} WHERE i.category_id IS NULL
                    ON CONFLICT (authority_id) WHERE category_id IS NULL {update}""", [dataset_id])
    cur.execute("DELETE FROM routing_routingassignment WHERE id IN (SELECT id FROM import_retire)")


def stage_holidays(cur, prepared, progress=None):
    new_stage(cur)
    cur.execute("CREATE TEMP TABLE import_stage (row_no integer, source_key text, date date, name text, "
                "state text) ON COMMIT DROP")
    copy_rows(cur, "import_stage", prepared.rows, ["row_no", "source_key", "date", "name"], progress)
    cur.execute("UPDATE import_stage SET name = '' WHERE name IS NULL")


def classify_holidays(cur, dataset_id, full):
    _mark(cur, "import_stage", "row_no", """
        SELECT s.row_no, CASE WHEN h.id IS NULL THEN 'created'
            WHEN h.name <> s.name OR h.dataset_id IS DISTINCT FROM %s THEN 'updated' ELSE 'unchanged' END AS state
        FROM import_stage s LEFT JOIN routing_holiday h ON h.date = s.date""", [dataset_id])
    if full:
        _retire(cur, """SELECT h.id FROM routing_holiday h WHERE h.dataset_id = %s
                        AND NOT EXISTS (SELECT 1 FROM import_stage s WHERE s.date = h.date)""", [dataset_id])
    return count_marks(cur)


def apply_holidays(cur, dataset_id):
    cur.execute("""INSERT INTO routing_holiday (date, name, dataset_id)
                   SELECT date, name, %s FROM import_stage WHERE state <> 'unchanged'
                   ON CONFLICT (date) DO UPDATE SET name = EXCLUDED.name, dataset_id = EXCLUDED.dataset_id""",
                [dataset_id])
    cur.execute("DELETE FROM routing_holiday WHERE id IN (SELECT id FROM import_retire)")
