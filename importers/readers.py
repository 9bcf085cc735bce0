"""Readers: any vector file GDAL reads (through pyogrio), CSV with lon/lat columns, data.mos.ru JSON exports, and
YAML lists of records (the service catalogue: nested questions read best as YAML).

Each returns a SourceData: the attribute table as a pandas DataFrame of strings, the geometries as a numpy
array of shapely objects (None where a row has none), and the CRS the file declares (or None).
"""
import ast
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import shapely

from .errors import ImportFailure


@dataclass
class SourceData:
    frame: pd.DataFrame
    geoms: np.ndarray | None
    crs: str | None
    format: str

    def __len__(self):
        return len(self.frame)


def read_source(path, source_spec):
    path = Path(path)
    if not path.exists():
        raise ImportFailure(f"{path}: no such file")
    if path.is_dir():
        raise ImportFailure(f"{path}: is a directory, not a dataset file")
    fmt = source_spec.get("format", "auto")
    if fmt == "auto":
        fmt = _detect(path)
    try:
        if fmt == "datamos":
            return read_datamos(path, member=source_spec.get("member"))
        if fmt == "csv":
            return read_csv(path, source_spec)
        if fmt == "yaml":
            return read_yaml(path)
        return read_gdal(path, layer=source_spec.get("layer"), encoding=source_spec.get("encoding"))
    except ImportFailure:
        raise
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise ImportFailure(f"{path.name}: can not be read as a vector dataset ({_first_line(exc)})") from None
    except (UnicodeDecodeError, ValueError, OSError, zipfile.BadZipFile) as exc:
        raise ImportFailure(f"{path.name}: can not be read ({_first_line(exc)})") from None


def _first_line(exc):
    text = str(exc).strip().splitlines()
    return text[0] if text else exc.__class__.__name__


def _detect(path):
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".yaml", ".yml"):
        return "yaml"
    if suffix == ".json":
        with open(path, "rb") as fh:
            head = fh.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
        # A GeoJSON file is an object; a data.mos.ru export is a top-level array of records.
        return "datamos" if head.startswith(b"[") else "gdal"
    if suffix == ".zip":
        with zipfile.ZipFile(path) as zf:
            names = [n.lower() for n in zf.namelist()]
        if any(n.endswith(".json") for n in names) and not any(n.endswith((".shp", ".geojson", ".gpkg")) for n in names):
            return "datamos"
    return "gdal"


def read_gdal(path, layer=None, encoding=None):
    kwargs = {}
    if layer is not None:
        kwargs["layer"] = layer
    if encoding:
        kwargs["encoding"] = encoding
    meta, table = pyogrio.read_arrow(str(path), **kwargs)
    geom_col = meta.get("geometry_name") or "wkb_geometry"
    geoms = None
    if geom_col in table.column_names:
        wkb = table.column(geom_col).to_numpy(zero_copy_only=False)
        geoms = shapely.from_wkb(wkb, on_invalid="warn")
        table = table.drop_columns([geom_col])
    frame = table.to_pandas()
    return SourceData(frame=frame, geoms=geoms, crs=meta.get("crs"), format=meta.get("driver") or "gdal")


def read_csv(path, source_spec):
    encoding = source_spec.get("encoding") or "utf-8-sig"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding)
    geoms = None
    lon, lat = source_spec.get("lon"), source_spec.get("lat")
    if lon:
        for col in (lon, lat):
            if col not in frame.columns:
                raise ImportFailure(f"{path.name}: no column {col!r} for coordinates (columns: {', '.join(frame.columns)})")
        x = pd.to_numeric(frame[lon].str.replace(",", ".", regex=False), errors="coerce").to_numpy()
        y = pd.to_numeric(frame[lat].str.replace(",", ".", regex=False), errors="coerce").to_numpy()
        ok = np.isfinite(x) & np.isfinite(y)
        geoms = np.full(len(frame), None, dtype=object)
        geoms[ok] = shapely.points(x[ok], y[ok])
    return SourceData(frame=frame, geoms=geoms, crs=None, format="CSV")


def read_yaml(path):
    """A YAML list of records (mappings), no geometry. Nested lists and mappings become JSON text, as in CSV."""
    import yaml

    try:
        records = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ImportFailure(f"{path.name}: not valid YAML ({_first_line(exc)})") from None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ImportFailure(f"{path.name}: expected a YAML list of records (mappings)")

    def cell(value):
        if value is None:
            return ""
        if isinstance(value, (list, dict)):
            return json.dumps(value, ensure_ascii=False, default=str)
        return str(value)

    frame = pd.DataFrame([{str(k): cell(v) for k, v in r.items()} for r in records]).fillna("")
    return SourceData(frame=frame, geoms=None, crs=None, format="YAML")


def _records_from(path, member):
    if path.suffix.lower() == ".zip":
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if n.lower().endswith(".json")]
            if member:
                names = [n for n in names if n == member]
            if not names:
                raise ImportFailure(f"{path.name}: no JSON file inside the zip")
            data = zf.read(names[0])
    else:
        data = path.read_bytes()
    try:
        records = json.loads(data.decode("utf-8-sig"))
    except ValueError as exc:
        raise ImportFailure(f"{path.name}: not valid JSON ({_first_line(exc)})") from None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ImportFailure(f"{path.name}: a data.mos.ru export is a JSON array of objects")
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


def read_datamos(path, member=None):
    records = _records_from(path, member)
    rows, geoms = [], np.full(len(records), None, dtype=object)
    for i, record in enumerate(records):
        rows.append(_flatten(record))
        try:
            geoms[i] = _geo_data(record.get("geoData"))
        except (ValueError, SyntaxError, TypeError, AttributeError, shapely.errors.GEOSException):
            geoms[i] = None  # rejected later as an empty geometry, with its row number
    frame = pd.DataFrame(rows)
    for col in frame.columns:
        frame[col] = frame[col].map(lambda v: "" if v is None else str(v))
    return SourceData(frame=frame, geoms=geoms, crs="EPSG:4326", format="data.mos.ru JSON")
