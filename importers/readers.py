"""Readers: any vector file GDAL reads (through pyogrio), CSV with lon/lat columns, data.mos.ru JSON exports, and
YAML lists of records (the service catalogue: nested questions read best as YAML).

Each returns a SourceData: the attribute table as a pandas DataFrame of strings, the geometries as a numpy
array of shapely objects (None where a row has none), and the CRS the file declares (or None).
"""
import ast
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyogrio
import shapely
import yaml
from django.conf import settings

from .errors import ImportFailure
from .sources import check_driver, lock_down


@dataclass
class SourceData:
    frame: pd.DataFrame
    geoms: np.ndarray | None
    crs: str | None
    format: str

    def __len__(self):
        return len(self.frame)


# The formats parsed whole in memory (data.mos.ru JSON, CSV, YAML) take several times their size in Python
# objects: past this size they are refused before parsing (GDAL's formats are streamed and only capped by the
# archive limits).
IN_MEMORY_FORMATS = {"datamos", "csv", "yaml"}


# YAML anchors and aliases share one value in many places: harmless as Python objects, but a few lines of nested
# aliases expand to billions of values once records are turned into rows and text ("billion laughs"). Aliases may
# repeat at most this many values in all.
YAML_ALIAS_EXPANSION_MAX = 1_000_000


def load_yaml(text):
    """yaml.safe_load, refusing a document whose aliases would repeat more than YAML_ALIAS_EXPANSION_MAX values."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        sizes = {}

        def expanded(n):  # values under n as the records will see them, each shared node counted once per use
            if id(n) not in sizes:
                children = n.value if isinstance(n, yaml.SequenceNode) else (
                    [part for pair in n.value for part in pair] if isinstance(n, yaml.MappingNode) else [])
                sizes[id(n)] = 1 + sum(expanded(c) for c in children)
            return sizes[id(n)]

        if expanded(node) - len(sizes) > YAML_ALIAS_EXPANSION_MAX:
            raise yaml.YAMLError(f"its aliases (*name) repeat more than {YAML_ALIAS_EXPANSION_MAX:,} values")
        return loader.construct_document(node)
    finally:
        loader.dispose()


def read_source(source, source_spec):
    """Read a SourceFile (importers.sources.prepared) whole, with the reader its format names."""
    path, name = source.path, source.name
    if source.format in IN_MEMORY_FORMATS:
        cap = settings.IMPORT_IN_MEMORY_MAX_BYTES
        if path.stat().st_size > cap:
            raise ImportFailure(f"{name}: {path.stat().st_size / 2**20:.0f} MB is more than the {cap / 2**20:.0f} MB "
                                f"that a {source.format} file may have (OURCITY_IMPORT_IN_MEMORY_MAX_MB)")
    try:
        if source.format == "datamos":
            return read_datamos(path, name=name)
        if source.format == "csv":
            return read_csv(path, source_spec, name=name)
        if source.format == "yaml":
            return read_yaml(path, name=name)
        return read_gdal(source, layer=source_spec.get("layer"), encoding=source_spec.get("encoding"))
    except ImportFailure:
        raise
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise ImportFailure(f"{name}: can not be read as {source.driver} ({source.scrub(_first_line(exc))})") from None
    except (UnicodeDecodeError, ValueError, OSError) as exc:
        raise ImportFailure(f"{name}: can not be read ({source.scrub(_first_line(exc))})") from None
    except RecursionError:
        raise ImportFailure(f"{name}: can not be read (nested too deeply)") from None


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return text[0] if text else exc.__class__.__name__


def gdal_kwargs(source_spec):
    kwargs = {}
    if source_spec.get("layer") is not None:
        kwargs["layer"] = source_spec["layer"]
    if source_spec.get("encoding"):
        kwargs["encoding"] = source_spec["encoding"]
    return kwargs


def read_gdal(source, layer=None, encoding=None):
    """Read with the one driver the file's name allows (see importers.sources); anything else is refused."""
    lock_down()
    kwargs = gdal_kwargs({"layer": layer, "encoding": encoding})
    # read_info names the driver that opened the file (read_arrow's metadata does not).
    info = pyogrio.read_info(source.gdal_path, **kwargs)
    check_driver(info, source)
    meta, table = pyogrio.read_arrow(source.gdal_path, **kwargs)
    geom_col = meta.get("geometry_name") or "wkb_geometry"
    geoms = None
    if geom_col in table.column_names:
        wkb = table.column(geom_col).to_numpy(zero_copy_only=False)
        geoms = shapely.from_wkb(wkb, on_invalid="warn")
        table = table.drop_columns([geom_col])
    frame = table.to_pandas()
    return SourceData(frame=frame, geoms=geoms, crs=meta.get("crs"), format=info["driver"])


def read_csv(path, source_spec, name=None):
    name = name or path.name
    encoding = source_spec.get("encoding") or "utf-8-sig"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding)
    geoms = None
    lon, lat = source_spec.get("lon"), source_spec.get("lat")
    if lon:
        for col in (lon, lat):
            if col not in frame.columns:
                raise ImportFailure(f"{name}: no column {col!r} for coordinates (columns: {', '.join(frame.columns)})")
        x = pd.to_numeric(frame[lon].str.replace(",", ".", regex=False), errors="coerce").to_numpy()
        y = pd.to_numeric(frame[lat].str.replace(",", ".", regex=False), errors="coerce").to_numpy()
        ok = np.isfinite(x) & np.isfinite(y)
        geoms = np.full(len(frame), None, dtype=object)
        geoms[ok] = shapely.points(x[ok], y[ok])
    return SourceData(frame=frame, geoms=geoms, crs=None, format="CSV")


def read_yaml(path, name=None):
    """A YAML list of records (mappings), no geometry. Nested lists and mappings become JSON text, as in CSV."""
    name = name or path.name
    try:
        records = load_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ImportFailure(f"{name}: not valid YAML ({_first_line(exc)})") from None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ImportFailure(f"{name}: expected a YAML list of records (mappings)")

    def cell(value):
        if value is None:
            return ""
        if isinstance(value, (list, dict)):
            return json.dumps(value, ensure_ascii=False, default=str)
        return str(value)

    frame = pd.DataFrame([{str(k): cell(v) for k, v in r.items()} for r in records]).fillna("")
    return SourceData(frame=frame, geoms=None, crs=None, format="YAML")


def _records_from(path, name):
    """The records of a data.mos.ru export (a plain file: an archive was unpacked, within its caps, before)."""
    try:
        records = json.loads(path.read_bytes().decode("utf-8-sig"))
    except ValueError as exc:
        raise ImportFailure(f"{name}: not valid JSON ({_first_line(exc)})") from None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ImportFailure(f"{name}: a data.mos.ru export is a JSON array of objects")
    return records


def _geo_data(value):
    """data.mos.ru geoData: a GeoJSON geometry, sometimes stored as a string (JSON or a Python-literal dict)."""
    if value in (None, "", {}):
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            value = ast.literal_eval(value)  # ValueError/SyntaxError here means a broken cell: caller rejects it
    if not isinstance(value, dict) or "type" not in value:
        raise ValueError("geoData is not a geometry")
    return shapely.geometry.shape(value)


def _flatten(record):
    """Top-level scalars as they are; the first element of a list of objects as Parent.Child; lists as JSON."""
    out = {}
    for key, value in record.items():
        if key in ("geoData", "geodata_center"):
            continue
        if isinstance(value, list) and value and isinstance(value[0], dict):
            for sub_key, sub_value in value[0].items():
                out[f"{key}.{sub_key}"] = sub_value if not isinstance(sub_value, (list, dict)) else json.dumps(sub_value, ensure_ascii=False)
            out[key] = json.dumps(value, ensure_ascii=False)
        elif isinstance(value, (list, dict)):
            out[key] = json.dumps(value, ensure_ascii=False)
        else:
            out[key] = value
    return out


def read_datamos(path, name=None):
    records = _records_from(path, name or path.name)
    rows, geoms = [], np.full(len(records), None, dtype=object)
    for i, record in enumerate(records):
        rows.append(_flatten(record))
        try:
            geoms[i] = _geo_data(record.get("geoData"))
        except (ValueError, SyntaxError, TypeError, AttributeError, RecursionError, MemoryError,
                shapely.errors.GEOSException):
            geoms[i] = None  # rejected later as an empty geometry, with its row number
    frame = pd.DataFrame(rows)
    for col in frame.columns:
        frame[col] = frame[col].map(lambda v: "" if v is None else str(v))
    return SourceData(frame=frame, geoms=geoms, crs="EPSG:4326", format="data.mos.ru JSON")
