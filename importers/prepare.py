"""Validation of the small targets (areas, authorities, the catalogue) by the one validation engine.

The columns are read and computed by the Arrow functions of stream.py (the engine the facilities use, batch by
batch), the geometry checked by stream.check_geometries; here a file is validated whole. A row that fails a check
is rejected with its row number (1-based, in file order) and a reason; a problem with the whole file (a CRS that
does not fit the coordinates, a field the spec names that the file lacks) is an ImportFailure.
"""
import datetime
import json
import re
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyproj
import shapely

from . import limits, refs, stream
from .errors import ImportFailure
from .limits import reject_unstorable
from .spec import TRANSLATED, configured_languages, language_key


def authority_kinds():
    return limits.choices("facilities.Authority.kind")


# What each target's columns are stored in (checked with limits.reject_unstorable before anything is staged).
AUTHORITY_FIELDS = {"code": "facilities.Authority.code", "name": "facilities.Authority.name",
                    "short_name": "facilities.Authority.short_name", "inn": "facilities.Authority.inn",
                    "ogrn": "facilities.Authority.ogrn", "parent_code": "facilities.Authority.code",
                    "department": "facilities.Department.name"}
AREA_FIELDS = {"name": "facilities.AdminArea.name", "okato": "facilities.AdminArea.okato",
               "oktmo": "facilities.AdminArea.oktmo", "j_code": "facilities.Authority.code",
               "j_name": "facilities.Authority.name", "j_short_name": "facilities.Authority.short_name",
               "j_parent_code": "facilities.Authority.code", "j_department": "facilities.Department.name"}
CATEGORY_FIELDS = {"code": "routing.Category.code", "keywords": "routing.Category.keywords",
                   "keywords_en": "routing.Category.keywords_en", "rule": "routing.Category.rule"}
# The longest text of one language of a translated field (the columns are JSON: the limits are ours).
TRANSLATED_MAX = {"name": 200, "group": 100, "description": 10_000, "attribute_description": 500,
                  "value_name": 200}
ASSIGNMENT_FIELDS = {"department_code": "facilities.Department.code",
                     "department_name": "facilities.Department.name"}
HOLIDAY_FIELDS = {"name": "routing.Holiday.name"}


@dataclass
class Source:
    """A file read whole: its attribute table (Arrow), its geometries (shapely objects, None where a row has none;
    None when the file has none), the CRS it declares and its format."""

    table: pa.Table
    geoms: np.ndarray | None
    crs: str | None
    format: str

    def __len__(self):
        return self.table.num_rows


def read(path, source_spec):
    """A prepared file (importers.sources.prepared), read whole through the stream's reader."""
    opened = stream.open_stream(path, source_spec)
    table, geoms = stream.read_whole(opened)
    return Source(table=table, geoms=geoms, crs=opened.crs, format=opened.format)


@dataclass
class Prepared:
    rows: pa.Table  # accepted rows: row_no, source_key, target columns, geom (hex EWKB) where needed
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

    def mask(self):
        return self.alive.copy()


def _np(arr):
    return np.asarray(arr.to_numpy(zero_copy_only=False), dtype=object)


def evaluate(value, table, n):
    """A spec Value over the table, as a numpy array of trimmed strings ('' for none): stream.evaluate."""
    return _np(stream.evaluate(value, table, n))


def mapped(value, arr):
    """Apply a value map: values not in the map (and with no default) become None."""
    if not value or not value.value_map:
        return arr
    return _np(stream.map_values(pa.array(list(arr), pa.string()), value.value_map, value.default))


def lower(arr):
    return _np(pc.utf8_lower(pa.array(list(arr), pa.string())))


def duplicated(values):
    """True where an earlier element has the same value (numpy, like pandas' duplicated(keep='first'))."""
    seen, out = set(), np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values):
        if v in seen:
            out[i] = True
        else:
            seen.add(v)
    return out


def check_fields(spec, source):
    names = source.table.column_names
    missing = sorted(f for f in spec.source_fields() if f not in names)
    if missing:
        have = ", ".join(map(str, names[:40]))
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
    """The geometry checks every target shares (stream.check_geometries) over the whole file."""
    counts = {"repaired": 0}
    if source.geoms is None:
        raise ImportFailure("the file has no geometry (for CSV, set source.lon and source.lat in the spec)")
    crs = source_crs(spec, source)
    transformer = stream.transformer_for(crs)
    if transformer is not None:
        counts["reprojected_from"] = crs.to_string()
    geoms, counts["repaired"] = stream.check_geometries(
        spec, source.geoms, rej.reject, rej.mask, transformer=transformer, crs=crs, city=city,
        row_no=np.arange(1, len(source) + 1), polygonal=polygonal)
    return geoms, counts


def hex_ewkb(geoms):
    return shapely.to_wkb(shapely.set_srid(geoms, 4326), hex=True, include_srid=True)


def prepare_keys(spec, source):
    n = len(source)
    keys = evaluate(spec.key, source.table, n)
    rej = Rejector(n, keys)
    rej.reject(keys == "", "missing key")
    dup = duplicated(keys) & (keys != "")
    if dup.any():
        first_row = {}
        for i, k in enumerate(keys):
            first_row.setdefault(k, i + 1)
        rej.reject(dup, lambda i: f"duplicate key {keys[i]!r} (first at row {first_row[keys[i]]})")
    rej.reject(np.array(["\x00" in k for k in keys], dtype=bool), "the key holds a NUL character")
    key_field = limits.SOURCE_KEY_FIELDS.get(spec.target)
    if key_field:
        limit = limits.max_length(key_field)
        rej.reject(np.array([len(k) > limit for k in keys], dtype=bool), f"key longer than {limit} characters")
    return keys, rej


def _arrow(values):
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        return values
    values = list(values)
    if values and all(isinstance(v, (bool, np.bool_)) for v in values):
        return pa.array([bool(v) for v in values], pa.bool_())
    if any(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in values):
        return pa.array([None if v is None else int(v) for v in values], pa.int64())
    return pa.array([None if v is None else str(v) for v in values], pa.string())


def finish(rej, frame_columns, counts, notes=()):
    n = len(rej.alive)
    columns = {"row_no": pa.array(np.arange(1, n + 1))}
    columns.update({name: _arrow(values) for name, values in frame_columns.items()})
    rows = pa.table(columns).filter(pa.array(rej.alive))
    counts = {**counts, "read": n, "rejected": len(rej.items)}
    return Prepared(rows=rows, rejects=sorted(rej.items), counts=counts, notes=list(notes))


def add_derived(spec, source):
    """Add the spec's derived columns to the table (a mapped field or a template over fields)."""
    n = len(source)
    for name, value in spec.derived.items():
        column = stream.evaluate(value, source.table, n)
        if value.value_map:
            column = pc.fill_null(stream.map_values(column, value.value_map, value.default), "")
        source.table = source.table.append_column(name, column)


def prepare_authorities(spec, source):
    n = len(source)
    frame = source.table
    keys, rej = prepare_keys(spec, source)
    v = spec.values
    codes = evaluate(v["code"], frame, n)
    rej.reject(codes == "", "empty authority code")
    code_dup = duplicated(codes) & (codes != "")
    rej.reject(code_dup, lambda i: f"duplicate authority code {codes[i]!r}")
    names = evaluate(v["name"], frame, n)
    rej.reject(names == "", "empty name")
    short = evaluate(v["short_name"], frame, n)
    short = np.where(short == "", names, short)
    kinds = mapped(v["kind"], evaluate(v["kind"], frame, n))
    rej.reject(np.array([k not in authority_kinds() for k in kinds]), lambda i: f"unknown authority kind {kinds[i]!r}")
    inn = evaluate(v.get("inn"), frame, n)
    ogrn = evaluate(v.get("ogrn"), frame, n)
    rej.reject(np.array([bool(x) and not (x.isdigit() and len(x) in (10, 12)) for x in inn], dtype=bool),
               lambda i: f"INN {inn[i]!r} is not 10 or 12 digits")
    rej.reject(np.array([bool(x) and not (x.isdigit() and len(x) in (13, 15)) for x in ogrn], dtype=bool),
               lambda i: f"OGRN {ogrn[i]!r} is not 13 or 15 digits")
    parent_codes = np.array([""] * n, dtype=object)
    parent = spec.options.get("parent")
    if parent:
        # The parent may be a row of this file (by its code, name or official id) or an authority already known.
        lookup = refs.lookups("authority", key="code")
        for word, texts in (("code", codes), ("inn", inn), ("ogrn", ogrn), ("name", names), ("name", short)):
            refs.add_file_records(lookup, word, texts, codes)
        resolved = refs.resolve(parent, frame, n, lookup)
        refs.reject_unresolved(rej, resolved)
        parent_codes = np.array([t or "" for t in resolved.targets], dtype=object)
    department = evaluate(v.get("department"), frame, n)
    triage = np.isin(lower(evaluate(v.get("triage"), frame, n)), ["1", "true", "yes", "да"])
    moderate = lower(evaluate(v.get("moderate_answers"), frame, n))
    rej.reject(np.array([m not in BOOL_WORDS for m in moderate], dtype=bool),
               lambda i: f"moderate_answers {moderate[i]!r} is not yes or no")
    columns = {"triage": triage, "source_key": keys, "code": codes, "name": names, "short_name": short, "kind": kinds,
               "inn": inn, "ogrn": ogrn, "parent_code": parent_codes, "department": department,
               "moderate_answers": np.isin(moderate, TRUE_WORDS)}
    reject_unstorable(rej, columns, AUTHORITY_FIELDS)
    return finish(rej, columns, {})


def prepare_areas(spec, source):
    n = len(source)
    frame = source.table
    keys, rej = prepare_keys(spec, source)
    geoms, counts = prepare_geometry(spec, source, rej, polygonal=True)
    v = spec.values
    names = evaluate(v["name"], frame, n)
    rej.reject(names == "", "empty name")
    okato = evaluate(v.get("okato"), frame, n)
    oktmo = evaluate(v.get("oktmo"), frame, n)
    parent_ids = [None] * n
    parent = spec.options.get("parent")
    if parent:
        resolved = refs.resolve(parent, frame, n, refs.lookups("area", level=parent.extra["level"]))
        rej.reject(np.array([not t and not p for t, p in zip(resolved.targets, resolved.problems)], dtype=bool),
                   f"no parent: the parent ({parent.extra['level']}) is empty")
        refs.reject_unresolved(rej, resolved)
        parent_ids = resolved.targets
    juris = spec.options.get("jurisdiction")
    j = {name: np.array([""] * n, dtype=object) for name in ("j_code", "j_name", "j_short_name", "j_parent_code", "j_department")}
    if juris:
        j["j_code"] = evaluate(juris["code"], frame, n)
        j["j_name"] = evaluate(juris["name"], frame, n)
        j["j_short_name"] = evaluate(juris["short_name"], frame, n)
        j["j_department"] = evaluate(juris["department"], frame, n)
        rej.reject(j["j_code"] == "", "empty jurisdiction authority code")
        # One authority per area: a code given twice would be written twice by one INSERT (load.upsert_areas).
        first = {}
        for i, c in enumerate(j["j_code"]):
            if rej.alive[i] and c:
                first.setdefault(c, i + 1)
        rej.reject(np.array([bool(c) and first.get(c, i + 1) != i + 1 for i, c in enumerate(j["j_code"])], dtype=bool),
                   lambda i: f"jurisdiction authority code {j['j_code'][i]!r} is already the one of row "
                             f"{first[j['j_code'][i]]}")
        if juris["kind"] not in authority_kinds():
            raise ImportFailure(f"spec: jurisdiction.kind {juris['kind']!r} is not one of "
                                f"{', '.join(authority_kinds())}")
        if juris["parent"] is not None:
            resolved = refs.resolve(juris["parent"], frame, n, refs.lookups("authority", key="code"))
            refs.reject_unresolved(rej, resolved)
            j["j_parent_code"] = np.array([t or "" for t in resolved.targets], dtype=object)
    authority = spec.options.get("authority")
    if authority is not None:  # an existing authority by reference: its code, and the authority is left alone
        resolved = refs.resolve(authority, frame, n, refs.lookups("authority", key="code"))
        rej.reject(np.array([not t and not p for t, p in zip(resolved.targets, resolved.problems)], dtype=bool),
                   "empty authority")
        refs.reject_unresolved(rej, resolved)
        j["j_code"] = np.array([t or "" for t in resolved.targets], dtype=object)
    reject_unstorable(rej, {"name": names, "okato": okato, "oktmo": oktmo, **j}, AREA_FIELDS)
    ok = rej.alive
    geom_hex = np.full(n, None, dtype=object)
    geom_hex[ok] = hex_ewkb(geoms[ok])
    columns = {"source_key": keys, "name": names, "okato": okato, "oktmo": oktmo,
               "parent_id": pa.array(parent_ids, pa.int64()), "geom": pa.array(list(geom_hex), pa.string()), **j}
    return finish(rej, columns, counts)


# --------------------------------------------------------------------------------------------------------------
# the service catalogue (routing): categories with their questions, the routing table, holidays
# These files have tens or hundreds of rows, so the checks are plain per-row functions.

LIST_DATATYPES = ("singlevaluelist", "multivaluelist")
SLUG_RE = re.compile(r"[-a-zA-Z0-9_]{1,64}")


def reject_each(rej, n, check):
    """Reject the rows for which check(i) returns a reason (a string)."""
    reasons = {i: check(i) for i in range(n) if rej.alive[i]}
    rej.reject(np.array([bool(reasons.get(i)) for i in range(n)], dtype=bool), lambda i: reasons[i])


def parse_list(text):
    """A list cell: JSON ('["a", "b"]') or codes separated by commas, semicolons or spaces."""
    text = (text or "").strip()
    if text.startswith("["):
        return [str(v).strip() for v in json.loads(text) if str(v).strip()]
    return [v for v in re.split(r"[,;\s]+", text) if v]


# Yes/no cells of the answer cycle's settings (issue 10): anything else is a reject, not a silent "no".
TRUE_WORDS = ["1", "true", "yes", "y", "да"]
BOOL_WORDS = set(TRUE_WORDS) | {"", "0", "false", "no", "n", "нет"}


def parse_bool(text, default=False):
    text = str(text or "").strip().lower()
    return default if text == "" else text in ("1", "true", "yes", "да", "y")


def parse_int(text, default, low, high):
    text = (text or "").strip()
    if text == "":
        return default
    value = float(text.replace(",", "."))
    if value != int(value) or not low <= value <= high:
        raise ValueError
    return int(value)


def normalise_attributes(text):
    """The questions of a category (a JSON list) in one normal form; ValueError names what is wrong."""
    text = (text or "").strip()
    items = json.loads(text) if text else []
    if not isinstance(items, list):
        raise ValueError("attributes must be a list")
    out, seen = [], set()
    for n, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise ValueError(f"attribute {n} is not a mapping")
        code = str(item.get("code") or "").strip()
        if not SLUG_RE.fullmatch(code) or code in seen:
            raise ValueError(f"attribute {n}: code {code!r} is empty, not a slug or repeated")
        seen.add(code)
        datatype = str(item.get("datatype") or "").strip()
        datatypes = limits.choices("routing.CategoryAttribute.datatype")
        if datatype not in datatypes:
            raise ValueError(f"attribute {code}: datatype {datatype!r} is not one of {', '.join(datatypes)}")
        description = _translated_item(item, "description", f"attribute {code}",
                                       TRANSLATED_MAX["attribute_description"])
        values = []
        for v in item.get("values") or []:
            if isinstance(v, dict):
                key = str(v.get("key") or "").strip()
                names = _translated_item(v, "name", f"attribute {code}: value {key!r}", TRANSLATED_MAX["value_name"])
                values.append({"key": key, "name_i18n": names or {_default(): key}})
            else:
                values.append({"key": str(v), "name_i18n": {_default(): str(v)}})
        if (datatype in LIST_DATATYPES) != bool(values) or any(not v["key"] for v in values):
            raise ValueError(f"attribute {code}: a {datatype} " +
                             ("needs a list of values with keys" if datatype in LIST_DATATYPES else "takes no values"))
        if not description.get(_default()):
            raise ValueError(f"attribute {code}: description (or description_{language_key(_default())}, the "
                             "default language's) is required")
        out.append({
            "code": code, "datatype": datatype,
            "required": parse_bool(item.get("required")), "variable": parse_bool(item.get("variable"), True),
            "order": parse_int(str(item.get("order", "")), n, 0, 32767),
            "description_i18n": description,
            "datatype_description": str(item.get("datatype_description") or ""),
            "values": values,
        })
        problem = limits.too_long("routing.CategoryAttribute.datatype_description", out[-1]["datatype_description"])
        if problem:
            raise ValueError(f"attribute {code}: datatype_description {problem}")
    return sorted(out, key=lambda a: (a["order"], a["code"]))


def _default():
    return configured_languages()[0]


def _translated_item(item, name, where, limit):
    """{language: text} of a translated key inside a cell's JSON (`name` for the default language, or
    `name`_<language>); ValueError for a language that is not configured, a value too long or with a NUL."""
    languages = configured_languages()
    out = {}
    if item.get(name):
        out[languages[0]] = str(item[name])
    for key, value in item.items():
        if not (isinstance(key, str) and key.startswith(f"{name}_")) or key == f"{name}_i18n":
            continue
        lang = key[len(name) + 1:].replace("_", "-")
        if lang not in languages:
            if re.fullmatch(r"[a-z]{2,3}(-[a-z0-9]{2,8})*", lang):
                raise ValueError(f"{where}: {key} is for language {lang!r}, which is not configured (LANGUAGES: "
                                 f"{', '.join(languages)})")
            continue
        if value:
            out[lang] = str(value)
    for lang, text in out.items():
        if len(text) > limit or "\x00" in text:
            raise ValueError(f"{where}: {name} ({lang}) is longer than {limit} characters or holds a NUL character")
    return out


def prepare_categories(spec, source, *, type_codes, levels=()):
    """`levels`: the codes of the city's area levels."""
    n = len(source)
    frame = source.table
    keys, rej = prepare_keys(spec, source)
    col = {name: evaluate(spec.values.get(name), frame, n) for name in (
        "code", "keywords", "keywords_en", "facility_types", "radius_m", "deadline_days", "rule", "area_level",
        "fallback", "attributes", "moderate_answers", "confirm_days")}
    department = spec.options.get("department")
    departments = [None] * n
    if department is not None:
        resolved = refs.resolve(department, frame, n, refs.lookups("department"))
        refs.reject_unresolved(rej, resolved)
        departments = resolved.targets
    codes = col["code"]
    rej.reject(np.array([not SLUG_RE.fullmatch(c) for c in codes]),
               lambda i: f"category code {codes[i]!r} must be letters, digits, '-' or '_' (at most 64)")
    rej.reject(duplicated(codes), lambda i: f"duplicate category code {codes[i]!r}")
    # Translated fields: one column per configured language in the spec; the default language's must be filled.
    translated = {}
    default = _default()
    for name, required in TRANSLATED["categories"].items():
        per_lang = {lang: evaluate(value, frame, n) for lang, value in spec.values[f"{name}_i18n"].items()}
        if required:
            rej.reject(per_lang[default] == "", f"empty {name}_{language_key(default)} (the default language's)")
        for lang, texts in per_lang.items():
            limit = TRANSLATED_MAX[name]
            rej.reject(np.array([len(t) > limit for t in texts], dtype=bool),
                       lambda i, t=texts, lg=lang, nm=name, lm=limit: f"{nm}_{language_key(lg)} is {len(t[i])} "
                                                                     f"characters long; at most {lm}")
            rej.reject(np.array(["\x00" in t for t in texts], dtype=bool),
                       f"{name}_{language_key(lang)} holds a NUL character, which the database can not store")
        translated[f"{name}_i18n"] = [json.dumps({lang: str(texts[i]) for lang, texts in per_lang.items() if texts[i]},
                                                 ensure_ascii=False) for i in range(n)]
    # The rule: facility, department, area (with area_level), or an area level's code (the area rule of that level).
    rule_words = {"facility", "department", "area"}
    raw_rules = np.array([r.lower() for r in col["rule"]], dtype=object)
    rej.reject(np.array([r not in rule_words and r not in levels for r in raw_rules]),
               lambda i: f"rule {col['rule'][i]!r} is not facility, department, area or one of the city's area "
                         f"levels ({', '.join(levels) or 'none loaded'})")
    rules = np.array(["area" if r in levels and r not in rule_words else r for r in raw_rules], dtype=object)
    area_levels = np.array([""] * n, dtype=object)
    for i in range(n):
        given, fallback = col["area_level"][i].lower(), col["fallback"][i].lower()
        if raw_rules[i] in levels and raw_rules[i] not in rule_words:
            area_levels[i] = raw_rules[i]
        elif raw_rules[i] == "area":
            area_levels[i] = given
        elif raw_rules[i] == "facility":
            area_levels[i] = given or ("" if fallback in ("", "department") else fallback)
    rej.reject(np.array([r == "area" and not lv for r, lv in zip(rules, area_levels)], dtype=bool),
               "the area rule needs area_level (the level whose area's authority answers)")
    rej.reject(np.array([bool(lv) and lv not in levels for lv in area_levels], dtype=bool),
               lambda i: f"area level {area_levels[i]!r} is not one of the city's area levels "
                         f"({', '.join(levels) or 'none loaded'}; load its areas first)")
    rej.reject(np.array([raw_rules[i] == "facility" and col["fallback"][i].lower() not in ("", "department")
                         and col["fallback"][i].lower() not in levels for i in range(n)], dtype=bool),
               lambda i: f"fallback {col['fallback'][i]!r} is not department or one of the city's area levels")
    out = {name: [None] * n for name in ("radius_m", "deadline_days", "type_codes", "department_id", "attributes",
                                         "keywords", "keywords_en", "moderate_answers", "confirm_days")}

    def check(i):
        try:
            out["radius_m"][i] = parse_int(col["radius_m"][i], 0, 0, 100_000)
        except ValueError:
            return f"radius_m {col['radius_m'][i]!r} is not a whole number of metres (0-100000)"
        try:
            out["deadline_days"][i] = parse_int(col["deadline_days"][i], 8, 1, 365)
        except ValueError:
            return f"deadline_days {col['deadline_days'][i]!r} is not a whole number of working days (1-365)"
        try:
            out["confirm_days"][i] = parse_int(col["confirm_days"][i], 15, 1, 365)
        except ValueError:
            return f"confirm_days {col['confirm_days'][i]!r} is not a whole number of days (1-365)"
        moderate = col["moderate_answers"][i].strip().lower()
        if moderate not in BOOL_WORDS:
            return f"moderate_answers {col['moderate_answers'][i]!r} is not yes or no"
        out["moderate_answers"][i] = moderate in TRUE_WORDS
        try:
            types = parse_list(col["facility_types"][i])
        except ValueError:
            return f"facility_types {col['facility_types'][i]!r} is not a list of type codes"
        unknown = [t for t in types if t not in type_codes]
        if unknown:
            return f"unknown facility type {unknown[0]!r} (declare it under 'types' in the spec)"
        if rules[i] == "facility" and not types:
            return "the facility rule needs facility_types"
        out["type_codes"][i] = json.dumps(sorted(set(types)))
        out["department_id"][i] = departments[i]
        try:
            out["attributes"][i] = json.dumps(normalise_attributes(col["attributes"][i]), ensure_ascii=False)
        except ValueError as exc:
            return f"attributes: {exc}"
        for name in ("keywords", "keywords_en"):
            try:
                out[name][i] = ", ".join(parse_list(col[name][i])) if col[name][i].startswith("[") else col[name][i]
            except ValueError:
                return f"{name}: not a list"
        return None

    reject_each(rej, n, check)
    keywords = {name: np.array([k or "" for k in out[name]], dtype=object) for name in ("keywords", "keywords_en")}
    reject_unstorable(rej, {**col, "rule": rules, **keywords}, CATEGORY_FIELDS)
    columns = {"source_key": keys, "code": codes, "rule": rules, "area_level_id": area_levels, **keywords,
               "radius_m": pa.array(out["radius_m"], pa.int64()),
               "deadline_days": pa.array(out["deadline_days"], pa.int64()),
               "moderate_answers": pa.array(out["moderate_answers"], pa.bool_()),
               "confirm_days": pa.array(out["confirm_days"], pa.int64()),
               "department_id": pa.array(out["department_id"], pa.int64()),
               "type_codes": out["type_codes"], "attributes": out["attributes"], **translated}
    return finish(rej, columns, {})


def prepare_assignments(spec, source):
    """Rows of the routing table; authorities and categories are matched (and expanded) in SQL (load.py)."""
    n = len(source)
    frame = source.table
    keys, rej = prepare_keys(spec, source)
    columns = {"source_key": keys}
    # A reference to one authority or category is resolved here (refs); a kind of authorities or a group of
    # categories stands for each of them, expanded in SQL (load.stage_assignments).
    for name, many in (("authority", "kind"), ("category", "group")):
        ref = spec.options.get(name)
        if ref is None:
            columns.update({f"{name}_match": np.array([""] * n, dtype=object),
                            f"{name}_ref": np.array([""] * n, dtype=object), f"{name}_id": [None] * n})
            continue
        resolved = refs.resolve(ref, frame, n, refs.lookups(name))
        refs.reject_unresolved(rej, resolved)
        texts = resolved.texts
        columns[f"{name}_match"] = np.array([many if w == many else "id" for w in resolved.words], dtype=object)
        columns[f"{name}_ref"] = np.array([t if w == many else "" for t, w in zip(texts, resolved.words)],
                                          dtype=object)
        columns[f"{name}_id"] = pa.array(resolved.targets, pa.int64())
        columns[f"{name}_given"] = texts
    rej.reject(columns["authority_given"] == "", "empty authority")
    department = evaluate(spec.values.get("department"), frame, n)
    department = np.where(department == "", "main", department)
    columns["department_code"] = department
    columns["department_name"] = evaluate(spec.values.get("department_name"), frame, n)
    reject_unstorable(rej, columns, ASSIGNMENT_FIELDS)
    return finish(rej, columns, {})


def _date(text):
    """'YYYY-MM-DD' as a date, else None."""
    if not re.fullmatch(r"\d{4}-\d{1,2}-\d{1,2}", text):
        return None
    try:
        return datetime.datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        return None


def prepare_holidays(spec, source):
    n = len(source)
    frame = source.table
    keys, rej = prepare_keys(spec, source)
    raw = evaluate(spec.values["date"], frame, n)
    dates = [_date(t) for t in raw]
    rej.reject(np.array([d is None for d in dates], dtype=bool), lambda i: f"date {raw[i]!r} is not YYYY-MM-DD")
    rej.reject(duplicated(dates) & np.array([d is not None for d in dates], dtype=bool),
               lambda i: f"duplicate date {raw[i]}")
    columns = {"source_key": keys, "date": np.array([d.isoformat() if d else None for d in dates], dtype=object),
               "name": evaluate(spec.values.get("name"), frame, n)}
    reject_unstorable(rej, columns, HOLIDAY_FIELDS)
    return finish(rej, columns, {})
