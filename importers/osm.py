"""OpenStreetMap extracts (`.osm.pbf`) as a source of facilities, read by GDAL's OSM driver through pyogrio.

A spec reads an extract like any other file, with two keys of its `source` block for OSM (docs/importing.md):

    source:
      layer: [points, multipolygons]        # GDAL's OSM layers to read, in order (default: points)
      tags: [highway=bus_stop, leisure=playground, amenity=school]   # a feature is read if it has one of these

Each feature read gets three columns besides its tags: `osm_key` (`node/123`, `way/45`, `relation/6`: stable
across extracts, so it makes a good `key`), `osm_tag` (the first filter tag it matched, as `key=value`: the
facility type is mapped from it) and `osm_layer`. Every tag the spec names (in `key`, `type`, `owner`, `name`,
`address`, `attrs`, `derived`) is a column; a feature without the tag has an empty value.

What the driver may do is held here as for the other drivers (importers.sources):
- `check_pbf()` walks the file's block headers before GDAL opens it: the file must be OSM PBF (the driver also
  reads OSM XML, whose parser is not needed), every block within the format's limits, and what the blocks inflate
  to (the sizes they declare, which the driver enforces when it inflates) within the archive caps
  (OURCITY_IMPORT_UNPACKED_MAX_MB, OURCITY_IMPORT_UNPACK_MAX_RATIO).
- The driver is given a configuration file written here for this read (its layers, the tags as attributes, no
  computed attributes: the default file runs SQL for `z_order`), never one from a spec or the file; the spec passes
  GDAL no open option.
- Its node index stays in memory up to OURCITY_IMPORT_OSM_MEMORY_MB, then spills to a temporary file under
  IMPORTS_DIR/tmp/gdal (GDAL's CPL_TMPDIR, set by importers.sources.lock_down), which the driver removes on close;
  the configuration file lives in a private folder under IMPORTS_DIR/tmp that goes when the read ends.
"""
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyogrio
from django.conf import settings

from .errors import ImportFailure

LAYERS = ("points", "lines", "multipolygons", "multilinestrings", "other_relations")
# Columns the OSM reader adds (a spec names them like any field).
ADDED = ("osm_key", "osm_tag", "osm_layer")
# Columns the driver writes itself: never asked for as tags.
BUILTIN = {"osm_id", "osm_way_id", "osm_version", "osm_timestamp", "osm_uid", "osm_user", "osm_changeset",
           "other_tags", "all_tags", *ADDED}
# An OSM key as the configuration file can hold it (comma-separated lists, one per line): letters, digits and
# the punctuation real keys use (`operator:wikidata`, `addr:street`, `name:en`).
TAG_KEY_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_:.\-]{0,99}")
TAG_VALUE_MAX = 255
# From GDAL's default osmconf.ini: closed ways with these tags are areas (the multipolygons layer).
CLOSED_WAYS_ARE_POLYGONS = ("aeroway,amenity,boundary,building,craft,geological,historic,landuse,leisure,military,"
                            "natural,office,place,shop,sport,tourism,highway=platform,public_transport=platform")

# The PBF format's own limits (OSM wiki, "PBF Format"): a BlobHeader under 64 KiB, a Blob under 32 MiB, and what
# a Blob inflates to under 32 MiB.
PBF_HEADER_MAX = 64 * 1024
PBF_BLOB_MAX = 32 * 1024 * 1024
PBF_RAW_MAX = 32 * 1024 * 1024
PBF_TYPES = (b"OSMHeader", b"OSMData")


def is_osm_name(path):
    return str(path).lower().endswith(".pbf")


# ---- the spec's source block ------------------------------------------------------------------------------------

def parse_source(source, target):
    """Checks an OSM source block (format osm, or a list layer, or tags) and returns it normalised:
    {'format': 'osm', 'layer': [..], 'tags': [(key, value or None), ...]}."""
    layers = source.get("layer", "points")
    if isinstance(layers, str):
        layers = [layers]
    if not isinstance(layers, list) or not layers or not all(isinstance(x, str) for x in layers):
        raise ImportFailure("spec: source.layer of an OSM extract is a layer or a list of layers "
                            f"({', '.join(LAYERS)})")
    unknown = [x for x in layers if x not in LAYERS]
    if unknown:
        raise ImportFailure(f"spec: source.layer {unknown[0]!r} is not an OSM layer ({', '.join(LAYERS)})")
    if len(set(layers)) != len(layers):
        raise ImportFailure("spec: source.layer names a layer twice")
    if target != "facilities":
        raise ImportFailure("spec: an OpenStreetMap extract feeds target: facilities only")
    raw_tags = source.get("tags")
    if raw_tags is None:
        raise ImportFailure("spec: source.tags is required for an OSM extract: the tags a facility has "
                            "(e.g. [highway=bus_stop, amenity=school]; key=* for any value)")
    if isinstance(raw_tags, str):
        raw_tags = [raw_tags]
    if not isinstance(raw_tags, list) or not raw_tags:
        raise ImportFailure("spec: source.tags is a list of key=value (or key=*) tags")
    tags = []
    for item in raw_tags:
        if not isinstance(item, str) or "=" not in item:
            raise ImportFailure(f"spec: source.tags entry {item!r} must be key=value (or key=*)")
        key, value = item.split("=", 1)
        key, value = key.strip(), value.strip()
        if not TAG_KEY_RE.fullmatch(key) or key in BUILTIN:
            raise ImportFailure(f"spec: source.tags key {key!r} is not an OSM key this reader takes "
                                "(letters, digits, '_', ':', '.', '-')")
        if not value or len(value) > TAG_VALUE_MAX or "\x00" in value:
            raise ImportFailure(f"spec: source.tags entry {item!r} needs a value (or *)")
        tags.append((key, None if value == "*" else value))
    return {**source, "format": "osm", "layer": layers, "tags": tags}


def check_fields(fields):
    """The tags a spec names (not the reader's own columns) must be keys the configuration file can hold."""
    for name in sorted(set(fields) - BUILTIN):
        if not TAG_KEY_RE.fullmatch(name):
            raise ImportFailure(f"spec: field {name!r} is not an OSM key this reader takes "
                                "(letters, digits, '_', ':', '.', '-')")


# ---- the file ---------------------------------------------------------------------------------------------------

def _varint(buf, pos):
    value, shift = 0, 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError("a broken varint")
        byte = buf[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(buf):
    """(field number, wire type, value) of a protobuf message: ints for varints, bytes for length-delimited."""
    pos = 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise ValueError("a field runs past its message")
            value, pos = buf[pos:pos + size], pos + size
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        else:
            raise ValueError(f"wire type {wire}")
        yield number, wire, value


def check_pbf(path, name):
    """Walk the blocks of an OSM PBF file; refuse anything else, broken framing, or what would inflate past the caps.
    Returns (blocks, inflated bytes)."""
    max_bytes, max_ratio = int(settings.IMPORT_UNPACKED_MAX_BYTES), float(settings.IMPORT_UNPACK_MAX_RATIO)
    size = max(path.stat().st_size, 1)
    total, blocks = 0, 0
    with open(path, "rb") as fh:
        while True:
            head = fh.read(4)
            if not head:
                break
            try:
                if len(head) < 4:
                    raise ValueError("the file ends inside a block")
                header_size = int.from_bytes(head, "big")
                if not 0 < header_size <= PBF_HEADER_MAX:
                    raise ValueError(f"a block header of {header_size} bytes")
                header = fh.read(header_size)
                if len(header) < header_size:
                    raise ValueError("the file ends inside a block header")
                kind, data_size = None, None
                for number, wire, value in _fields(header):
                    if number == 1 and wire == 2:
                        kind = bytes(value)
                    elif number == 3 and wire == 0:
                        data_size = value
                if kind not in PBF_TYPES or (blocks == 0 and kind != b"OSMHeader"):
                    raise ValueError("not an OSM PBF block" if blocks else "no OSMHeader block first")
                if data_size is None or not 0 < data_size <= PBF_BLOB_MAX:
                    raise ValueError(f"a block of {data_size} bytes")
                blob = fh.read(data_size)
                if len(blob) < data_size:
                    raise ValueError("the file ends inside a block")
                raw_size, packed, plain = None, False, 0
                for number, wire, value in _fields(blob):
                    if number == 1 and wire == 2:
                        plain = len(value)
                    elif number == 2 and wire == 0:
                        raw_size = value
                    elif number >= 3 and wire == 2:
                        packed = True
                if packed and raw_size is None:
                    raise ValueError("a compressed block that does not say its size")
                inflated = raw_size if packed else plain
                if inflated > PBF_RAW_MAX:
                    raise ValueError(f"a block that inflates to {inflated} bytes")
            except ValueError as exc:
                raise ImportFailure(f"{name}: not a readable OSM PBF file ({exc}); refused "
                                    "(only .osm.pbf extracts are read, not OSM XML)") from None
            blocks += 1
            total += inflated
            if total > max_bytes:
                raise ImportFailure(f"{name}: its blocks inflate to more than the {max_bytes / 2**20:.0f} MB "
                                    "allowed; refused")
    if blocks < 1:
        raise ImportFailure(f"{name}: an empty file is not an OSM PBF extract")
    if total > 1024 * 1024 and total / size > max_ratio:
        raise ImportFailure(f"{name}: its blocks inflate more than {max_ratio:g} times its size "
                            "(a compression bomb?); refused")
    return blocks, total


def config_text(tags):
    """The driver's configuration for one read: every layer with exactly these tags as attributes."""
    attributes = ",".join(tags)
    lines = ["[general]", f"closed_ways_are_polygons={CLOSED_WAYS_ARE_POLYGONS}", "attribute_name_laundering=no"]
    for layer in LAYERS:
        lines += [f"[{layer}]", "osm_id=yes", "osm_version=no", "osm_timestamp=no", "osm_uid=no", "osm_user=no",
                  "osm_changeset=no", f"attributes={attributes}", "other_tags=yes"]
        if layer == "multipolygons":
            lines.append("osm_way_id=yes")
    return "\n".join(lines) + "\n"


def open_options(config_path):
    return {"CONFIG_FILE": str(config_path), "MAX_TMPFILE_SIZE": str(int(settings.IMPORT_OSM_MEMORY_MB)),
            "INTERLEAVED_READING": "NO", "USE_CUSTOM_INDEXING": "YES", "COMPRESS_NODES": "NO"}


# ---- reading ----------------------------------------------------------------------------------------------------

def _element_keys(table, layer):
    """node/ID, way/ID or relation/ID for every row of a layer."""
    osm_id = pc.cast(table.column("osm_id"), pa.string()) if "osm_id" in table.column_names else None
    n = table.num_rows
    if layer == "points":
        return pc.binary_join_element_wise(pa.array(["node/"] * n, pa.string()), osm_id, "")
    if layer == "lines":
        return pc.binary_join_element_wise(pa.array(["way/"] * n, pa.string()), osm_id, "")
    if layer == "multipolygons":
        way = pc.cast(table.column("osm_way_id"), pa.string())
        as_way = pc.binary_join_element_wise(pa.array(["way/"] * n, pa.string()), way, "")
        as_rel = pc.binary_join_element_wise(pa.array(["relation/"] * n, pa.string()), osm_id, "")
        return pc.if_else(pc.is_valid(way), as_way, as_rel)
    return pc.binary_join_element_wise(pa.array(["relation/"] * n, pa.string()), osm_id, "")


def _matched(table, tags):
    """The first filter tag each row has, as key=value (null where none)."""
    n = table.num_rows
    out = pa.nulls(n, pa.string())
    for key, value in reversed(tags):
        col = pc.cast(table.column(key), pa.string())
        has = pc.is_valid(col) if value is None else pc.fill_null(pc.equal(col, value), False)
        label = pc.binary_join_element_wise(pa.array([f"{key}="] * n, pa.string()), col, "")
        out = pc.if_else(has, label, out)
    return out


class OsmReader:
    """The batches of an extract's chosen layers, filtered by tag, as importers.stream expects them."""

    def __init__(self, source, source_spec, fields, batch_rows):
        self.source, self.batch_rows = source, batch_rows
        self.layers = source_spec["layer"]
        self.tags = source_spec["tags"]
        check_fields(fields)
        wanted = {k for k, _ in self.tags} | (set(fields) - BUILTIN)
        self.tag_columns = sorted(wanted)
        self.columns = [*ADDED, *self.tag_columns, "other_tags"]

    @contextmanager
    def configured(self):
        """A private folder under IMPORTS_DIR/tmp holding this read's configuration file; gone at exit."""
        root = Path(settings.IMPORTS_DIR) / "tmp"
        root.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix="osm-", dir=root))
        try:
            config = folder / "osmconf.ini"
            config.write_text(config_text(self.tag_columns), encoding="utf-8")
            yield open_options(config)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def info(self):
        """read_info of the first layer (the caller checked the file with check_pbf first, and checks the driver)."""
        with self.configured() as options:
            return pyogrio.read_info(self.source.gdal_path, layer=self.layers[0], **options)

    def batches(self, make_batch):
        """make_batch(offset, table, wkb) for every batch of rows that match the filter, layer after layer."""
        from .sources import lock_down

        lock_down()
        offset = 0
        try:
            with self.configured() as options:
                for layer in self.layers:
                    with pyogrio.open_arrow(self.source.gdal_path, layer=layer, batch_size=self.batch_rows,
                                            **options) as (meta, reader):
                        geom_name = meta.get("geometry_name") or "wkb_geometry"
                        for record_batch in pa.RecordBatchReader.from_stream(reader):
                            table = pa.Table.from_batches([record_batch])
                            matched = _matched(table, self.tags)
                            keep = pc.is_valid(matched)
                            if not pc.any(keep).as_py():
                                continue
                            table, matched = table.filter(keep), matched.filter(keep)
                            n = table.num_rows
                            columns = {"osm_key": _element_keys(table, layer), "osm_tag": matched,
                                       "osm_layer": pa.array([layer] * n, pa.string())}
                            for name in self.tag_columns + ["other_tags"]:
                                columns[name] = (pc.cast(table.column(name), pa.string())
                                                 if name in table.column_names else pa.nulls(n, pa.string()))
                            wkb = None
                            if geom_name in table.column_names:
                                col = table.column(geom_name).combine_chunks()
                                wkb = col.storage if isinstance(col, pa.ExtensionArray) else col
                            yield make_batch(offset, pa.table(columns), wkb)
                            offset += n
        except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
            text = str(exc).strip().splitlines()
            raise ImportFailure(f"{self.source.name}: can not be read as OSM "
                                f"({self.source.scrub(text[0] if text else exc.__class__.__name__)})") from None

