"""References from a spec to other records: one resolver, the same forms and words for every target.

A spec key that names another record (a facility's `owner`, an authority's or an area's `parent`, an area
jurisdiction's `parent`, a category's `department`, a routing-table row's `authority` and `category`) is written in
one of these forms (docs/importing.md, "References"):

    owner: mos                                   # one record for every row: its code
    owner: {code: mos}                           # the same
    owner: {value: "Department of Health", match: name}     # one record for every row, found by its name
    owner: {field: INN, match: inn}              # per row: a field (or a template) holding the INN
    owner: {field: OWNER, match: {field: HOW}}   # per row, and the way to match it per row too

`match` is one of the kind's words (WORDS), `code` when left out: `code` (the record's code; an area's key in its
dataset), `name` (an authority's name or short name, a department's name or its authority's, an area's name, a
category's name in any configured language) and the official ids (`inn`, `ogrn` of an authority, and so of its main
department; `okato`, `oktmo` of an area). A value that names no record, or a name that several records share, is a
rejected row with one line (`unknown owner: no authority with name 'X'`; `owner: 2 authorities have the name 'X':
use its code or an official id`); a word the kind does not know stops the import before any file is read.
"""
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from facilities.models import AdminArea, Authority, Department

from . import stream
from .errors import ImportFailure
from .spec import Value, _value

AMBIGUOUS = -1

# The words a reference of each kind may match by; a target may add words that select many records (the routing
# table's `kind` of authorities and `group` of categories, which it expands in SQL: importers.load).
WORDS = {
    "authority": ("code", "name", "inn", "ogrn"),
    "department": ("code", "name", "inn", "ogrn"),
    "area": ("code", "name", "okato", "oktmo"),
    "category": ("code", "name"),
}
LABELS = {"authority": ("authority", "authorities"), "department": ("department", "departments"),
          "area": ("area", "areas"), "category": ("category", "categories")}
FORM_KEYS = {"code", "value", "field", "template", "map", "default", "match"}


@dataclass
class Ref:
    """A parsed reference: the text per row (`value`), how it is matched (`match`: a constant word or a field)."""

    kind: str
    where: str
    value: Value
    match: Value
    words: tuple
    extra: dict = field(default_factory=dict)  # other keys of the block the target reads (an area's `level`)

    def fields(self):
        return self.value.fields() | self.match.fields()


def _text(where, raw):
    """A scalar of a spec written as text; a bool (YAML's yes/no/on/off unquoted) or a structure is refused."""
    if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
        raise ImportFailure(f"spec: {where} must be a text (quote yes, no, on, off)")
    return str(raw)


def _value_map(where, raw):
    if not isinstance(raw, dict) or not raw:
        raise ImportFailure(f"spec: {where}.map must be a mapping of source value to the record's code, name or id")
    out = {}
    for key, value in raw.items():
        out[_text(f"{where}.map key {key!r}", key)] = _text(f"{where}.map[{key!r}]", value).strip()
    return out


def parse_ref(where, raw, kind, *, more_words=(), extra_keys=()):
    """A reference in any of the forms above; ImportFailure (one line) for a form or word that is not one."""
    words = WORDS[kind] + tuple(more_words)
    if isinstance(raw, (str, int, float)) and not isinstance(raw, bool):
        text = str(raw).strip()
        if not text:
            raise ImportFailure(f"spec: {where} is empty: give a code, or leave the key out")
        value = Value(template=text) if "{" in text else Value(constant=text)  # a code, or a template of one
        return Ref(kind, where, value, Value(constant="code"), words)
    if not isinstance(raw, dict):
        raise ImportFailure(f"spec: {where} must be a code, or a mapping with code, value or field (and match)")
    unknown = set(raw) - FORM_KEYS - set(extra_keys)
    if unknown:
        raise ImportFailure(f"spec: unknown key {sorted(unknown)[0]!r} in {where} (allowed: "
                            f"{', '.join(sorted(FORM_KEYS | set(extra_keys)))})")
    extra = {k: raw[k] for k in extra_keys if k in raw}
    given = [k for k in ("code", "value", "field", "template") if k in raw]
    if len(given) != 1:
        raise ImportFailure(f"spec: {where} needs exactly one of code, value, field or template")
    (how,) = given
    text = _text(f"{where}.{how}", raw[how]).strip()
    if not text:
        raise ImportFailure(f"spec: {where}.{how} is empty")
    if how in ("code", "value") and ("map" in raw or "default" in raw):
        raise ImportFailure(f"spec: {where}: map and default go with field or template (a {how} is the same for "
                            "every row)")
    if how == "code":
        if "match" in raw:
            raise ImportFailure(f"spec: {where}: code names the record by its code; use value with match instead")
        return Ref(kind, where, Value(constant=text), Value(constant="code"), words, extra)
    if how == "value":
        value = Value(constant=text)
    elif how == "template" or "{" in text:  # a field with {...} in it is a template, as everywhere
        value = Value(template=text)
    else:
        value = Value(field=text)
    if "map" in raw:
        value.value_map = _value_map(where, raw["map"])
    if raw.get("default") is not None:
        value.default = _text(f"{where}.default", raw["default"]).strip()
    match = raw.get("match", "code")
    if isinstance(match, dict):
        match = _value(f"{where}.match", match)
        if match.field is None:
            raise ImportFailure(f"spec: {where}.match is a word ({', '.join(words)}) or {{field: FIELD}}")
    elif isinstance(match, str) and match.strip().lower() in words:
        match = Value(constant=match.strip().lower())
    else:
        raise ImportFailure(f"spec: {where}.match must be one of {', '.join(words)}, or {{field: FIELD}}; "
                            f"got {match!r}")
    return Ref(kind, where, value, match, words, extra)


# ---- what the registry holds ---------------------------------------------------------------------------------

def _put(table, text, target):
    text = (text or "").strip()
    if not text:
        return
    old = table.get(text)
    table[text] = target if old in (None, target) else AMBIGUOUS


def lookups(kind, *, level=None, key="id"):
    """{word: {text: target or AMBIGUOUS}} over the active records of a kind (areas: of one level). The target is
    the record's id, or for authorities with key="code" its code."""
    out = {word: {} for word in WORDS[kind]}
    if kind == "authority":
        for pk, code, inn, ogrn, short, name in Authority.objects.active().values_list(
                "id", "code", "inn", "ogrn", "short_name", "name"):
            target = code if key == "code" else pk
            for word, text in (("code", code), ("inn", inn), ("ogrn", ogrn), ("name", short), ("name", name)):
                _put(out[word], text, target)
    elif kind == "department":
        rows = Department.objects.filter(authority__valid_to__isnull=True).values_list(
            "id", "code", "name", "authority__code", "authority__name", "authority__short_name", "authority__inn",
            "authority__ogrn")
        for pk, code, name, a_code, a_name, a_short, inn, ogrn in rows:
            _put(out["code"], f"{a_code}/{code}", pk)
            _put(out["name"], name, pk)
            if code == "main":  # an authority's code, name or official id names its main department
                for word, text in (("code", a_code), ("name", a_name), ("name", a_short), ("inn", inn),
                                   ("ogrn", ogrn)):
                    _put(out[word], text, pk)
    elif kind == "area":
        areas = AdminArea.objects.active()
        if level:
            areas = areas.filter(level=level)
        for pk, source_key, name, okato, oktmo in areas.values_list("id", "source_key", "name", "okato", "oktmo"):
            for word, text in (("code", source_key), ("name", name), ("okato", okato), ("oktmo", oktmo)):
                _put(out[word], text, pk)
    elif kind == "category":
        from django.apps import apps

        category = apps.get_model("routing", "Category")
        for pk, code, names in category.objects.filter(active=True).values_list("id", "code", "name_i18n"):
            _put(out["code"], code, pk)
            for text in set((names or {}).values()):
                _put(out["name"], text, pk)
    return out


def add_file_records(table, word, texts, targets):
    """Records the file itself brings (an authorities file's parents may be rows of the same file)."""
    for text, target in zip(texts, targets):
        if text and target:
            table[word].setdefault(str(text), target)


# ---- resolving ---------------------------------------------------------------------------------------------------
# One resolver for both paths: the per-file targets (importers.prepare: areas, authorities, the catalogue, the routing
# table) call resolve(), the facilities stream (importers.stream, Arrow batches) resolve_batch(); both evaluate the
# reference the same way (texts(): its field or template or constant, then its `map` and `default`) and match it by
# the same vectorised lookup (_match), so a form that works in one target works in every other.

def texts(ref, table, n):
    """The text each row names its record by (an Arrow string array, '' for none): the reference's value, through
    its `map` (a value the map leaves out becomes its `default`, else ''), an empty value its `default`."""
    value = ref.value
    column = stream.evaluate(value, table, n)
    if value.value_map is not None:
        column = pc.fill_null(stream.map_values(column, value.value_map, value.default), "")
    elif value.default is not None:
        column = pc.if_else(pc.equal(column, ""), pa.scalar(value.default), column)
    return column


def match_words(ref, table, n):
    """The word each row is matched by (numpy strings, lowercased): the constant `match`, or its field's value
    (through its own map, if it has one)."""
    value = ref.match
    column = stream.evaluate(value, table, n)
    if value.value_map is not None:
        column = pc.fill_null(stream.map_values(column, value.value_map, value.default), "")
    return np.asarray(pc.utf8_lower(pc.utf8_trim_whitespace(column)).to_numpy(zero_copy_only=False), dtype=object)


@dataclass
class Resolved:
    targets: list  # per row: the target (id or code), None where none (or no reference given)
    problems: list  # per row: the reason it can not be resolved, or None
    words: np.ndarray  # per row: the word it was matched by
    texts: np.ndarray = None  # per row: the text it was named by (after the map)


def _match(ref, names, words, lookup):
    """(targets as an Arrow array, nulls where none; problems: a list of (mask, reason(i)) in the order they are
    checked). Rows with an empty text name nothing and have no problem; a word the kind has but `lookup` lacks (a
    target's own, like the routing table's `kind`) is left to the caller, unresolved and without a problem."""
    n = len(names)
    names_np = np.asarray(names.to_numpy(zero_copy_only=False), dtype=object)
    given = names_np != ""
    one, many = LABELS[ref.kind]
    kinds = {type(v) for table_ in lookup.values() for v in table_.values() if v != AMBIGUOUS}
    value_type = pa.string() if str in kinds else pa.int64()
    out = pa.nulls(n, value_type)
    problems = []
    bad_word = given & ~np.isin(words, list(ref.words))
    problems.append((bad_word, lambda i: f"{ref.where}: match {words[i]!r} is not one of {', '.join(ref.words)}"))
    unresolved = np.zeros(n, dtype=bool)
    ambiguous_rows = np.zeros(n, dtype=bool)
    for word in sorted(set(words[given]) & set(ref.words)):
        if word not in lookup:
            continue
        table_ = lookup[word]
        mine = given & (words == word)
        unambiguous = {k: v for k, v in table_.items() if v != AMBIGUOUS}
        if unambiguous:
            keys = pa.array(list(unambiguous), pa.string())
            found = pc.take(pa.array(list(unambiguous.values()), value_type), pc.index_in(names, value_set=keys))
        else:
            found = pa.nulls(n, value_type)
        out = pc.if_else(pa.array(mine), found, out)
        ambiguous = [k for k, v in table_.items() if v == AMBIGUOUS]
        if ambiguous:
            ambiguous_rows |= mine & np.isin(names_np, ambiguous)
        unresolved |= mine
    unresolved &= pc.is_null(out).to_numpy(zero_copy_only=False)
    official = " or an official id" if ref.kind in ("authority", "department", "area") else ""
    problems.append((ambiguous_rows, lambda i: f"{ref.where}: several {many} have the {words[i]} {names_np[i]!r}: "
                                               f"name it by its code{official}"))
    problems.append((unresolved & ~ambiguous_rows,
                     lambda i: f"unknown {ref.where}: no {one} with {words[i]} {names_np[i]!r}"))
    return out, problems


def resolve(ref, table, n, lookup):
    """The reference `ref` for each of the n rows of `table` (an Arrow table). Rows whose text is empty get None
    and no problem (the caller decides whether the key is required). Words not in `lookup` (a target's own, like
    the routing table's `kind`) are left to the caller."""
    names = texts(ref, table, n)
    words = match_words(ref, table, n)
    out, problems = _match(ref, names, words, lookup)
    targets = out.to_pylist()
    reasons = [None] * n
    for mask, reason in problems:
        for i in np.flatnonzero(mask):
            if reasons[i] is None:
                reasons[i] = reason(i)
                targets[i] = None
    return Resolved(targets, reasons, words, np.asarray(names.to_numpy(zero_copy_only=False), dtype=object))


def reject_unresolved(rej, resolved):
    """Reject (Rejector from importers.prepare) each row whose reference could not be resolved, for its reason."""
    problems = resolved.problems
    rej.reject(np.array([p is not None for p in problems], dtype=bool), lambda i: problems[i])


def resolve_batch(ref, table, n, lookup, reject):
    """resolve() for the facilities stream (Arrow batches): the targets as an int64 Arrow array (nulls where none),
    each row that names no record or an ambiguous one rejected through `reject(mask, reason)`."""
    names = texts(ref, table, n)
    words = match_words(ref, table, n)
    out, problems = _match(ref, names, words, lookup)
    bad = np.zeros(n, dtype=bool)
    for mask, reason in problems:
        mask = mask & ~bad
        reject(mask, reason)
        bad |= mask
    return pc.if_else(pa.array(bad), pa.nulls(n, out.type), out)
