"""One classification per row: what a dry run reports is what the commit does, for every target.

The areas' old "what changed" tests disagreed: the comparison behind the dry run's counts (load.diff_areas)
looked at the jurisdiction authority's code only, while the commit (load.upsert_areas) rewrote the authority's
name, short name and department as well, and compared the authority's id where the spec named none.
"""
import copy
import csv
import json
from pathlib import Path

import pytest
import yaml
from django.conf import settings

from facilities.models import AdminArea, Authority
from importers.core import run_import
from importers.spec import load_spec

pytestmark = pytest.mark.django_db

DATA = Path(settings.BASE_DIR) / "data"
OKRUGS = DATA / "moscow/ao.geojson"
CLASSES = ("created", "updated", "unchanged", "retired", "rejected")


def classes(result):
    return {k: result.counts[k] for k in CLASSES}


def okrug_spec(**change):
    raw = dict(load_spec(DATA / "specs/moscow_okrugs.yaml").raw)
    raw.update(change)
    return {k: v for k, v in raw.items() if v is not None}


def prefectures():
    return dict(Authority.objects.filter(code__startswith="prefecture-").values_list("code", "name"))


def test_an_areas_reimport_whose_only_change_is_the_jurisdiction_authoritys_name_is_one_class_in_both():
    spec = okrug_spec()
    spec["jurisdiction"] = {**spec["jurisdiction"], "name": "Префектура округа {NAME}"}
    before = prefectures()
    dry = run_import(OKRUGS, spec)
    assert prefectures() == before
    commit = run_import(OKRUGS, spec, commit=True)
    renamed = {code for code, name in prefectures().items() if before.get(code) != name}
    assert len(renamed) == 12  # the commit renamed every okrug's prefecture ...
    assert classes(dry) == classes(commit)  # ... and the dry run said what it would do
    assert commit.counts["updated"] == 12


def test_an_areas_reimport_without_a_jurisdiction_keeps_the_authorities_and_is_unchanged():
    spec = okrug_spec(jurisdiction=None)
    before = dict(AdminArea.objects.filter(level="okrug").values_list("id", "authority_id"))
    dry = run_import(OKRUGS, spec)
    commit = run_import(OKRUGS, spec, commit=True)
    assert dict(AdminArea.objects.filter(level="okrug").values_list("id", "authority_id")) == before
    assert classes(dry) == classes(commit) == {"created": 0, "updated": 0, "unchanged": 12, "retired": 0,
                                                "rejected": 0}


# ---- every target: the dry run's counts are the commit's, class by class ----------------------------------------

def read_records(path):
    if path.suffix == ".csv":
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            return list(reader), reader.fieldnames
    if path.suffix == ".yaml":
        return yaml.safe_load(path.read_text(encoding="utf-8")), None
    data = json.loads(path.read_text(encoding="utf-8"))
    return data["features"], data


def write_records(path, records, extra):
    if path.suffix == ".csv":
        with open(path, "w", encoding="utf-8", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=extra)
            writer.writeheader()
            writer.writerows(records)
    elif path.suffix == ".yaml":
        path.write_text(yaml.safe_dump(records, allow_unicode=True), encoding="utf-8")
    else:
        path.write_text(json.dumps({**extra, "features": records}, ensure_ascii=False), encoding="utf-8")
    return path


def props(record):
    return record["properties"] if "properties" in record else record


# target: (file, spec, the field an update changes, a new row's changes, a rejected row's changes)
CASES = {
    "authorities": ("moscow/city_authorities.csv", "specs/moscow_city_authorities.yaml", "name",
                    {"code": "test-new", "parent": "mos", "triage": ""}, {"code": "test-bad", "kind": "bogus"}),
    "areas": ("moscow/ao.geojson", "specs/moscow_okrugs.yaml", "NAME", {"OKATO": "99999999"},
              {"OKATO": "99999998", "NAME": ""}),
    "facilities": ("moscow/moscow_education_orgs.geojson", "specs/moscow_education_buildings.yaml", "ShortName",
                   {"global_id": 999999999}, {"global_id": 999999998, "INN": "0000000000"}),
    "categories": ("moscow/catalogue.yaml", "specs/moscow_categories.yaml", "name_en", {"code": "test-new"},
                   {"code": "test-bad", "rule": "bogus"}),
    "assignments": ("moscow/catalogue_routing.csv", "specs/moscow_categories_routing.yaml", "department_name",
                    {"key": "test-new", "authority_match": "code", "authority": "mos", "category_match": "code",
                     "category": "yard-pothole", "department": "main"},
                    {"key": "test-bad", "authority_match": "code", "authority": "no-such-authority"}),
    "holidays": ("moscow/catalogue_holidays.csv", "specs/moscow_categories_holidays.yaml", "name",
                 {"date": "2031-01-01"}, {"date": "2031-13-01"}),
}


def changed_file(tmp_path, target):
    """The demo's file for the target (loaded: the registry holds it) with a row changed, one gone, one new and
    one the import must reject."""
    file, _, field, new, bad = CASES[target]
    source = DATA / file
    records, extra = read_records(source)
    records = [copy.deepcopy(r) for r in records]
    # (the routing table's first rows name one department twice: change the one named once)
    changed = next(r for r in records if r.get("key") == "tverskoy-snow") if target == "assignments" else records[0]
    props(changed)[field] = f"{props(changed)[field]} (changed)"
    if target == "authorities":  # the row that goes must be no other row's parent
        parents = {r["parent"] for r in records}
        records.remove(next(r for r in reversed(records) if r["code"] not in parents and not r["triage"]))
    elif target == "assignments":  # the last row's entry is also one of a broader row's: this one's are not
        records.remove(next(r for r in records if r["key"] == "prefectures-building"))
    else:
        records.pop()
    for changes in (new, bad):
        record = copy.deepcopy(records[1])
        props(record).update(changes)
        records.append(record)
    return write_records(tmp_path / f"changed{source.suffix}", records, extra)


@pytest.mark.parametrize("target", sorted(CASES))
def test_the_dry_run_counts_are_the_commits_for_every_target(tmp_path, target):
    path, spec = changed_file(tmp_path, target), DATA / CASES[target][1]
    dry = run_import(path, spec)
    commit = run_import(path, spec, commit=True)
    assert classes(dry) == classes(commit)
    assert all(commit.counts[k] > 0 for k in CLASSES), classes(commit)  # every class is there to disagree on
    # ... and the commit did what it said: the same file again finds everything as the commit left it.
    again = run_import(path, spec)
    assert classes(again) == {"created": 0, "updated": 0, "retired": 0, "rejected": commit.counts["rejected"],
                              "unchanged": commit.counts["created"] + commit.counts["updated"]
                              + commit.counts["unchanged"]}
