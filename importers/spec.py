"""Mapping specs: a small YAML (or JSON) file that says what the rows of a file become.

The full reference with examples is docs/importing.md. A spec is checked completely before any file is read:
an unknown key, a wrong type or a missing required key is an ImportFailure with one clear line.
"""
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import limits, osm
from .errors import ImportFailure
from .readers import load_yaml

# The targets are the kinds of dataset (facilities.Dataset.target): read from the model (limits.choices), never
# copied here. Area levels are data (facilities.AreaLevel): an areas spec names its level or declares it, and the
# targets check level codes against the registry (importers.targets).
def targets():
    return limits.choices("facilities.Dataset.target")


LEVEL_CODE_RE = re.compile(r"[-a-z0-9_]{1,16}")
LEVEL_NAME_MAX = 100


TEMPLATE_RE = re.compile(r"\{([^{}]+)\}")

COMMON_KEYS = {"dataset", "dataset_name", "target", "mode", "source", "key", "source_url", "licence",
               "invalid_geometry", "require_in_city", "description", "derived"}
TARGET_KEYS = {
    # authority: an existing authority that has jurisdiction (a reference, never rewritten; issue 11's registry
    # corrections), or jurisdiction: the authority the file itself states (created or updated with the area).
    "areas": {"level", "name", "okato", "oktmo", "parent", "jurisdiction", "authority"},
    "authorities": {"code", "name", "short_name", "kind", "inn", "ogrn", "parent", "department", "triage",
                    "moderate_answers"},  # issue 10: its departments' answers wait for a moderator
    "facilities": {"type", "owner", "name", "address", "attrs", "types"},
    # The service catalogue and its routing data (routing.models); see docs/importing.md.
    # name_<language>, group_<language>, description_<language>: one per configured language (TRANSLATED).
    "categories": {"code", "keywords", "keywords_en", "facility_types", "radius_m", "deadline_days", "rule",
                   "area_level", "fallback", "department", "attributes", "types",
                   "moderate_answers", "confirm_days"},  # issue 10: the answer cycle (docs/importing.md)
    "assignments": {"authority", "category", "department", "department_name"},
    "holidays": {"date", "name"},
    "working_weeks": {"year", "days"},  # importers/working_weeks.py
    "addresses": {"label", "street", "house", "district"},  # importers/addresses.py
}
# Translated fields: a spec key per configured language, <field>_<language> (name_en, name_ru, name_pt_br); only
# the default language's is required (where the field is required at all).
TRANSLATED = {"categories": {"name": True, "group": True, "description": False}}


def language_key(lang):
    """The suffix of a translated spec key for a language code (pt-br -> pt_br)."""
    return lang.replace("-", "_")


def configured_languages():
    from geo_ourcity.languages import configured_languages as configured

    return configured()


def target_keys(target):
    """The spec keys of a target (besides the common ones), the translated ones for the configured languages."""
    keys = set(TARGET_KEYS[target])
    for name in TRANSLATED.get(target, {}):
        keys |= {f"{name}_{language_key(lang)}" for lang in configured_languages()}
    return keys


def translated_keys(raw, name, *, required, where="spec"):
    """{language: raw value} of a translated key (`name`_<language>) in a mapping; the default language's is
    required when `required`; a key for a language that is not configured is refused with one line."""
    languages = configured_languages()
    by_key = {f"{name}_{language_key(lang)}": lang for lang in languages}
    out = {lang: raw[key] for key, lang in by_key.items() if raw.get(key) is not None}
    for key in raw:
        if isinstance(key, str) and key.startswith(f"{name}_") and key not in by_key and \
                re.fullmatch(r"[a-z]{2,3}(_[a-z0-9]{2,8})*", key[len(name) + 1:]):
            raise ImportFailure(f"{where}: {key!r} is for language {key[len(name) + 1:].replace('_', '-')!r}, "
                                f"which is not configured (LANGUAGES: {', '.join(languages)})")
    if required and languages[0] not in out:
        raise ImportFailure(f"{where}: '{name}_{language_key(languages[0])}' (the default language's {name}) "
                            "is required")
    return out


SOURCE_KEYS = {"format", "layer", "crs", "lon", "lat", "encoding", "member", "tags"}
FORMATS = ("auto", "gdal", "datamos", "csv", "yaml", "osm")


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
            for v in (value.values() if isinstance(value, dict) else [value]):  # a translated field: per language
                names |= v.fields()
        for option in self.options.values():
            for part in option if isinstance(option, list) else [option]:  # a list: the owner rules
                if hasattr(part, "fields") and not isinstance(part, Value):  # a reference (importers.refs.Ref)
                    names |= part.fields()
                if isinstance(part, dict):
                    for v in part.values():
                        if isinstance(v, Value) or hasattr(v, "fields"):
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
    if target in TRANSLATED:
        for name, required in TRANSLATED[target].items():
            translated_keys(raw, name, required=required)
    allowed = COMMON_KEYS | target_keys(target)
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
    if source.get("format") == "osm" or "tags" in source or isinstance(source.get("layer"), list):
        osm.parse_source(source, target)  # an OpenStreetMap extract's source block (importers/osm.py)
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
    if isinstance(level, dict):
        block = level
        names = translated_keys(block, "name", required=False, where="spec: level")
        unknown = set(block) - {"code", "rank"} - {f"name_{language_key(lang)}" for lang in names}
        if unknown:
            raise ImportFailure(f"spec: unknown key {sorted(unknown)[0]!r} in level (allowed: code, rank, "
                                f"name_<language>)")
        rank = block.get("rank")
        if not isinstance(rank, int) or isinstance(rank, bool) or not 0 <= rank <= 1000:
            raise ImportFailure("spec: level.rank must be a whole number 0-1000 (0 for the largest areas)")
        for lang, text in names.items():
            if not isinstance(text, str) or len(text) > LEVEL_NAME_MAX or "\x00" in text:
                raise ImportFailure(f"spec: level.name_{language_key(lang)} must be a text of at most "
                                    f"{LEVEL_NAME_MAX} characters")
        spec.options["level_declared"] = {"rank": rank, "name_i18n": {k: str(v) for k, v in names.items()}}
        level = block.get("code")
    if not isinstance(level, str) or not LEVEL_CODE_RE.fullmatch(level):
        raise ImportFailure("spec: 'level' must be an area level's code (lowercase letters, digits, '-' or '_', at "
                            "most 16), or {code, rank, name_<language>} to declare it")
    spec.options["level"] = level
    spec.values["name"] = _require(raw, "name")
    for name in ("okato", "oktmo"):
        if raw.get(name) is not None:
            spec.values[name] = _value(name, raw[name])
    if raw.get("parent") is not None:
        from .refs import parse_ref

        ref = parse_ref("parent", raw["parent"], "area", extra_keys=("level",))
        level = ref.extra.get("level")
        if not isinstance(level, str) or not LEVEL_CODE_RE.fullmatch(level):
            raise ImportFailure("spec: parent.level (the level of the parent areas, an area level's code) is "
                                "required")
        ref.extra["level"] = level
        spec.options["parent"] = ref
    if raw.get("authority") is not None:
        from .refs import parse_ref

        if raw.get("jurisdiction") is not None:
            raise ImportFailure("spec: authority (an existing authority) and jurisdiction (the authority the file "
                                "states) say the same: give one")
        spec.options["authority"] = parse_ref("authority", raw["authority"], "authority")
    juris = _block("jurisdiction", raw.get("jurisdiction"),
                   {"code", "name", "short_name", "kind", "parent", "parent_code", "department"})
    if juris:
        from .refs import parse_ref

        for req in ("code", "name"):
            if req not in juris:
                raise ImportFailure(f"spec: jurisdiction.{req} is required")
        if "parent" in juris and "parent_code" in juris:
            raise ImportFailure("spec: jurisdiction.parent and jurisdiction.parent_code say the same: give one")
        parent = juris.get("parent")
        if juris.get("parent_code") is not None:  # the older spelling: a code, or a template of one
            parent = {"template": juris["parent_code"]} if "{" in str(juris["parent_code"]) else \
                {"code": juris["parent_code"]}
        spec.options["jurisdiction"] = {
            "code": _value("jurisdiction.code", juris["code"], allow_constant=True),
            "name": _value("jurisdiction.name", juris["name"], allow_constant=True),
            "short_name": _value("jurisdiction.short_name", juris.get("short_name", juris["name"]), allow_constant=True),
            "kind": str(juris.get("kind", "other")),
            "parent": None if parent is None else parse_ref("jurisdiction.parent", parent, "authority"),
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
    if raw.get("parent") is not None:
        from .refs import parse_ref

        spec.options["parent"] = parse_ref("parent", raw["parent"], "authority")
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
        # One rule, or a list of rules tried in order: a row takes its owner from the first rule that names one
        # (a field rule whose field is empty, or whose value its map leaves out, passes the row on).
        rules = owner if isinstance(owner, list) else [owner]
        if not rules:
            raise ImportFailure("spec: owner is an empty list")
        spec.options["owners"] = [_owner_rule(f"owner[{i}]" if isinstance(owner, list) else "owner", rule,
                                              last=i == len(rules) - 1) for i, rule in enumerate(rules)]
    if raw.get("name") is not None:
        spec.values["name"] = _value("name", raw["name"])
    if raw.get("address") is not None:
        spec.values["address"] = _value("address", raw["address"])
    attrs = raw.get("attrs") or []
    if not isinstance(attrs, list) or not all(isinstance(a, str) for a in attrs):
        raise ImportFailure("spec: 'attrs' must be a list of field names to keep")
    spec.options["attrs"] = attrs
    spec.options["types"] = _declared_types(raw)


def _owner_rule(where, rule, *, last):
    """One owner rule: {area_level: LEVEL} (the jurisdiction of the covering area of that level), or a reference
    in any of importers.refs' forms (a code, {value, match}, {field, match, map}). A rule with rules after it
    passes on the rows it names nothing for."""
    if isinstance(rule, dict) and "area_level" in rule:
        _block(where, rule, {"area_level"})
        if not isinstance(rule["area_level"], str) or not LEVEL_CODE_RE.fullmatch(rule["area_level"]):
            raise ImportFailure(f"spec: {where}.area_level must be an area level's code")
        if not last:
            raise ImportFailure(f"spec: {where} names every row's owner, so only the last rule may be an area_level")
        return {"match": "area", "level": rule["area_level"]}
    from .refs import parse_ref

    ref = parse_ref(where, rule, "authority")
    if not last and ref.value.field is None and ref.value.template is None:
        raise ImportFailure(f"spec: {where} names every row's owner, so only the last rule may be a constant")
    return {"match": "ref", "ref": ref, "fallback": not last}


LANGUAGE_KEY_RE = re.compile(r"[a-z]{2,3}(_[a-z0-9]{2,8})*")


def _declared_types(raw):
    """{code: {"name_i18n": {language: name}, "description": text}} of the facility types a spec declares. A type's
    name is translated: `name_<language>` per configured language, or the language's code alone
    (`school: {en: School, fi: Koulu}`). Like an area level's name, any of them may be left out (a language without
    one shows the default language's, else another's): a dataset in one language (an OpenStreetMap extract's
    English spec) imports into a city whose default is another; a type named in none is named by its code."""
    types = raw.get("types") or {}
    if not isinstance(types, dict):
        raise ImportFailure("spec: 'types' must map a facility type code to its names {name_<language>: ...}")
    from facilities.models import FACILITY_TYPE_NAME_MAX

    declared = {}
    for code, names in types.items():
        if not re.fullmatch(r"[-a-z0-9_]{1,64}", str(code)):
            raise ImportFailure(f"spec: facility type code {code!r} must be lowercase letters, digits, '-' or '_'")
        where = f"spec: types.{code}"
        names = {} if names is None else names
        if not isinstance(names, dict):
            raise ImportFailure(f"{where} must be a mapping of its names: {{name_<language>: ...}} (and description)")
        block = {}
        for key, text in names.items():
            key = str(key)
            if key != "description" and not key.startswith("name_") and LANGUAGE_KEY_RE.fullmatch(key):
                key = f"name_{key}"  # the short form: the language's code alone
            if key in block:
                raise ImportFailure(f"{where}: the name in {key[5:]!r} is given twice")
            block[key] = text
        by_language = translated_keys(block, "name", required=False, where=where)
        unknown = set(block) - {"description"} - {f"name_{language_key(lang)}" for lang in by_language}
        if unknown:
            raise ImportFailure(f"{where}: unknown key {sorted(unknown)[0]!r} (allowed: name_<language> or the "
                                "language's code, description)")
        name_i18n = {}
        for lang, text in by_language.items():
            if not isinstance(text, (str, int, float)) or isinstance(text, bool) or not str(text).strip():
                raise ImportFailure(f"{where}.name_{language_key(lang)} must be a text")
            text = str(text).strip()
            if "\x00" in text:
                raise ImportFailure(f"{where}.name_{language_key(lang)} holds a NUL character")
            if len(text) > FACILITY_TYPE_NAME_MAX:
                raise ImportFailure(f"{where}.name_{language_key(lang)} is {len(text)} characters long; a name holds "
                                    f"{FACILITY_TYPE_NAME_MAX}")
            name_i18n[lang] = text
        description = block.get("description")
        if description is not None and not isinstance(description, str):
            raise ImportFailure(f"{where}.description must be a text")
        declared[str(code)] = {"name_i18n": name_i18n or {configured_languages()[0]: str(code)},
                               "description": description or ""}
        problem = limits.too_long("facilities.FacilityType.description", declared[str(code)]["description"])
        if problem:
            raise ImportFailure(f"{where}.description {problem}")
    return declared


CATEGORY_REQUIRED = ("code", "rule")


def _categories(spec, raw):
    for name in TARGET_KEYS["categories"] - {"types", "department"}:
        if raw.get(name) is not None:
            spec.values[name] = _value(name, raw[name])
        elif name in CATEGORY_REQUIRED:
            raise ImportFailure(f"spec: {name!r} is required")
    if raw.get("department") is not None:
        from .refs import parse_ref

        spec.values.pop("department", None)
        spec.options["department"] = parse_ref("department", raw["department"], "department")
    # Translated fields: spec.values["name_i18n"] = {language: Value} (the default language's is checked above).
    for name, required in TRANSLATED["categories"].items():
        spec.values[f"{name}_i18n"] = {lang: _value(f"{name}_{language_key(lang)}", value)
                                       for lang, value in translated_keys(raw, name, required=required).items()}
    spec.options["types"] = _declared_types(raw)


def _assignments(spec, raw):
    from .refs import parse_ref

    if raw.get("authority") is None:
        raise ImportFailure("spec: 'authority' is required")
    # Besides the words of every reference, a row may name a kind of authorities or a group of categories: it
    # stands for each of them (importers.load.stage_assignments expands it).
    spec.options["authority"] = parse_ref("authority", raw["authority"], "authority", more_words=("kind",))
    if raw.get("category") is not None:
        spec.options["category"] = parse_ref("category", raw["category"], "category", more_words=("group",))
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
