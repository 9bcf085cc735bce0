"""Target `addresses`: postal addresses with their points (facilities.Address), which the place search finds
(facilities.search) besides the facilities' own names and addresses and the areas' names.

Self-contained: the spec keys are `label` (the full address as shown; required), and `street`, `house` and
`district` (optional parts, shown beside a result). Any GDAL source with address fields will do (points, or
buildings: a polygon or a line is stored as a point on its surface), and the data.mos.ru address register's shape
(`ADDRESS`, `P7`, `L1_VALUE`, `DISTRICT`, `geoData`: the demo's spec under data/specs/). Read and validated by the one
Arrow engine (prepare.py, stream.check_geometries: empty, invalid or out-of-range geometry, a point outside the
city unless `require_in_city: false`), staged by COPY, classified (created, updated, unchanged; a full import
retires the dataset's addresses the file no longer has) and applied like the other targets; the commit adds the
labels' stems to the search's vocabulary (importers.core).
"""
import numpy as np
import shapely

from . import load as load_sql
from .facility_job import city_geometry
from .errors import ImportFailure
from .limits import reject_unstorable
from .prepare import evaluate, finish, hex_ewkb, prepare_geometry, prepare_keys

FIELDS = {"label": "facilities.Address.label", "street": "facilities.Address.street",
          "house": "facilities.Address.house", "district": "facilities.Address.district"}
COLUMNS = ["row_no", "source_key", "label", "street", "house", "district", "geom"]


def parse_spec(spec, raw):
    """The target's own spec keys (importers.spec calls this for target `addresses`)."""
    from .spec import _require, _value

    spec.values["label"] = _require(raw, "label")
    for name in ("street", "house", "district"):
        if raw.get(name) is not None:
            spec.values[name] = _value(name, raw[name])


def prepare(spec, source):
    n = len(source)
    keys, rej = prepare_keys(spec, source)
    city = city_geometry() if spec.require_in_city else None
    if spec.require_in_city and city is None:
        raise ImportFailure("no admin areas are loaded, so no address can be checked to lie in the city: import "
                            "the areas first (or set require_in_city: false)")
    geoms, counts = prepare_geometry(spec, source, rej, city=city)
    columns = {"source_key": keys}
    for name in FIELDS:
        value = spec.values.get(name)
        columns[name] = evaluate(value, source.table, n) if value is not None else np.full(n, "", dtype=object)
    rej.reject(np.array([not str(v).strip() for v in columns["label"]], dtype=bool), "missing label (the address)")
    reject_unstorable(rej, columns, FIELDS)
    alive = rej.alive
    points = np.full(n, None, dtype=object)
    if alive.any():
        chosen = geoms[alive]
        is_point = shapely.get_type_id(chosen) == 0
        chosen = np.where(is_point, chosen, shapely.point_on_surface(chosen))
        points[alive] = hex_ewkb(chosen)
    columns["geom"] = np.array(["" if p is None else p for p in points], dtype=object)
    return finish(rej, columns, counts)


def stage(cur, prepared, progress=None):
    load_sql.new_stage(cur)
    cur.execute("CREATE TEMP TABLE import_stage (row_no integer, source_key text, label text, street text, "
                "house text, district text, geom geometry(Point, 4326), state text) ON COMMIT DROP")
    load_sql.copy_rows(cur, "import_stage", prepared.rows, COLUMNS, progress)


def classify(cur, dataset_id, full):
    """Each staged address created, updated or unchanged (its texts and point compared); on a full import, the
    dataset's addresses the file no longer has retired (deleted: an address explains no complaint)."""
    load_sql._mark(cur, "import_stage", "row_no", """
        SELECT s.row_no, CASE WHEN d.id IS NULL THEN 'created'
            WHEN (d.label, d.street, d.house, d.district) IS DISTINCT FROM (s.label, s.street, s.house, s.district)
                 OR NOT ST_Equals(d.geom, s.geom) THEN 'updated' ELSE 'unchanged' END AS state
        FROM import_stage s LEFT JOIN facilities_address d ON d.dataset_id = %s AND d.source_key = s.source_key""",
                   [dataset_id])
    if full:
        load_sql._retire(cur, f"""SELECT d.id FROM facilities_address d WHERE d.dataset_id = %s
                                  AND NOT EXISTS (SELECT 1 FROM import_stage s WHERE s.source_key = d.source_key)
                                  {load_sql.KEEP.format(alias='d')}""", [dataset_id])
    return load_sql.count_marks(cur)


def apply(cur, dataset_id):
    cur.execute("""INSERT INTO facilities_address (dataset_id, source_key, label, street, house, district, geom)
                   SELECT %s, source_key, label, street, house, district, geom FROM import_stage
                   WHERE state <> 'unchanged'
                   ON CONFLICT (dataset_id, source_key) DO UPDATE SET label = EXCLUDED.label,
                       street = EXCLUDED.street, house = EXCLUDED.house, district = EXCLUDED.district,
                       geom = EXCLUDED.geom""", [dataset_id])
    cur.execute("DELETE FROM facilities_address WHERE id IN (SELECT id FROM import_retire)")
