"""The facilities fast path: Arrow batches from the file straight into COPY, validated on the way.

Facility datasets can hold millions of rows, so this path never builds Python objects per row:
- pyogrio streams the file as Arrow record batches (other formats are read whole and sliced);
- each batch is validated with pyarrow.compute and vectorised shapely (keys, geometry, CRS, types, owners,
  the in-city test), and turned into CSV by pyarrow;
- one COPY pulls those CSV bytes through a file-like object, so the PostgreSQL backend parses batch k on the
  second core while Python validates batch k+1 on the first.
This is the one validation engine: the small targets (prepare.py) read through open_stream too and compute
their columns with these functions (evaluate, text, map_values) and their geometry with check_geometries.
Rejects are collected with their row numbers (1-based, in file order).
"""
import io
import json
import queue
import threading
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyogrio
import pyproj
import shapely

from . import limits, osm, prepare, refs
from .errors import ImportFailure
from .readers import _first_line, gdal_kwargs, read_source
from .sources import check_driver, lock_down
from .spec import TEMPLATE_RE

BATCH_ROWS = 100_000
SRID = 4326
EWKB_SRID_FLAG = 0x20000000
# Two hex digits per byte value, as one uint16 each, for vectorised hex encoding.
_HEX = np.frombuffer("".join(f"{i:02X}" for i in range(256)).encode(), dtype=np.uint16)


# ---- reading ---------------------------------------------------------------------------------------------------

@dataclass
class Batch:
    offset: int  # rows before this batch (row numbers are offset + i + 1)
    table: pa.Table  # attribute columns
    wkb: pa.Array | None  # geometry as WKB (nulls where a row has none)
    geoms: np.ndarray | None = None  # or shapely objects, from the non-GDAL readers


@dataclass
class Stream:
    crs: str | None
    format: str
    columns: list
    batches: object  # iterator of Batch
    total: int | None = None  # the rows it holds, when the format says


def open_stream(source, source_spec, batch_rows=BATCH_ROWS, fields=()):
    """Batches of a SourceFile (importers.sources.prepared): streamed by GDAL, or read whole and sliced.
    `fields`: the fields the spec names (an OSM extract's reader makes a column of each tag among them)."""
    if source.format == "osm":
        return open_osm_stream(source, source_spec, fields, batch_rows)
    if source.format != "gdal":
        data = read_source(source, source_spec)
        table = pa.Table.from_pandas(data.frame.astype(str).where(data.frame.notna(), None), preserve_index=False)

        def slices():
            for start in range(0, len(data), batch_rows):
                geoms = None if data.geoms is None else data.geoms[start:start + batch_rows]
                yield Batch(start, table.slice(start, batch_rows), None, geoms)

        return Stream(data.crs, data.format, list(data.frame.columns), slices(), total=len(data))
    kwargs = {"batch_size": batch_rows, **gdal_kwargs(source_spec)}
    lock_down()
    try:
        # Opened once to read the metadata (cheap); the batches come from a second open inside the generator.
        info = pyogrio.read_info(source.gdal_path, **gdal_kwargs(source_spec))
        check_driver(info, source)
        with pyogrio.open_arrow(source.gdal_path, **kwargs) as (meta, _reader):
            pass
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, pyogrio.errors.CRSError) as exc:
        raise ImportFailure(f"{source.name}: can not be read as {source.driver} "
                            f"({source.scrub(_first_line(exc))})") from None
    geom_name = meta.get("geometry_name") or "wkb_geometry"

    def batches():
        offset = 0
        with pyogrio.open_arrow(source.gdal_path, **kwargs) as (_meta, reader):
            for record_batch in pa.RecordBatchReader.from_stream(reader):
                table = pa.Table.from_batches([record_batch])
                wkb = None
                if geom_name in table.column_names:
                    col = table.column(geom_name).combine_chunks()
                    wkb = col.storage if isinstance(col, pa.ExtensionArray) else col
                    table = table.drop_columns([geom_name])
                yield Batch(offset, table, wkb)
                offset += record_batch.num_rows

    total = int(info.get("features") or 0)
    return Stream(meta.get("crs"), info["driver"], list(meta.get("fields", [])), batches(),
                  total=total if total > 0 else None)


def open_osm_stream(source, source_spec, fields, batch_rows):
    """An OpenStreetMap extract's chosen layers, filtered by tag (importers.osm), as one stream."""
    osm.check_pbf(source.path, source.name)  # the file first: is it an OSM PBF extract at all
    reader = osm.OsmReader(source, osm.parse_source(source_spec, "facilities"), fields, batch_rows)
    lock_down()
    try:
        info = reader.info()
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise ImportFailure(f"{source.name}: can not be read as OSM ({source.scrub(_first_line(exc))})") from None
    check_driver(info, source)
    return Stream("EPSG:4326", info["driver"], list(reader.columns), reader.batches(Batch))


def feature_count(stream):
    """The rows a stream will yield, when the format says (for the progress bar), else None."""
    return stream.total


# ---- columns ---------------------------------------------------------------------------------------------------

def text(col):
    """A column as trimmed strings, '' for nulls; 12.0 -> '12' (codes read as numbers)."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    t = col.type
    if pa.types.is_floating(t):
        values = col.to_numpy(zero_copy_only=False)
        finite = np.isfinite(values)
        if (np.floor(values[finite]) == values[finite]).all():
            col = pa.array(np.where(finite, values, 0).astype(np.int64), mask=~finite)
    if not pa.types.is_string(col.type):
        col = pc.cast(col, pa.string())
    return pc.utf8_trim_whitespace(pc.fill_null(col, ""))


def evaluate(value, table, n):
    if value is None:
        return pa.array([""] * n, pa.string()) if n else pa.array([], pa.string())
    if value.constant is not None:
        return pa.array([value.constant] * n, pa.string())
    if value.template is not None:
        parts = TEMPLATE_RE.split(value.template)
        pieces = [text(table.column(p)) if i % 2 else pa.scalar(p) for i, p in enumerate(parts) if i % 2 or p]
        if len(pieces) == 1:
            return pieces[0] if isinstance(pieces[0], pa.Array) else pa.array([parts[0]] * n, pa.string())
        return pc.utf8_trim_whitespace(pc.binary_join_element_wise(*pieces, ""))
    return text(table.column(value.field))


def evaluate_mapped(value, table, n):
    """evaluate(), then the value's map (a value the map leaves out, with no default, becomes '')."""
    column = evaluate(value, table, n)
    if value is not None and value.value_map is not None:
        column = pc.fill_null(map_values(column, value.value_map, value.default), "")
    return column


def map_values(arr, mapping, default=None, value_type=pa.string()):
    """arr -> mapping[arr] (nulls where absent and no default), vectorised."""
    keys = pa.array(list(mapping.keys()), pa.string())
    values = pa.array(list(mapping.values()), value_type)
    out = pc.take(values, pc.index_in(arr, value_set=keys))
    if default is not None:
        out = pc.fill_null(out, pa.scalar(default, value_type))
    return out


def json_string(arr):
    """Arrow strings as JSON string literals (quotes, backslashes and control characters escaped)."""
    if not pc.any(pc.match_substring_regex(arr, r'[\\"\x00-\x1f]')).as_py():
        # the usual column: nothing to escape, one scan instead of six passes that rewrite it (a quarter the time)
        return pc.binary_join_element_wise('"', arr, '"', "")
    arr = pc.replace_substring(arr, "\\", "\\\\")
    arr = pc.replace_substring(arr, '"', '\\"')
    arr = pc.replace_substring(arr, "\n", "\\n")
    arr = pc.replace_substring(arr, "\r", "\\r")
    arr = pc.replace_substring(arr, "\t", "\\t")
    arr = pc.replace_substring_regex(arr, "[\\x00-\\x1f]", " ")
    return pc.binary_join_element_wise('"', arr, '"', "")


def attrs_json(table, names, n):
    if not names:
        return pa.array(["{}"] * n, pa.string())
    pieces = ["{"]
    for i, name in enumerate(names):
        pieces += [("," if i else "") + json.dumps(name, ensure_ascii=False) + ":", json_string(text(table.column(name)))]
    pieces.append("}")
    return pc.binary_join_element_wise(*[p if isinstance(p, pa.Array) else pa.scalar(p) for p in pieces], "")


# ---- geometry --------------------------------------------------------------------------------------------------

def _binary_parts(arr):
    arr = arr.cast(pa.large_binary()) if not pa.types.is_large_binary(arr.type) else arr
    buffers = arr.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int64)[arr.offset:arr.offset + len(arr) + 1]
    data = np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None else np.zeros(0, np.uint8)
    return offsets, data


def simple_wkb_info(wkb):
    """For little-endian 2D WKB: (types, offsets, data); None when another encoding is present."""
    offsets, data = _binary_parts(wkb)
    starts = offsets[:-1]
    lens = np.diff(offsets)
    if len(starts) == 0 or (lens < 5).any() or (data[starts] != 1).any():
        return None
    types = (data[starts + 1].astype(np.uint32) | data[starts + 2].astype(np.uint32) << 8
             | data[starts + 3].astype(np.uint32) << 16 | data[starts + 4].astype(np.uint32) << 24)
    if (types > 7).any():  # Z/M variants, EWKB flags: leave them to shapely
        return None
    return types, offsets, data


def ewkb_hex(wkb, info=None):
    """Hex EWKB with SRID 4326 from plain little-endian 2D WKB, without building geometry objects."""
    info = info or simple_wkb_info(wkb)
    if info is None:
        return None
    types, offsets, data = info
    n = len(types)
    starts, lens = offsets[:-1], np.diff(offsets)
    new_offsets = np.concatenate([[0], np.cumsum(lens + 4)])
    out = np.empty(int(new_offsets[-1]), dtype=np.uint8)
    header = np.empty((n, 9), dtype=np.uint8)
    header[:, 0] = 1
    header[:, 1:5] = (types | EWKB_SRID_FLAG).astype("<u4").view(np.uint8).reshape(n, 4)
    header[:, 5:9] = np.frombuffer(np.array([SRID], "<u4").tobytes(), np.uint8)
    out[new_offsets[:-1, None] + np.arange(9)] = header
    rest = lens - 5
    within = np.arange(int(rest.sum())) - np.repeat(np.cumsum(rest) - rest, rest)
    out[np.repeat(new_offsets[:-1] + 9, rest) + within] = data[np.repeat(starts + 5, rest) + within]
    hexed = _HEX[out].view(np.uint8)
    return pa.LargeStringArray.from_buffers(n, pa.py_buffer((new_offsets * 2).astype(np.int64)), pa.py_buffer(hexed))


# ---- validation ------------------------------------------------------------------------------------------------

@dataclass
class FacilityStreamResult:
    rows: int = 0
    repaired: int = 0
    reprojected_from: str | None = None
    rejects: list = field(default_factory=list)
    keys: list = field(default_factory=list)  # accepted keys per batch (for the duplicate check)
    first_rows: list = field(default_factory=list)  # their row numbers


class FacilityValidator:
    """Validates batches of a facilities file; `csv_batches()` yields CSV bytes of the accepted rows."""

    def __init__(self, spec, stream, *, type_ids, owners, city, crs, with_row_no):
        self.spec, self.stream, self.type_ids, self.owners, self.city = spec, stream, type_ids, owners, city
        self.with_row_no = with_row_no
        self.result = FacilityStreamResult()
        self.transformer = transformer_for(crs)
        if self.transformer is not None:
            self.result.reprojected_from = crs.to_string()
        self.crs = crs

    def csv_batches(self, progress=None):
        for batch in self.stream.batches:
            table = self.batch(batch)
            if table is not None and table.num_rows:
                buf = io.BytesIO()
                pacsv.write_csv(table, buf, pacsv.WriteOptions(include_header=False, quoting_style="needed"))
                yield buf.getvalue()
            if progress:
                progress.advance(batch.table.num_rows)

    def batch(self, batch):
        spec, res = self.spec, self.result
        n = batch.table.num_rows
        res.rows += n
        row_no = np.arange(batch.offset + 1, batch.offset + n + 1)
        keys = evaluate(spec.key, batch.table, n)
        keys_np = keys.to_numpy(zero_copy_only=False)
        alive = np.ones(n, dtype=bool)

        def reject(mask, reason):
            nonlocal alive
            mask = np.asarray(mask, dtype=bool) & alive
            for i in np.flatnonzero(mask):
                res.rejects.append((int(row_no[i]), keys_np[i], reason(i) if callable(reason) else reason))
            alive &= ~mask

        reject(pc.equal(keys, "").to_numpy(zero_copy_only=False), "missing key")
        reject(pc.match_substring(keys, "\x00").to_numpy(zero_copy_only=False), "the key holds a NUL character")
        key_limit = limits.max_length(limits.SOURCE_KEY_FIELDS["facilities"])
        reject(pc.greater(pc.utf8_length(keys), key_limit).to_numpy(zero_copy_only=False),
               f"key longer than {key_limit} characters")
        geom_hex = self.geometry(batch, n, reject, lambda: alive)

        type_value = spec.values["type"]
        raw_types = evaluate(type_value, batch.table, n)
        codes = map_values(raw_types, type_value.value_map, type_value.default) if type_value.value_map else raw_types
        type_id = map_values(codes, self.type_ids, value_type=pa.int64())
        raw_np = raw_types.to_numpy(zero_copy_only=False)
        reject(pc.is_null(type_id).to_numpy(zero_copy_only=False),
               lambda i: f"unknown facility type value {raw_np[i]!r}")
        owner_id = self.owner_ids(batch, n, reject)
        names = evaluate(spec.values.get("name"), batch.table, n)
        addresses = evaluate(spec.values.get("address"), batch.table, n)
        for label, column in (("name", names), ("address", addresses)):
            limit = limits.max_length(f"facilities.Facility.{label}")
            reject(pc.match_substring(column, "\x00").to_numpy(zero_copy_only=False),
                   f"{label} holds a NUL character, which the database can not store")
            lengths = pc.utf8_length(column).to_numpy(zero_copy_only=False)
            reject(lengths > limit, lambda i, ln=lengths, lb=label, lm=limit:
                   f"{lb} is {ln[i]} characters long; its column holds {lm}")
        attrs = attrs_json(batch.table, spec.options["attrs"], n)

        mask = pa.array(alive)
        res.keys.append(keys.filter(mask))
        res.first_rows.append(row_no[alive])
        columns = {"source_key": keys, "type_id": type_id, "owner_id": owner_id, "name": names,
                   "address": addresses, "attrs": attrs, "geom": geom_hex}
        if self.with_row_no:
            columns = {"row_no": pa.array(row_no), **columns}
        return pa.table(columns).filter(mask)

    def owner_ids(self, batch, n, reject):
        """The owner of each row by the spec's owner rules, in order (spec._owner_rule), each a reference resolved
        by importers.refs; null where no rule named one yet: an `area_level` rule (always the last) is resolved in
        the stage (load.resolve_owners_by_area). A rule with rules after it takes only the rows it names something
        for (its field not empty, its value in its map); the last takes every row left."""
        owner_id = pa.nulls(n, pa.int64())
        pending = np.ones(n, dtype=bool)
        for rule in self.spec.options.get("owners") or []:
            if rule["match"] == "area":
                break
            ref = rule["ref"]
            named = refs.texts(ref, batch.table, n).to_numpy(zero_copy_only=False) != ""
            mine = pending & named if rule["fallback"] else pending.copy()
            ids = refs.resolve_batch(ref, batch.table, n, self.owners,
                                     lambda mask, reason, m=mine: reject(np.asarray(mask, dtype=bool) & m, reason))
            owner_id = pc.if_else(pa.array(mine), ids, owner_id)
            pending &= ~mine
        return owner_id

    def geometry(self, batch, n, reject, alive):
        spec, res = self.spec, self.result
        if batch.wkb is None and batch.geoms is None:
            raise ImportFailure("the file has no geometry (for CSV, set source.lon and source.lat in the spec)")
        if batch.wkb is not None:
            present = pc.is_valid(batch.wkb).to_numpy(zero_copy_only=False)
            info = simple_wkb_info(pc.fill_null(batch.wkb, b"\x01\x01\x00\x00\x00" + b"\x00" * 16)) \
                if self.transformer is None else None
        else:
            present = ~pd.isna(batch.geoms)
            info = None
        points_only = info is not None and (info[0] == 1).all() and (np.diff(info[1]) == 21).all()
        if points_only:
            # Plain 2D points: read x/y straight from the WKB bytes; nothing to repair.
            offsets, data = info[1], info[2]
            coords = data[offsets[:-1, None] + np.arange(5, 21)].view("<f8").reshape(n, 2)
            x, y = coords[:, 0], coords[:, 1]
            empty = ~present | np.isnan(x) | np.isnan(y)  # GDAL writes an empty point as NaN NaN
            reject(empty, "empty geometry")
            inside_range = alive() & present
            self.check_bounds(np.column_stack([x, y, x, y])[inside_range],
                              rows=np.flatnonzero(inside_range) + batch.offset)
            if self.city is not None:
                ok = alive()
                inside = np.zeros(n, dtype=bool)
                inside[ok] = shapely.intersects_xy(self.city, x[ok], y[ok])
                reject(ok & ~inside, "outside the city (no admin area covers it)")
            return ewkb_hex(batch.wkb, info)
        # General case: shapely objects (the same checks as every target's geometry: check_geometries).
        geoms = batch.geoms if batch.geoms is not None else \
            shapely.from_wkb(batch.wkb.to_numpy(zero_copy_only=False), on_invalid="warn")
        geoms, repaired = check_geometries(spec, geoms, reject, alive, transformer=self.transformer, crs=self.crs,
                                           city=self.city, row_no=np.arange(batch.offset + 1, batch.offset + n + 1))
        res.repaired += repaired
        ok = alive()
        out = np.full(n, None, dtype=object)
        out[ok] = shapely.to_wkb(shapely.set_srid(geoms[ok], SRID), hex=True, include_srid=True)
        return pa.array(out, pa.string())

    def check_bounds(self, bounds, mask=None, rows=None):
        check_bounds(self.crs, bounds, mask, rows)

    def duplicates(self):
        """Rows whose key an earlier row already had: [(row_no, key, reason)], over all batches."""
        if not self.result.keys:
            return []
        chunked = pa.chunked_array(self.result.keys, pa.string())
        if len(pc.unique(chunked)) == len(chunked):  # the usual case, one hash pass in C++ (count_distinct: 2-4x)
            return []
        keys = pd.Series(chunked.to_numpy())
        rows = np.concatenate(self.result.first_rows)
        dup = keys.duplicated(keep="first").to_numpy()
        if not dup.any():
            return []
        dup_keys = set(keys[dup])
        first = {k: r for k, r in zip(keys[~dup], rows[~dup]) if k in dup_keys}
        return [(int(r), k, f"duplicate key {k!r} (first at row {first[k]})") for k, r in zip(keys[dup], rows[dup])]


def check_bounds(crs, bounds, mask=None, rows=None):
    """Coordinates that are no longitude/latitude after reprojection: the file's CRS is not what it says."""
    if mask is not None:
        rows = np.flatnonzero(mask)
        bounds = bounds[mask]
    if len(bounds) == 0:
        return
    bad = ~np.isfinite(bounds).all(axis=1) | (bounds[:, 0] < -180) | (bounds[:, 2] > 180) | \
        (bounds[:, 1] < -90) | (bounds[:, 3] > 90)
    if bad.any():
        first = np.flatnonzero(bad)[0]
        x, y = bounds[first, :2]
        raise ImportFailure(
            f"coordinates do not fit {crs.to_string()} (row {rows[first] + 1}: {x:.6g}, {y:.6g} is not a "
            "longitude/latitude after reprojection): set source.crs in the spec to the file's real CRS")


def transformer_for(crs):
    return None if crs.to_epsg() == SRID else pyproj.Transformer.from_crs(crs, SRID, always_xy=True)


def check_geometries(spec, geoms, reject, alive, *, transformer, crs, city, row_no, polygonal=False):
    """Every target's geometry checks, vectorised: empty, 2D, reprojected to EPSG:4326, in range, valid (repaired
    or rejected as the spec says), polygonal where the target needs polygons, inside the city. `reject(mask,
    reason)` rejects rows, `alive()` is the mask of rows still accepted. Returns (geometries, repaired)."""
    n = len(geoms)
    geoms = np.array(geoms, dtype=object)
    missing = pd.isna(geoms)
    reject(missing | shapely.is_empty(np.where(missing, shapely.Point(), geoms)), "empty geometry")
    ok = alive()
    geoms[ok] = shapely.force_2d(geoms[ok])
    if transformer is not None and ok.any():
        geoms[ok] = shapely.transform(geoms[ok], lambda c: np.column_stack(transformer.transform(c[:, 0], c[:, 1])))
    if ok.any():
        check_bounds(crs, shapely.bounds(geoms[ok]), None, rows=row_no[ok] - 1)
    valid = np.ones(n, dtype=bool)
    valid[ok] = shapely.is_valid(geoms[ok])
    invalid = ok & ~valid
    repaired = 0
    if invalid.any():
        if spec.invalid_geometry == "reject":
            reasons = dict(zip(np.flatnonzero(invalid), shapely.is_valid_reason(geoms[invalid])))
            reject(invalid, lambda i: f"invalid geometry: {reasons[i]}")
        else:
            geoms[invalid] = shapely.make_valid(geoms[invalid])
            repaired = int(invalid.sum())
    ok = alive()
    if polygonal:
        geoms[ok] = [_multipolygon(g) for g in geoms[ok]]
        reject(ok & pd.isna(geoms), "not a polygon (admin areas must be polygons)")
    elif repaired:  # make_valid may have produced a collapsed or empty geometry
        reject(ok & shapely.is_empty(np.where(ok, geoms, shapely.Point())), "empty geometry after repair")
    ok = alive()
    if city is not None and ok.any():
        inside = np.zeros(n, dtype=bool)
        inside[ok] = shapely.intersects(city, geoms[ok])
        reject(ok & ~inside, "outside the city (no admin area covers it)")
    return geoms, repaired


def _multipolygon(g):
    if g is None:
        return None
    if g.geom_type == "MultiPolygon":
        return g
    if g.geom_type == "Polygon":
        return shapely.MultiPolygon([g])
    if g.geom_type == "GeometryCollection":
        polys = [p for p in shapely.get_parts(g) if p.geom_type in ("Polygon", "MultiPolygon")]
        parts = [q for p in polys for q in shapely.get_parts(p)]
        return shapely.MultiPolygon(parts) if parts else None
    return None


def read_whole(stream):
    """All of a stream's batches as one table and one array of shapely geometries (None: the file has none): the
    small targets (areas, authorities, the catalogue) are validated whole, by the same column functions."""
    tables, geoms, any_geom = [], [], False
    for batch in stream.batches:
        tables.append(batch.table)
        if batch.wkb is not None:
            any_geom = True
            geoms.append(shapely.from_wkb(batch.wkb.to_numpy(zero_copy_only=False), on_invalid="warn"))
        elif batch.geoms is not None:
            any_geom = True
            geoms.append(np.asarray(batch.geoms, dtype=object))
        else:
            geoms.append(np.full(batch.table.num_rows, None, dtype=object))
    if tables:
        table = pa.concat_tables(tables, promote_options="default")
    else:
        table = pa.table({c: pa.array([], pa.string()) for c in stream.columns})
    return table, (np.concatenate(geoms) if any_geom else None)


def ahead(chunks, depth=2):
    """Produce the chunks in a thread, `depth` ahead of the consumer.

    While COPY sends a batch (psycopg2 releases the GIL while it waits on the socket, i.e. on the server's
    parsing), the thread validates the next one: Python and PostgreSQL work on the two cores at once.
    """
    box = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce():
        try:
            for chunk in chunks:
                if stop.is_set():
                    return
                box.put(chunk)
            box.put(done)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            box.put(exc)

    thread = threading.Thread(target=produce, name="import-validate", daemon=True)
    thread.start()
    try:
        while True:
            item = box.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                box.get_nowait()
            except queue.Empty:
                thread.join(0.05)


class ChunkReader(io.RawIOBase):
    """A file-like object over an iterator of byte chunks, for COPY FROM STDIN."""

    def __init__(self, chunks):
        self.chunks = iter(chunks)
        self.pending = b""
        self.error = None  # an exception raised while producing; COPY only sees "error in .read() call"

    def readable(self):
        return True

    def read(self, size=-1):
        while not self.pending:
            try:
                self.pending = next(self.chunks)
            except StopIteration:
                return b""
            except Exception as exc:
                self.error = exc
                raise
        if size is None or size < 0:
            size = len(self.pending)
        out, self.pending = self.pending[:size], self.pending[size:]
        return out


def source_crs(spec, stream):
    """The CRS to read the stream in (shared rules with prepare.source_crs)."""
    return prepare.source_crs(spec, _CrsView(stream))


@dataclass
class _CrsView:
    stream: Stream

    @property
    def crs(self):
        return self.stream.crs

    @property
    def format(self):
        return self.stream.format
