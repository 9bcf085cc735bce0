"""Every spec key that names another record takes the same forms and words, for every target (importers.refs):
a code, a name or an official id, constant or per row; and the bad ones (no such record, a name that several
records share) are one rejected row with one clear line, in every target alike."""
import json

import pytest
import yaml

from facilities.models import AdminArea, AreaLevel, Authority, Dataset, Department, Facility
from importers.core import run_import
from importers.errors import ImportFailure
from routing.models import Category, RoutingAssignment
from tests.conftest import point, write_geojson

pytestmark = pytest.mark.django_db

INSIDE = (37.6208, 55.7539)
SQUARE = {"type": "Polygon", "coordinates": [[[37.60, 55.74], [37.62, 55.74], [37.62, 55.76], [37.60, 55.76],
                                              [37.60, 55.74]]]}


@pytest.fixture
def registry():
    """The records referred to: an authority with a code, a name and official ids (and its main department),
    two authorities sharing a name, an area of a level of its own, two areas sharing a name, a category."""
    target = Authority.objects.create(code="t-ref-a", name="Ref Authority Alpha", short_name="Ref Alpha",
                                      inn="7700000011", ogrn="1027700000011")
    Department.objects.create(authority=target, code="main", name="Ref Alpha desk")
    for code in ("t-ref-twin-1", "t-ref-twin-2"):
        twin = Authority.objects.create(code=code, name="Ref Twin", short_name="Ref Twin")
        Department.objects.create(authority=twin, code="main", name=f"{code} desk")
    level = AreaLevel.objects.create(code="t-ref-top", rank=0, name_i18n={"en": "top"})
    dataset = Dataset.objects.create(code="t-ref-tops", target=Dataset.Target.AREAS)
    area = AdminArea.objects.create(name="Ref Top", level=level, okato="99000001", oktmo="99000001000",
                                    geom=SQUARE_GEOS(), dataset=dataset, source_key="top-1")
    for key in ("twin-1", "twin-2"):
        AdminArea.objects.create(name="Ref Twin Area", level=level, geom=SQUARE_GEOS(), dataset=dataset,
                                 source_key=key)
    category = Category.objects.create(code="t-ref-cat", name_i18n={"ru": "Проверка", "en": "Ref check"},
                                       group_i18n={"ru": "Тест", "en": "Test"}, rule="department")
    return {"authority": target, "area": area, "category": category}


def SQUARE_GEOS():
    from django.contrib.gis.geos import GEOSGeometry, MultiPolygon

    return MultiPolygon(GEOSGeometry(json.dumps(SQUARE), srid=4326), srid=4326)


# ---- each target's key that names a record: a spec and a file around a reference, and what it resolved to ---

def yaml_rows(tmp_path, rows):
    path = tmp_path / "rows.yaml"
    path.write_text(yaml.safe_dump(rows, allow_unicode=True), encoding="utf-8")
    return path


def facilities_owner(tmp_path, ref, cell):
    path = write_geojson(tmp_path / "f.geojson", [({"id": "1", "ref": cell, "how": "name"}, point(*INSIDE))])
    spec = {"dataset": "t-ref-f", "target": "facilities", "key": "id", "type": "t-ref-type",
            "types": {"t-ref-type": {"ru": "Проверка", "en": "Ref thing"}}, "owner": ref}
    return path, spec, lambda: Facility.objects.get(dataset__code="t-ref-f", source_key="1").owner_id


def authorities_parent(tmp_path, ref, cell):
    path = yaml_rows(tmp_path, [{"code": "t-ref-child", "name": "Ref child", "ref": cell, "how": "name"}])
    spec = {"dataset": "t-ref-auth", "target": "authorities", "key": "code", "code": "code", "name": "name",
            "parent": ref}
    return path, spec, lambda: Authority.objects.get(code="t-ref-child").parent_id


def areas_jurisdiction_parent(tmp_path, ref, cell):
    path = write_geojson(tmp_path / "a.geojson", [({"id": "j1", "name": "Ref J", "ref": cell, "how": "name"},
                                                  SQUARE)], crs="EPSG:4326")
    spec = {"dataset": "t-ref-juris", "target": "areas", "key": "id", "name": "name", "level": "t-ref-top",
            "jurisdiction": {"code": "t-ref-juris-{id}", "name": "Juris {name}", "parent": ref}}
    return path, spec, lambda: Authority.objects.get(code="t-ref-juris-j1").parent_id


def categories_department(tmp_path, ref, cell):
    path = yaml_rows(tmp_path, [{"code": "t-ref-new", "name_ru": "Новая", "name_en": "New", "group_ru": "Тест",
                                 "group_en": "Test", "ref": cell, "how": "name"}])
    spec = {"dataset": "t-ref-cats", "target": "categories", "key": "code", "code": "code", "name_ru": "name_ru",
            "name_en": "name_en", "group_ru": "group_ru", "group_en": "group_en", "rule": {"value": "department"},
            "department": ref}
    return path, spec, lambda: Category.objects.get(code="t-ref-new").department.authority_id


def assignments_authority(tmp_path, ref, cell):
    path = yaml_rows(tmp_path, [{"key": "r1", "ref": cell, "how": "name", "category": "t-ref-cat"}])
    spec = {"dataset": "t-ref-table", "target": "assignments", "key": "key", "authority": ref,
            "category": {"field": "category"}, "department": {"value": "main"}}
    return path, spec, lambda: RoutingAssignment.objects.get(dataset__code="t-ref-table").authority_id


def areas_parent(tmp_path, ref, cell):
    path = write_geojson(tmp_path / "a.geojson", [({"id": "c1", "name": "Ref Child", "ref": cell, "how": "name"},
                                                  SQUARE)], crs="EPSG:4326")
    spec = {"dataset": "t-ref-children", "target": "areas", "key": "id", "name": "name",
            "level": {"code": "t-ref-low", "rank": 1}, "parent": {"level": "t-ref-top", **ref}}
    return path, spec, lambda: AdminArea.objects.get(dataset__code="t-ref-children").parent_id


def assignments_category(tmp_path, ref, cell):
    path = yaml_rows(tmp_path, [{"key": "r1", "ref": cell, "how": "name"}])
    spec = {"dataset": "t-ref-table", "target": "assignments", "key": "key", "authority": "t-ref-a",
            "category": ref, "department": {"value": "main"}}
    return path, spec, lambda: RoutingAssignment.objects.get(dataset__code="t-ref-table").category_id


AUTHORITY_TARGETS = {"facilities owner": facilities_owner, "authorities parent": authorities_parent,
                     "areas jurisdiction parent": areas_jurisdiction_parent,
                     "categories department": categories_department,
                     "assignments authority": assignments_authority}
# (form, the spec's reference, the file's cell): every form names the one authority t-ref-a
AUTHORITY_FORMS = {
    "a code": ("t-ref-a", ""),
    "{code}": ({"code": "t-ref-a"}, ""),
    "a constant name": ({"value": "Ref Authority Alpha", "match": "name"}, ""),
    "a field: code": ({"field": "ref"}, "t-ref-a"),
    "a field: name": ({"field": "ref", "match": "name"}, "Ref Alpha"),
    "a field: inn": ({"field": "ref", "match": "inn"}, "7700000011"),
    "a field: ogrn": ({"field": "ref", "match": "ogrn"}, "1027700000011"),
    "a template of a code": ({"field": "t-ref-{ref}"}, "a"),
    "the match per row": ({"field": "ref", "match": {"field": "how"}}, "Ref Authority Alpha"),
    "the match word in capitals": ({"field": "ref", "match": "NAME"}, "Ref Alpha"),
    "a field through a map to a code": ({"field": "ref", "map": {"ALPHA CO": "t-ref-a"}}, "ALPHA CO"),
    "a field through a map to a name": ({"field": "ref", "map": {"ALPHA CO": "Ref Authority Alpha"},
                                         "match": "name"}, "ALPHA CO"),
    "a field through a map to an inn": ({"field": "ref", "map": {"Q42": "7700000011"}, "match": "inn"}, "Q42"),
    "a template through a map": ({"template": "{ref}-{how}", "map": {"alpha-name": "t-ref-a"}}, "alpha"),
    "a value the map leaves out: its default": ({"field": "ref", "map": {"other": "t-ref-twin-1"},
                                                 "default": "t-ref-a"}, "ALPHA CO"),
    "an empty field: its default": ({"field": "ref", "default": "t-ref-a"}, ""),
}
AREA_FORMS = {
    "a code (its key)": ({"code": "top-1"}, ""),
    "a field: code": ({"field": "ref"}, "top-1"),
    "a field: name": ({"field": "ref", "match": "name"}, "Ref Top"),
    "a field: okato": ({"field": "ref", "match": "okato"}, "99000001"),
    "a field: oktmo": ({"field": "ref", "match": "oktmo"}, "99000001000"),
    "the match per row": ({"field": "ref", "match": {"field": "how"}}, "Ref Top"),
    "a field through a map to a key": ({"field": "ref", "map": {"T1": "top-1"}}, "T1"),
    "a field through a map to a name": ({"field": "ref", "map": {"T1": "Ref Top"}, "match": "name"}, "T1"),
    "a value the map leaves out: its default": ({"field": "ref", "map": {"T2": "twin-1"}, "default": "top-1"},
                                                "T1"),
}
CATEGORY_FORMS = {
    "a code": ("t-ref-cat", ""),
    "a field: code": ({"field": "ref"}, "t-ref-cat"),
    "a field: name (any language)": ({"field": "ref", "match": "name"}, "Проверка"),
    "the match per row": ({"field": "ref", "match": {"field": "how"}}, "Ref check"),
    "a field through a map to a code": ({"field": "ref", "map": {"C1": "t-ref-cat"}}, "C1"),
    "a field through a map to a name": ({"field": "ref", "map": {"C1": "Ref check"}, "match": "name"}, "C1"),
}

CASES = ([(t, f, "authority") for t in AUTHORITY_TARGETS for f in AUTHORITY_FORMS]
         + [("areas parent", f, "area") for f in AREA_FORMS]
         + [("assignments category", f, "category") for f in CATEGORY_FORMS])
MAKERS = {**AUTHORITY_TARGETS, "areas parent": areas_parent, "assignments category": assignments_category}
FORMS = {"authority": AUTHORITY_FORMS, "area": AREA_FORMS, "category": CATEGORY_FORMS}


@pytest.mark.parametrize("target, form, kind", CASES, ids=[f"{t} / {f}" for t, f, _ in CASES])
def test_every_form_names_the_record_in_every_target(tmp_path, registry, target, form, kind):
    ref, cell = FORMS[kind][form]
    path, spec, resolved = MAKERS[target](tmp_path, ref, cell)
    result = run_import(path, spec, commit=True, reroute=False)
    assert result.counts["rejected"] == 0, result.rejects
    assert resolved() == registry[kind].pk


# (the file's cell, the match word, the one line that rejects the row): the same in every target
BAD = {
    "authority": [("Nobody Anywhere", "name", "no authority with name 'Nobody Anywhere'"),
                  ("Ref Twin", "name", "several authorities have the name 'Ref Twin': name it by its code or an "
                                       "official id"),
                  ("t-ref-none", "code", "no authority with code 't-ref-none'")],
    "area": [("Nowhere", "name", "no area with name 'Nowhere'"),
             ("Ref Twin Area", "name", "several areas have the name 'Ref Twin Area'")],
    "category": [("No such service", "name", "no category with name 'No such service'")],
}
BAD_CASES = [(t, kind, *bad) for t, kind in [*((t, "authority") for t in AUTHORITY_TARGETS), ("areas parent", "area"),
                                              ("assignments category", "category")] for bad in BAD[kind]]


@pytest.mark.parametrize("target, kind, cell, word, line", BAD_CASES,
                         ids=[f"{t} / {c}" for t, _, c, _, _ in BAD_CASES])
def test_a_reference_to_no_record_or_to_several_is_one_rejected_row(tmp_path, registry, target, kind, cell, word,
                                                                    line):
    if target == "categories department":  # a department is named by its authority's words too
        line = line.replace("authorities", "departments").replace("authority", "department")
    path, spec, resolved = MAKERS[target](tmp_path, {"field": "ref", "match": word}, cell)
    result = run_import(path, spec, commit=True, reroute=False)
    assert result.counts["rejected"] == 1 and len(result.rejects) == 1
    (_row, _key, reason), = result.rejects
    assert line in reason and "\n" not in reason
    key = target.split()[-1] if target != "areas jurisdiction parent" else "jurisdiction.parent"
    assert reason.startswith((f"unknown {key}: ", f"{key}: ")), reason


@pytest.mark.parametrize("target", list(MAKERS))
@pytest.mark.parametrize("ref, message", [
    ({"field": "ref", "match": "planet"}, "match must be one of"),
    ({"field": "ref", "code": "x"}, "needs exactly one of code, value, field or template"),
    ({"code": "x", "match": "name"}, "code names the record by its code"),
    ({"field": "ref", "colour": "red"}, "unknown key 'colour'"),
    (["a", "list"], "must be a code, or a mapping"),
    (True, "must be a code, or a mapping"),
    ("", "is empty: give a code, or leave the key out"),
    ({}, "needs exactly one of code, value, field or template"),
    ({"field": ""}, "field is empty"),
    ({"field": ["ref"]}, "field must be a text"),
    ({"field": "ref", "map": ["x"]}, "map must be a mapping"),
    ({"field": "ref", "map": {}}, "map must be a mapping"),
    ({"field": "ref", "map": {"a": True}}, "must be a text \\(quote yes, no, on, off\\)"),
    ({"field": "ref", "map": {"a": {"code": "x"}}}, "must be a text"),
    ({"value": "t-ref-a", "map": {"a": "b"}}, "map and default go with field or template"),
    ({"code": "t-ref-a", "default": "t-ref-a"}, "map and default go with field or template"),
    ({"field": "ref", "match": {"value": "name"}}, "match is a word"),
    ({"field": "ref", "match": ["name"]}, "match must be one of"),
])
def test_a_reference_in_a_form_it_can_not_have_stops_the_import(tmp_path, registry, target, ref, message):
    if target == "areas parent" and not isinstance(ref, dict):
        ref = {"bad": ref}
        message = "unknown key 'bad'"
    if target == "facilities owner" and ref == {}:  # an empty owner rule
        message = "needs exactly one of code, value, field or template"
    if target == "facilities owner" and isinstance(ref, list):  # a list of owner rules (docs/importing.md)
        message = "only the last rule may be a constant"
    path, spec, _ = MAKERS[target](tmp_path, ref, "x")
    before = (Authority.objects.count(), Category.objects.count(), RoutingAssignment.objects.count())
    with pytest.raises(ImportFailure, match=message) as info:
        run_import(path, spec, commit=True, reroute=False)
    assert "\n" not in str(info.value) and str(info.value).startswith("spec: ")
    assert (Authority.objects.count(), Category.objects.count(), RoutingAssignment.objects.count()) == before


# A value map (an OSM `operator` tag to an authority, a 311 list's agency column to its code) is read the same in
# every target: what the map gives is then matched like any other text, and is rejected the same way.
MAP_BAD = {
    "authority": [({"field": "ref", "map": {"X": "t-ref-none"}}, "no authority with code 't-ref-none'"),
                  ({"field": "ref", "map": {"X": "Ref Twin"}, "match": "name"},
                   "several authorities have the name 'Ref Twin'")],
    "area": [({"field": "ref", "map": {"X": "nowhere-1"}}, "no area with code 'nowhere-1'")],
    "category": [({"field": "ref", "map": {"X": "No such service"}, "match": "name"},
                  "no category with name 'No such service'")],
}
MAP_BAD_CASES = [(t, kind, *bad) for t, kind in [*((t, "authority") for t in AUTHORITY_TARGETS),
                                                  ("areas parent", "area"), ("assignments category", "category")]
                 for bad in MAP_BAD[kind]]


@pytest.mark.parametrize("target, kind, ref, line", MAP_BAD_CASES,
                         ids=[f"{t} / {r['map']['X']}" for t, _, r, _ in MAP_BAD_CASES])
def test_what_a_map_gives_is_matched_and_rejected_like_any_text(tmp_path, registry, target, kind, ref, line):
    if target == "categories department":
        line = line.replace("authorities", "departments").replace("authority", "department")
    path, spec, _ = MAKERS[target](tmp_path, ref, "X")
    before = (Authority.objects.count(), Category.objects.count(), RoutingAssignment.objects.count(),
              Facility.objects.count(), AdminArea.objects.count())
    result = run_import(path, spec, commit=True, reroute=False)
    assert result.counts["rejected"] == 1 and len(result.rejects) == 1
    (_row, _key, reason), = result.rejects
    assert line in reason and "\n" not in reason, reason
    assert (Authority.objects.count(), Category.objects.count(), RoutingAssignment.objects.count(),
            Facility.objects.count(), AdminArea.objects.count()) == before


def test_the_facilities_stream_and_the_per_file_targets_resolve_one_way():
    """Both paths go through one function (refs._match): the same reference over the same rows gives the same
    targets and the same reasons, whether resolved per file or per Arrow batch."""
    import pyarrow as pa

    from importers import refs

    lookup = {"code": {"a": 1, "b": 2, "twin": refs.AMBIGUOUS}, "name": {"Alpha": 1}, "inn": {}, "ogrn": {}}
    table = pa.table({"ref": ["A1", "b", "twin", "zz", "", "Alpha"], "how": ["code", "code", "code", "code", "code",
                                                                              "name"]})
    ref = refs.parse_ref("owner", {"field": "ref", "map": {"A1": "a", "b": "b", "twin": "twin", "zz": "zz",
                                                           "Alpha": "Alpha"}, "match": {"field": "how"}}, "authority")
    single = refs.resolve(ref, table, 6, lookup)
    reasons = {}
    batch = refs.resolve_batch(ref, table, 6, lookup,
                               lambda mask, why: reasons.update({int(i): why(i) for i in mask.nonzero()[0]}))
    assert single.targets == batch.to_pylist() == [1, 2, None, None, None, 1]
    assert {i: p for i, p in enumerate(single.problems) if p} == reasons == {
        2: "owner: several authorities have the code 'twin': name it by its code or an official id",
        3: "unknown owner: no authority with code 'zz'"}
