"""Mapping specs: a small YAML (or JSON) file that says what the rows of a file become.

The full reference with examples is docs/importing.md. A spec is checked completely before any file is read:
an unknown key, a wrong type or a missing required key is an ImportFailure with one clear line.
"""
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import limits
from .errors import ImportFailure
from .readers import load_yaml

# The targets are the kinds of dataset (facilities.Dataset.target) and the area levels AdminArea's: read from the
# models (limits.choices), never copied here.
def targets():
    return limits.choices("facilities.Dataset.target")


def area_levels():
    return limits.choices("facilities.AdminArea.level")


TEMPLATE_RE = re.compile(r"\{([^{}]+)\}")

COMMON_KEYS = {"dataset", "dataset_name", "target", "mode", "source", "key", "source_url", "licence",
               "invalid_geometry", "require_in_city", "description", "derived"}
TARGET_KEYS = {
    "areas": {"level", "name", "okato", "oktmo", "parent", "jurisdiction"},
    "authorities": {"code", "name", "short_name", "kind", "inn", "ogrn", "parent", "department", "triage",
                    "moderate_answers"},  # issue 10: its departments' answers wait for a moderator
    "facilities": {"type", "owner", "name", "address", "attrs", "types"},
    # The service catalogue and its routing data (routing.models); see docs/importing.md.
    "categories": {"code", "name_ru", "name_en", "group_ru", "group_en", "description_ru", "description_en",
                   "keywords", "keywords_en", "facility_types", "radius_m", "deadline_days", "rule", "fallback", "department",
                   "attributes", "types",
                   "moderate_answers", "confirm_days"},  # issue 10: the answer cycle (docs/importing.md)
    "assignments": {"authority", "category", "department", "department_name"},
    "holidays": {"date", "name"},
    "working_weeks": {"year", "days"},  # importers/working_weeks.py
    "addresses": {"label", "street", "house", "district"},  # importers/addresses.py
}
SOURCE_KEYS = {"format", "layer", "crs", "lon", "lat", "encoding", "member"}
FORMATS = ("auto", "gdal", "datamos", "csv", "yaml")


@dataclass
class Value:
    """Where a target value comes from: a field, a template over fields, or a constant."""

    field: str | None = None
    template: str | None = None
    constant: str | None = None
    value_map: dict | None = None
    default: str | None = None

    def fields(self):
        if self.field:
            return {self.field}
        if self.template:
            return set(TEMPLATE_RE.findall(self.template))
        return set()


@dataclass
class Spec:
    raw: dict
    dataset: str
    target: str
    mode: str
    key: Value
    source: dict
    invalid_geometry: str
    require_in_city: bool
    values: dict = field(default_factory=dict)  # target value name -> Value
    derived: dict = field(default_factory=dict)  # new column name -> Value, computed before anything else
    options: dict = field(default_factory=dict)  # target-specific structured options
    dataset_name: str = ""

    def source_fields(self):
        """Fields the file itself must have (derived columns count through what they are made of)."""
        names = self.referenced_fields() - set(self.derived)
        for value in self.derived.values():
            names |= value.fields()
        return names

    def referenced_fields(self):
        names = set(self.key.fields())
        for value in self.values.values():
            names |= value.fields()
        for option in self.options.values():
            if isinstance(option, dict):
                for v in option.values():
                    if isinstance(v, Value):
                        names |= v.fields()
        names |= set(self.options.get("attrs", []) or [])
        return names


def _value(where, raw, *, allow_constant=False):
    """'FIELD' -> field; 'text {A} {B}' -> template; {'value': c} -> constant; {'field': F, 'map': {...}}."""
    if raw is None:
        return None
    if isinstance(raw, (int, float)) and allow_constant:
        return Value(constant=str(raw))
    if isinstance(raw, str):
        if "{" in raw:
            return Value(template=raw)
        return Value(constant=raw) if allow_constant else Value(field=raw)
    if isinstance(raw, dict):
        unknown = set(raw) - {"field", "value", "map", "default", "template"}
        if unknown:
            raise ImportFailure(f"spec: unknown key {sorted(unknown)[0]!r} in {where}")
        if "value" in raw:
            return Value(constant=str(raw["value"]))
        if "template" in raw:
            return Value(template=str(raw["template"]))
        if "field" not in raw:
            raise ImportFailure(f"spec: {where} needs 'field', 'template' or 'value'")
        value_map = raw.get("map")
        if value_map is not None and not isinstance(value_map, dict):
            raise ImportFailure(f"spec: {where}.map must be a mapping of source value to target value")
        return Value(field=str(raw["field"]),
                     value_map={str(k): str(v) for k, v in value_map.items()} if value_map else None,
                     default=None if raw.get("default") is None else str(raw["default"]))
    raise ImportFailure(f"spec: {where} must be a field name, a template or a mapping")


def _block(where, raw, allowed):
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ImportFailure(f"spec: {where} must be a mapping")
    unknown = set(raw) - allowed
    if unknown:
        raise ImportFailure(f"spec: unknown key {sorted(unknown)[0]!r} in {where} (allowed: {', '.join(sorted(allowed))})")
    return raw


def load_spec(path_or_dict, name=None):
    """A spec from a file (YAML, or JSON by its suffix) or a mapping; `name`: the file as its user knows it."""
    if isinstance(path_or_dict, dict):
        raw = path_or_dict
    else:
        path = Path(path_or_dict)
        name = name or str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            why = getattr(exc, "strerror", None) or exc.__class__.__name__
            raise ImportFailure(f"spec {name}: can not read it ({why})") from None
        try:
            raw = json.loads(text) if path.suffix == ".json" else load_yaml(text)
        except (ValueError, RecursionError, yaml.YAMLError) as exc:
            raise ImportFailure(f"spec {name}: not valid YAML/JSON ({str(exc).splitlines()[0]})") from None
    return parse_spec(raw)


def parse_spec(raw):
    if not isinstance(raw, dict):
        raise ImportFailure("spec: must be a mapping at the top level")
    target = raw.get("target")
    if target not in targets() or target not in TARGET_KEYS:
        raise ImportFailure(f"spec: 'target' must be one of {', '.join(targets())}, got {target!r}")
    allowed = COMMON_KEYS | TARGET_KEYS[target]
    unknown = set(raw) - allowed
    if unknown:
        raise ImportFailure(f"spec: unknown key {sorted(unknown)[0]!r} for target {target} "
                            f"(allowed: {', '.join(sorted(allowed))})")
    dataset = raw.get("dataset")
    if not isinstance(dataset, str) or not re.fullmatch(r"[-a-zA-Z0-9_]{1,64}", dataset):
        raise ImportFailure("spec: 'dataset' must be a code of letters, digits, '-' or '_' (at most 64)")
    mode = raw.get("mode", "full")
    if mode not in ("full", "partial"):
        raise ImportFailure(f"spec: 'mode' must be full or partial, got {mode!r}")
    if "key" not in raw:
        raise ImportFailure("spec: 'key' (the field that identifies a row across imports) is required")
    source = _block("source", raw.get("source") or {}, SOURCE_KEYS)
    if source.get("format", "auto") not in FORMATS:
        raise ImportFailure(f"spec: source.format must be one of {', '.join(FORMATS)}")
    if ("lon" in source) != ("lat" in source):
        raise ImportFailure("spec: source.lon and source.lat go together")
    invalid = raw.get("invalid_geometry", "repair")
    if invalid not in ("repair", "reject"):
        raise ImportFailure("spec: 'invalid_geometry' must be repair or reject")
    spec = Spec(raw=raw, dataset=dataset, target=target, mode=mode, key=_value("key", raw["key"]),
                source=source, invalid_geometry=invalid,
                require_in_city=bool(raw.get("require_in_city", target in ("facilities", "addresses"))),
                dataset_name=str(raw.get("dataset_name") or ""))
    for key, label in (("dataset_name", "name"), ("source_url", "source_url"), ("licence", "licence")):
        problem = limits.too_long(f"facilities.Dataset.{label}", str(raw.get(key) or ""))
        if problem:
            raise ImportFailure(f"spec: {key!r} {problem}")
    derived = raw.get("derived") or {}
    if not isinstance(derived, dict):
        raise ImportFailure("spec: 'derived' must map a new column name to a field with a map, or a template")
    for name, value in derived.items():
        spec.derived[str(name)] = _value(f"derived.{name}", value)
    parse = {"areas": _areas, "authorities": _authorities, "facilities": _facilities, "categories": _categories,
             "assignments": _assignments, "holidays": _holidays, "working_weeks": _working_weeks, "addresses": _addresses}[target]
    parse(spec, raw)
    return spec


def _areas(spec, raw):
    level = raw.get("level")
    if level not in area_levels():
        raise ImportFailure(f"spec: 'level' must be one of {', '.join(area_levels())}")
    spec.options["level"] = level
    spec.values["name"] = _require(raw, "name")
    for name in ("okato", "oktmo"):
        if raw.get(name) is not None:
            spec.values[name] = _value(name, raw[name])
    parent = _block("parent", raw.get("parent"), {"level", "match", "field"})
    if parent:
        if parent.get("match") not in ("okato", "oktmo", "name", "key"):
            raise ImportFailure("spec: parent.match must be okato, oktmo, name or key")
        if parent.get("level") not in area_levels():
            raise ImportFailure(f"spec: parent.level must be one of {', '.join(area_levels())}")
        spec.options["parent"] = {"level": parent["level"], "match": parent["match"],
                                  "value": _value("parent.field", parent.get("field"))}
        if spec.options["parent"]["value"] is None:
            raise ImportFailure("spec: parent.field is required")
    juris = _block("jurisdiction", raw.get("jurisdiction"),
                   {"code", "name", "short_name", "kind", "parent_code", "department"})
    if juris:
        for req in ("code", "name"):
            if req not in juris:
                raise ImportFailure(f"spec: jurisdiction.{req} is required")
        spec.options["jurisdiction"] = {
            "code": _value("jurisdiction.code", juris["code"], allow_constant=True),
            "name": _value("jurisdiction.name", juris["name"], allow_constant=True),
            "short_name": _value("jurisdiction.short_name", juris.get("short_name", juris["name"]), allow_constant=True),
            "kind": str(juris.get("kind", "other")),
            "parent_code": _value("jurisdiction.parent_code", juris.get("parent_code"), allow_constant=True),
            "department": _value("jurisdiction.department", juris.get("department"), allow_constant=True),
        }


def _authorities(spec, raw):
    spec.values["code"] = _require(raw, "code")
    spec.values["name"] = _require(raw, "name")
    spec.values["short_name"] = _value("short_name", raw.get("short_name")) or spec.values["name"]
    for name in ("inn", "ogrn"):
        if raw.get(name) is not None:
            spec.values[name] = _value(name, raw[name])
    kind = raw.get("kind", "other")
    spec.values["kind"] = _value("kind", kind, allow_constant=True)
    parent = raw.get("parent")
    if parent is not None:
        block = _block("parent", parent if isinstance(parent, dict) else {"code": parent}, {"code", "field", "match"})
        if "code" in block:
            spec.options["parent"] = {"match": "code", "value": Value(constant=str(block["code"]))}
        else:
            match = block.get("match", "code")
            if match not in ("code", "inn", "ogrn"):
                raise ImportFailure("spec: parent.match must be code, inn or ogrn")
            spec.options["parent"] = {"match": match, "value": _value("parent.field", block.get("field"))}
    if raw.get("department") is not None:
        spec.values["department"] = _value("department", raw["department"], allow_constant=True)
    if raw.get("triage") is not None:
        spec.values["triage"] = _value("triage", raw["triage"])
    if raw.get("moderate_answers") is not None:
        spec.values["moderate_answers"] = _value("moderate_answers", raw["moderate_answers"])


def _facilities(spec, raw):
    type_raw = raw.get("type")
    if type_raw is None:
        raise ImportFailure("spec: 'type' (a facility type code, or {field, map}) is required")
    spec.values["type"] = _value("type", type_raw, allow_constant=True)
    owner = raw.get("owner")
    if owner is not None:
        block = _block("owner", owner if isinstance(owner, dict) else {"code": owner},
                       {"code", "field", "match", "area_level"})
        if "code" in block:
            spec.options["owner"] = {"match": "code", "value": Value(constant=str(block["code"]))}
        elif "area_level" in block:
            if block["area_level"] not in ("okrug", "district"):
                raise ImportFailure("spec: owner.area_level must be okrug or district")
            spec.options["owner"] = {"match": "area", "level": block["area_level"]}
        else:
            match = block.get("match", "code")
            if match not in ("code", "inn", "ogrn", "name"):
                raise ImportFailure("spec: owner.match must be code, inn, ogrn or name")
            value = _value("owner.field", block.get("field"))
            if value is None:
                raise ImportFailure("spec: owner needs 'code', 'area_level', or 'field' with 'match'")
            spec.options["owner"] = {"match": match, "value": value}
    if raw.get("name") is not None:
        spec.values["name"] = _value("name", raw["name"])
    if raw.get("address") is not None:
        spec.values["address"] = _value("address", raw["address"])
    attrs = raw.get("attrs") or []
    if not isinstance(attrs, list) or not all(isinstance(a, str) for a in attrs):
        raise ImportFailure("spec: 'attrs' must be a list of field names to keep")
    spec.options["attrs"] = attrs
    spec.options["types"] = _declared_types(raw)


def _declared_types(raw):
    types = raw.get("types") or {}
    if not isinstance(types, dict):
        raise ImportFailure("spec: 'types' must map a facility type code to its names {ru: ..., en: ...}")
    declared = {}
    for code, names in types.items():
        if not re.fullmatch(r"[-a-z0-9_]{1,64}", str(code)):
            raise ImportFailure(f"spec: facility type code {code!r} must be lowercase letters, digits, '-' or '_'")
        names = _block(f"types.{code}", names, {"ru", "en", "description"}) or {}
        declared[str(code)] = {"ru": str(names.get("ru") or code), "en": str(names.get("en") or code),
                               "description": str(names.get("description") or "")}
        for key, label in (("ru", "name_ru"), ("en", "name_en"), ("description", "description")):
            problem = limits.too_long(f"facilities.FacilityType.{label}", declared[str(code)][key])
            if problem:
                raise ImportFailure(f"spec: types.{code}.{key} {problem}")
    return declared


CATEGORY_REQUIRED = ("code", "name_ru", "name_en", "group_ru", "group_en", "rule")


def _categories(spec, raw):
    for name in TARGET_KEYS["categories"] - {"types"}:
        if raw.get(name) is not None:
            spec.values[name] = _value(name, raw[name])
        elif name in CATEGORY_REQUIRED:
            raise ImportFailure(f"spec: {name!r} is required")
    spec.options["types"] = _declared_types(raw)


def _match_block(where, raw, matches):
    """'FIELD' (matched by the first kind), or {match: KIND or {field: F} (the kind per row), field: FIELD}."""
    block = _block(where, raw if isinstance(raw, dict) else {"field": raw}, {"match", "field"})
    match = block.get("match", matches[0])
    if isinstance(match, dict):
        match = _value(f"{where}.match", match)
    elif match not in matches:
        raise ImportFailure(f"spec: {where}.match must be one of {', '.join(matches)}, or {{field: FIELD}}")
    else:
        match = Value(constant=match)
    value = _value(f"{where}.field", block.get("field"))
    if value is None:
        raise ImportFailure(f"spec: {where}.field is required")
    return {"match": match, "value": value, "matches": matches}


def _assignments(spec, raw):
    if raw.get("authority") is None:
        raise ImportFailure("spec: 'authority' is required")
    spec.options["authority"] = _match_block("authority", raw["authority"], ("code", "inn", "ogrn", "kind"))
    if raw.get("category") is not None:
        spec.options["category"] = _match_block("category", raw["category"], ("code", "group"))
    for name in ("department", "department_name"):
        if raw.get(name) is not None:
            spec.values[name] = _value(name, raw[name])


def _holidays(spec, raw):
    spec.values["date"] = _require(raw, "date")
    if raw.get("name") is not None:
        spec.values["name"] = _value("name", raw["name"])


def _working_weeks(spec, raw):
    spec.values["year"] = _require(raw, "year")
    spec.values["days"] = _require(raw, "days")


def _require(raw, name):
    if raw.get(name) is None:
        raise ImportFailure(f"spec: {name!r} is required")
    return _value(name, raw[name])


def _addresses(spec, raw):
    from .addresses import parse_spec  # the target's own module (it imports this one)

    parse_spec(spec, raw)
