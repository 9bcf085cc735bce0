"""Validation in bulk, before anything touches the database: keys, geometry, CRS, codes, owners.

Every check is vectorised (pandas, shapely 2) so a million rows take seconds. A row that fails a check is
rejected with its row number (1-based, in file order) and a reason; a problem with the whole file (a CRS that
does not fit the coordinates, a field the spec names that the file lacks) is an ImportFailure.
"""
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyproj
import shapely

from .errors import ImportFailure
from .spec import TEMPLATE_RE

AUTHORITY_KINDS = {"city", "city_department", "prefecture", "district_council", "institution", "contractor", "other"}


@dataclass
class Prepared:
    rows: pd.DataFrame  # accepted rows: row_no, source_key, target columns, geom (hex EWKB) where needed
    rejects: list = field(default_factory=list)  # (row_no, key, reason)
    counts: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)


class Rejector:
    """Collects rejects; each row is rejected once, for the first reason found."""

    def __init__(self, n, keys):
        self.alive = np.ones(n, dtype=bool)
        self.keys = keys
        self.items = []

    def reject(self, mask, reason):
        mask = np.asarray(mask, dtype=bool) & self.alive
        for i in np.flatnonzero(mask):
            text = reason(i) if callable(reason) else reason
            self.items.append((int(i) + 1, self.keys[i], text))
        self.alive &= ~mask


def as_text(series):
    """A column as stripped strings: None/NaN -> '', 12.0 -> '12' (codes read from files as numbers)."""
    if pd.api.types.is_float_dtype(series):
        values = series.to_numpy()
        integral = np.isfinite(values) & (np.floor(values) == values)
        if integral.all() or (~np.isfinite(values) | integral).all():
            return series.astype("Int64").astype(str).replace("<NA>", "")
    if pd.api.types.is_integer_dtype(series) or pd.api.types.is_bool_dtype(series):
        return series.astype(str)
    return series.astype(object).where(series.notna(), "").astype(str).str.strip()


def evaluate(value, frame, n):
    """A spec Value over the frame, as a Series of strings."""
    if value is None:
        return pd.Series([""] * n, index=frame.index, dtype=object)
    if value.constant is not None:
        return pd.Series([value.constant] * n, index=frame.index, dtype=object)
    if value.template is not None:
        parts = TEMPLATE_RE.split(value.template)
        out = pd.Series([""] * n, index=frame.index, dtype=object)
        for i, part in enumerate(parts):
            out = out + (as_text(frame[part]) if i % 2 else part)
        return out.str.strip()
    return as_text(frame[value.field])


def mapped(value, series):
    """Apply a value map: values not in the map (and with no default) become None."""
    if not value or not value.value_map:
        return series
    out = series.map(value.value_map)
    if value.default is not None:
        out = out.fillna(value.default)
    return out.astype(object).where(out.notna(), None)


def check_fields(spec, source):
    missing = sorted(f for f in spec.source_fields() if f not in source.frame.columns)
    if missing:
        have = ", ".join(map(str, source.frame.columns[:40]))
        raise ImportFailure(f"spec refers to field {missing[0]!r}, which the file does not have (fields: {have})")


def source_crs(spec, source):
    declared = spec.source.get("crs")
    file_crs = source.crs
    try:
        file = pyproj.CRS.from_user_input(file_crs) if file_crs else None
        given = pyproj.CRS.from_user_input(declared) if declared else None
    except pyproj.exceptions.CRSError:
        raise ImportFailure(f"unknown CRS {declared or file_crs!r}: give an EPSG code such as EPSG:4326") from None
    if file and given and not file.equals(given, ignore_axis_order=True):
        raise ImportFailure(f"the file declares {file.to_string()} but the spec says {declared}: remove source.crs "
                            "from the spec, or fix the file")
    crs = file or given
    if crs is None:
        if source.format == "CSV":
            return pyproj.CRS.from_epsg(4326)
        raise ImportFailure("the file does not declare its CRS: set source.crs in the spec (e.g. EPSG:4326)")
    return crs


def prepare_geometry(spec, source, rej, *, polygonal=False, city=None):
    """Reproject to EPSG:4326, drop Z, repair or reject invalid geometry, reject empty and out-of-city rows."""
    n = len(source)
    counts = {"repaired": 0}
    if source.geoms is None:
        raise ImportFailure("the file has no geometry (for CSV, set source.lon and source.lat in the spec)")
    geoms = source.geoms.copy()
    missing = pd.isna(geoms)
    present = ~missing
    missing |= present & shapely.is_empty(np.where(present, geoms, shapely.Point()))
    rej.reject(missing, "empty geometry")
    ok = ~missing
    crs = source_crs(spec, source)
    geoms[ok] = shapely.force_2d(geoms[ok])
    if crs.to_epsg() != 4326:
        transformer = pyproj.Transformer.from_crs(crs, 4326, always_xy=True)
        geoms[ok] = shapely.transform(geoms[ok], lambda xy: np.column_stack(transformer.transform(xy[:, 0], xy[:, 1])))
        counts["reprojected_from"] = crs.to_string()
    if ok.any():
        bounds = shapely.bounds(geoms[ok])
        bad = ~np.isfinite(bounds).all(axis=1) | (bounds[:, 0] < -180) | (bounds[:, 2] > 180) | (bounds[:, 1] < -90) | (bounds[:, 3] > 90)
        if bad.any():
            first = np.flatnonzero(ok)[np.flatnonzero(bad)[0]]
            x, y = bounds[np.flatnonzero(bad)[0], :2]
            raise ImportFailure(
                f"coordinates do not fit {crs.to_string()} (row {first + 1}: {x:.6g}, {y:.6g} is not a longitude/"
                f"latitude after reprojection): set source.crs in the spec to the file's real CRS")
    valid = np.ones(n, dtype=bool)
    valid[ok] = shapely.is_valid(geoms[ok])
    invalid = ok & ~valid
    if invalid.any():
        if spec.invalid_geometry == "reject":
            reasons = dict(zip(np.flatnonzero(invalid), shapely.is_valid_reason(geoms[invalid])))
            rej.reject(invalid, lambda i: f"invalid geometry: {reasons[i]}")
        else:
            geoms[invalid] = shapely.make_valid(geoms[invalid])
            counts["repaired"] = int(invalid.sum())
    ok = rej.alive.copy()
    if polygonal:
        geoms[ok] = [_multipolygon(g) for g in geoms[ok]]
        rej.reject(ok & pd.isna(geoms), "not a polygon (admin areas must be polygons)")
    elif ok.any():
        # make_valid may have produced a collapsed or empty geometry
        rej.reject(ok & shapely.is_empty(np.where(ok, geoms, shapely.Point())), "empty geometry after repair")
    if city is not None:
        ok = rej.alive.copy()
        inside = np.zeros(n, dtype=bool)
        inside[ok] = shapely.intersects(city, geoms[ok])
        rej.reject(ok & ~inside, "outside the city (no admin area covers it)")
    return geoms, counts


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


def hex_ewkb(geoms):
    return shapely.to_wkb(shapely.set_srid(geoms, 4326), hex=True, include_srid=True)


def prepare_keys(spec, source):
    n = len(source)
    keys = evaluate(spec.key, source.frame, n).to_numpy()
    rej = Rejector(n, keys)
    rej.reject(keys == "", "missing key")
    first_row = {}
    dup = pd.Series(keys).duplicated(keep="first").to_numpy() & (keys != "")
    if dup.any():
        for i, k in enumerate(keys):
            first_row.setdefault(k, i + 1)
        rej.reject(dup, lambda i: f"duplicate key {keys[i]!r} (first at row {first_row[keys[i]]})")
    too_long = np.array([len(k) > 200 for k in keys], dtype=bool)
    rej.reject(too_long, "key longer than 200 characters")
    return keys, rej


def finish(rej, frame_columns, counts, notes=()):
    rows = pd.DataFrame(frame_columns)
    rows.insert(0, "row_no", np.arange(1, len(rows) + 1))
    rows = rows[rej.alive].reset_index(drop=True)
    counts = {**counts, "read": len(rej.alive), "rejected": len(rej.items)}
    return Prepared(rows=rows, rejects=sorted(rej.items), counts=counts, notes=list(notes))


def prepare_facilities(spec, source, *, type_codes, owners, city):
    n = len(source)
    frame = source.frame
    keys, rej = prepare_keys(spec, source)
    geoms, counts = prepare_geometry(spec, source, rej, city=city)
    type_value = spec.values["type"]
    raw_types = evaluate(type_value, frame, n)
    types = mapped(type_value, raw_types).to_numpy()
    raw_types = raw_types.to_numpy()
    rej.reject(np.array([t not in type_codes for t in types]), lambda i: f"unknown facility type value {raw_types[i]!r}")
    owner = spec.options.get("owner")
    owner_id = pd.Series([None] * n, dtype=object)
    if owner and owner["match"] != "area":
        refs = evaluate(owner["value"], frame, n)
        lookup = owners[owner["match"]]
        owner_id = refs.map(lambda r: lookup.get(r) if r else None)
        refs_arr = refs.to_numpy()
        ambiguous = owner_id.map(lambda v: v == "ambiguous").to_numpy()
        rej.reject(ambiguous, lambda i: f"owner {owner['match']} {refs_arr[i]!r} matches several authorities")
        rej.reject(owner_id.isna().to_numpy(), lambda i: f"unknown owner: no authority with {owner['match']} {refs_arr[i]!r}")
        owner_id = owner_id.where(~owner_id.isin(["ambiguous"]), None)
    names = evaluate(spec.values.get("name"), frame, n).str.slice(0, 500)
    addresses = evaluate(spec.values.get("address"), frame, n).str.slice(0, 500)
    attrs = None
    if spec.options["attrs"]:
        sub = pd.DataFrame({a: as_text(frame[a]) for a in spec.options["attrs"]})
        attrs = sub.to_json(orient="records", lines=True, force_ascii=False).splitlines()
    ok = rej.alive
    geom_hex = np.full(n, None, dtype=object)
    geom_hex[ok] = hex_ewkb(geoms[ok])
    columns = {
        "source_key": keys,
        "type_code": types,
        "owner_id": pd.array(owner_id.where(owner_id.notna(), None).tolist(), dtype="Int64"),
        "name": names.to_numpy(),
        "address": addresses.to_numpy(),
        "attrs": attrs if attrs is not None else ["{}"] * n,
        "geom": geom_hex,
    }
    return finish(rej, columns, counts)


def add_derived(spec, source):
    """Add the spec's derived columns to the frame (a mapped field or a template over fields)."""
    n = len(source.frame)
    for name, value in spec.derived.items():
        values = mapped(value, evaluate(value, source.frame, n))
        source.frame[name] = values.where(values.notna(), "").astype(str) if value.value_map else values


def prepare_authorities(spec, source, *, known_codes):
    n = len(source)
    frame = source.frame
    keys, rej = prepare_keys(spec, source)
    v = spec.values
    codes = evaluate(v["code"], frame, n).to_numpy()
    rej.reject(codes == "", "empty authority code")
    code_dup = pd.Series(codes).duplicated(keep="first").to_numpy() & (codes != "")
    rej.reject(code_dup, lambda i: f"duplicate authority code {codes[i]!r}")
    names = evaluate(v["name"], frame, n).to_numpy()
    rej.reject(names == "", "empty name")
    short = evaluate(v["short_name"], frame, n).to_numpy()
    short = np.where(short == "", names, short)
    kinds = mapped(v["kind"], evaluate(v["kind"], frame, n)).to_numpy()
    rej.reject(np.array([k not in AUTHORITY_KINDS for k in kinds]), lambda i: f"unknown authority kind {kinds[i]!r}")
    inn = evaluate(v.get("inn"), frame, n).to_numpy()
    ogrn = evaluate(v.get("ogrn"), frame, n).to_numpy()
    rej.reject(np.array([bool(x) and not (x.isdigit() and len(x) in (10, 12)) for x in inn]),
               lambda i: f"INN {inn[i]!r} is not 10 or 12 digits")
    rej.reject(np.array([bool(x) and not (x.isdigit() and len(x) in (13, 15)) for x in ogrn]),
               lambda i: f"OGRN {ogrn[i]!r} is not 13 or 15 digits")
    parent_codes = np.array([""] * n, dtype=object)
    parent = spec.options.get("parent")
    if parent:
        refs = evaluate(parent["value"], frame, n).to_numpy()
        in_file = {"code": set(codes), "inn": {}, "ogrn": {}}
        if parent["match"] == "code":
            known = known_codes["code"]
            parent_codes = refs
            unknown = np.array([bool(r) and r not in known and r not in in_file["code"] for r in refs])
        else:
            lookup = known_codes[parent["match"]]
            file_lookup = dict(zip(inn if parent["match"] == "inn" else ogrn, codes))
            parent_codes = np.array([file_lookup.get(r) or lookup.get(r) or "" for r in refs], dtype=object)
            unknown = np.array([bool(r) and not p for r, p in zip(refs, parent_codes)])
        rej.reject(unknown, lambda i: f"unknown parent authority {refs[i]!r}")
    department = evaluate(v.get("department"), frame, n).to_numpy()
    triage = evaluate(v.get("triage"), frame, n).str.lower().isin(["1", "true", "yes", "да"]).to_numpy()
    columns = {"triage": triage, "source_key": keys, "code": codes, "name": names, "short_name": short, "kind": kinds,
               "inn": inn, "ogrn": ogrn, "parent_code": parent_codes, "department": department}
    return finish(rej, columns, {})


def prepare_areas(spec, source, *, area_lookup, authority_codes):
    n = len(source)
    frame = source.frame
    keys, rej = prepare_keys(spec, source)
    geoms, counts = prepare_geometry(spec, source, rej, polygonal=True)
    v = spec.values
    names = evaluate(v["name"], frame, n).to_numpy()
    rej.reject(names == "", "empty name")
    okato = evaluate(v.get("okato"), frame, n).to_numpy()
    oktmo = evaluate(v.get("oktmo"), frame, n).to_numpy()
    parent_ids = pd.array([None] * n, dtype="Int64")
    parent = spec.options.get("parent")
    if parent:
        refs = evaluate(parent["value"], frame, n).to_numpy()
        lookup = area_lookup(parent["level"], parent["match"])
        parent_ids = pd.array([lookup.get(r) for r in refs], dtype="Int64")
        rej.reject(np.array([pd.isna(p) for p in parent_ids]),
                   lambda i: f"no {parent['level']} with {parent['match']} {refs[i]!r} (load it first)")
    juris = spec.options.get("jurisdiction")
    j = {name: np.array([""] * n, dtype=object) for name in ("j_code", "j_name", "j_short_name", "j_parent_code", "j_department")}
    if juris:
        j["j_code"] = evaluate(juris["code"], frame, n).to_numpy()
        j["j_name"] = evaluate(juris["name"], frame, n).to_numpy()
        j["j_short_name"] = evaluate(juris["short_name"], frame, n).to_numpy()
        j["j_department"] = evaluate(juris["department"], frame, n).to_numpy()
        rej.reject(j["j_code"] == "", "empty jurisdiction authority code")
        if juris["kind"] not in AUTHORITY_KINDS:
            raise ImportFailure(f"spec: jurisdiction.kind {juris['kind']!r} is not one of {', '.join(sorted(AUTHORITY_KINDS))}")
        if juris["parent_code"] is not None:
            pc = evaluate(juris["parent_code"], frame, n).to_numpy()
            j["j_parent_code"] = pc
            rej.reject(np.array([bool(c) and c not in authority_codes for c in pc]),
                       lambda i: f"unknown parent authority {pc[i]!r} for the jurisdiction authority")
    ok = rej.alive
    geom_hex = np.full(n, None, dtype=object)
    geom_hex[ok] = hex_ewkb(geoms[ok])
    columns = {"source_key": keys, "name": names, "okato": okato, "oktmo": oktmo, "parent_id": parent_ids,
               "geom": geom_hex, **j}
    return finish(rej, columns, counts)
