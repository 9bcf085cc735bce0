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


def parse_ref(where, raw, kind, *, more_words=(), extra_keys=()):
    """A reference in any of the forms above; ImportFailure (one line) for a form or word that is not one."""
    words = WORDS[kind] + tuple(more_words)
    if isinstance(raw, (str, int, float)) and not isinstance(raw, bool):
        text = str(raw)
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
    if "code" in raw:
        if "match" in raw:
            raise ImportFailure(f"spec: {where}: code names the record by its code; use value with match instead")
        return Ref(kind, where, Value(constant=str(raw["code"])), Value(constant="code"), words, extra)
    parts = {k: raw[k] for k in raw if k in ("value", "field", "template", "map", "default")}
    if "field" in parts and "{" in str(parts["field"]) and "map" not in parts:  # a template, as everywhere
        parts = {"template": parts.pop("field"), **parts}
    value = _value(where, parts)
    match = raw.get("match", "code")
    if isinstance(match, dict):
        match = _value(f"{where}.match", match)
        if match.field is None:
            raise ImportFailure(f"spec: {where}.match is a word ({', '.join(words)}) or {{field: FIELD}}")
    elif match in words:
        match = Value(constant=match)
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

@dataclass
class Resolved:
    targets: list  # per row: the target (id or code), None where none (or no reference given)
    problems: list  # per row: the reason it can not be resolved, or None
    words: np.ndarray  # per row: the word it was matched by


def resolve(ref, table, n, lookup, *, evaluate):
    """The reference `ref` for each of the n rows of `table` (`evaluate`: Value -> numpy array of texts, '' for
    none). Rows whose text is empty get None and no problem (the caller decides whether the key is required).
    Words not in `lookup` (a target's own, like the routing table's `kind`) are left to the caller."""
    texts = evaluate(ref.value, table, n)
    words = np.array([w.strip().lower() for w in evaluate(ref.match, table, n)], dtype=object)
    one, many = LABELS[ref.kind]
    targets, problems = [None] * n, [None] * n
    for i in range(n):
        text, word = texts[i], words[i]
        if not text:
            continue
        if word not in ref.words:
            problems[i] = f"{ref.where}: match {word!r} is not one of {', '.join(ref.words)}"
            continue
        if word not in lookup:
            continue
        target = lookup[word].get(text)
        if target is None:
            problems[i] = f"unknown {ref.where}: no {one} with {word} {text!r}"
        elif target == AMBIGUOUS:
            problems[i] = (f"{ref.where}: several {many} have the {word} {text!r}: name it by its code"
                           + (" or an official id" if ref.kind in ("authority", "department", "area") else ""))
        else:
            targets[i] = target
    return Resolved(targets, problems, words)


def reject_unresolved(rej, resolved):
    """Reject (Rejector from importers.prepare) each row whose reference could not be resolved, for its reason."""
    problems = resolved.problems
    rej.reject(np.array([p is not None for p in problems], dtype=bool), lambda i: problems[i])


def resolve_batch(ref, table, n, lookup, reject, *, evaluate_arrow):
    """resolve() for the facilities stream (Arrow batches): the targets as an int64 Arrow array (nulls where none),
    each row that names no record or an ambiguous one rejected through `reject(mask, reason)`."""
    texts = evaluate_arrow(ref.value, table, n)
    words = pc.utf8_lower(pc.utf8_trim_whitespace(evaluate_arrow(ref.match, table, n)))
    out = pa.nulls(n, pa.int64())
    texts_np = texts.to_numpy(zero_copy_only=False)
    words_np = words.to_numpy(zero_copy_only=False)
    one, many = LABELS[ref.kind]
    bad_word = ~np.isin(words_np, list(ref.words))
    reject(bad_word & (texts_np != ""), lambda i: f"{ref.where}: match {words_np[i]!r} is not one of "
                                                  f"{', '.join(ref.words)}")
    for word in sorted(set(words_np) & set(ref.words)):
        table_ = lookup.get(word, {})
        mask = pa.array(words_np == word)
        ambiguous = sorted(k for k, v in table_.items() if v == AMBIGUOUS)
        if ambiguous:
            hit = pc.and_(mask, pc.is_in(texts, value_set=pa.array(ambiguous, pa.string())))
            reject(hit.to_numpy(zero_copy_only=False),
                   lambda i: f"{ref.where}: several {many} have the {words_np[i]} {texts_np[i]!r}: name it by its "
                             "code or an official id")
        found = _map(texts, {k: v for k, v in table_.items() if v != AMBIGUOUS})
        out = pc.if_else(mask, found, out)
    missing = pc.and_(pc.is_null(out), pc.not_equal(texts, "")).to_numpy(zero_copy_only=False)
    reject(missing, lambda i: f"unknown {ref.where}: no {one} with {words_np[i]} {texts_np[i]!r}")
    return out


def _map(texts, mapping):
    keys = pa.array(list(mapping.keys()), pa.string())
    values = pa.array(list(mapping.values()), pa.int64())
    return pc.take(values, pc.index_in(texts, value_set=keys))
