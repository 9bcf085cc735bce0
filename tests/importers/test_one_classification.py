"""One classification per row: what a dry run reports is what the commit does, for every target.

The areas' old "what changed" tests disagreed: the comparison behind the dry run's counts (load.diff_areas)
looked at the jurisdiction authority's code only, while the commit (load.upsert_areas) rewrote the authority's
name, short name and department as well, and compared the authority's id where the spec named none.
"""
from pathlib import Path

import pytest
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
