"""Issue 10's settings are imported like the catalogue: the categories target's moderate_answers and confirm_days
(15 days when the spec names neither, a constant for a city-wide value), the authorities target's
moderate_answers (left alone when its spec does not name it); bad cells are rejects with a reason, a re-import is
a no-op and a change is seen."""
from pathlib import Path

import pytest
import yaml
from django.conf import settings

from facilities.models import Authority
from importers.core import run_import
from importers.models import ImportRun
from routing.models import Category
from tests.conftest import write_geojson

pytestmark = pytest.mark.django_db

SPEC = Path(settings.BASE_DIR) / "data" / "specs" / "moscow_categories.yaml"
BASE = {"group_ru": "Тест", "group_en": "Test", "rule": "district", "deadline_days": 3, "description_ru": "",
        "description_en": "", "keywords": "", "keywords_en": "", "facility_types": "", "radius_m": "", "fallback": "",
        "department": "", "attributes": []}


def catalogue(tmp_path, rows):
    path = tmp_path / "catalogue.yaml"
    path.write_text(yaml.safe_dump(rows, allow_unicode=True), encoding="utf-8")
    return path


def spec(**extra):
    raw = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    raw.update(dataset="t-cycle-catalogue", **extra)
    return raw


def test_categories_carry_moderation_and_the_confirmation_window(tmp_path):
    rows = [
        {**BASE, "code": "t-mod", "name_ru": "М", "name_en": "M", "moderate": "да", "window": "10"},
        {**BASE, "code": "t-free", "name_ru": "С", "name_en": "F", "moderate": "no", "window": ""},
        {**BASE, "code": "t-bad-window", "name_ru": "x", "name_en": "x", "moderate": "", "window": "0"},
        {**BASE, "code": "t-long-window", "name_ru": "x", "name_en": "x", "moderate": "", "window": "366"},
        {**BASE, "code": "t-text-window", "name_ru": "x", "name_en": "x", "moderate": "", "window": "two weeks"},
        {**BASE, "code": "t-bad-flag", "name_ru": "x", "name_en": "x", "moderate": "perhaps", "window": "5"},
    ]
    raw = spec(moderate_answers="moderate", confirm_days="window")
    result = run_import(catalogue(tmp_path, rows), raw, commit=True)
    assert (result.counts["created"], result.counts["rejected"]) == (2, 4)
    reasons = {key: reason for _, key, reason in result.rejects}
    for key in ("t-bad-window", "t-long-window", "t-text-window"):
        assert "confirm_days" in reasons[key]
    assert "moderate_answers 'perhaps'" in reasons["t-bad-flag"]
    moderated, free = Category.objects.get(code="t-mod"), Category.objects.get(code="t-free")
    assert (moderated.moderate_answers, moderated.confirm_days) == (True, 10)
    assert (free.moderate_answers, free.confirm_days) == (False, 15)  # an empty cell: the default window
    assert run_import(catalogue(tmp_path, rows), raw, commit=True).run.status == ImportRun.Status.NO_CHANGE
    rows[0]["moderate"] = "нет"
    assert run_import(catalogue(tmp_path, rows), raw, commit=True).counts["updated"] == 1
    assert not Category.objects.get(code="t-mod").moderate_answers


def test_a_city_wide_window_is_a_constant_and_the_default_is_15_days(tmp_path):
    rows = [{**BASE, "code": "t-city", "name_ru": "Г", "name_en": "C"}]
    run_import(catalogue(tmp_path, rows), spec(confirm_days={"value": 7}), commit=True)
    assert Category.objects.get(code="t-city").confirm_days == 7
    run_import(catalogue(tmp_path, rows), spec(), commit=True)
    city = Category.objects.get(code="t-city")
    assert (city.confirm_days, city.moderate_answers) == (15, False)


def test_authorities_carry_moderation(tmp_path):
    base = {"dataset": "t-cycle-auths", "target": "authorities", "key": "id", "code": "c-{id}", "name": "name",
            "kind": "contractor"}
    rows = [{"id": "1", "name": "ООО Свет", "moderate": "yes"}, {"id": "2", "name": "ООО Двор", "moderate": "0"},
            {"id": "3", "name": "ООО Тень", "moderate": "sometimes"}]
    path = tmp_path / "a.json"
    write_geojson(path, [(r, None) for r in rows])
    raw = {**base, "moderate_answers": "moderate"}
    result = run_import(path, raw, commit=True)
    assert result.counts["created"] == 2
    assert result.rejects == [(3, "3", "moderate_answers 'sometimes' is not yes or no")]
    assert Authority.objects.get(code="c-1").moderate_answers and not Authority.objects.get(code="c-2").moderate_answers
    assert run_import(path, raw, commit=True).run.status == ImportRun.Status.NO_CHANGE
    rows[0]["moderate"] = "no"
    write_geojson(path, [(r, None) for r in rows])
    assert run_import(path, raw, commit=True).counts["updated"] == 1
    assert not Authority.objects.get(code="c-1").moderate_answers
    # A spec that does not name the setting leaves it as it is (it may come from another file).
    Authority.objects.filter(code="c-2").update(moderate_answers=True)
    run_import(path, base, commit=True)
    assert Authority.objects.get(code="c-2").moderate_answers


@pytest.mark.parametrize("target,key", [("categories", "moderate_answer"), ("categories", "confirm_window"),
                                        ("authorities", "moderation")])
def test_misspelt_keys_are_refused_with_one_line(target, key, tmp_path):
    from importers.errors import ImportFailure

    raw = spec(**{key: "x"}) if target == "categories" else {
        "dataset": "t-cycle-auths", "target": "authorities", "key": "id", "code": "id", "name": "name", key: "x"}
    with pytest.raises(ImportFailure, match=f"unknown key '{key}'"):
        run_import(catalogue(tmp_path, []), raw)
