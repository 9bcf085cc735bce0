"""Translated fields take a value per configured language, only the default's required (issue 12 §1): the
catalogue spec's keys follow LANGUAGE_CODE / LANGUAGES, with no Russian anywhere for an English-only city; and
what residents and Open311 clients read falls back to the default language's value."""
import json

import pytest
import yaml
from django.utils import translation

from importers.core import run_import
from importers.errors import ImportFailure
from routing.models import Category, CategoryAttribute
from web.labels import localized, localized_value

pytestmark = pytest.mark.django_db

CONFIGS = {  # name: (LANGUAGE_CODE, LANGUAGES, a configured language besides the default, one that is not)
    "en only": ("en", ["en"], None, "ru"),
    "ru, en": ("ru", ["ru", "en"], "en", "de"),
    "de, en": ("de", ["de", "en"], "en", "ru"),
    "pt-br, en": ("pt-br", ["pt-br", "en"], "en", "fr"),
}


@pytest.fixture(params=list(CONFIGS))
def config(request, settings):
    default, languages, other, absent = CONFIGS[request.param]
    settings.LANGUAGE_CODE = default
    settings.LANGUAGES = [(code, code) for code in languages]
    return default, other, absent


def key(name, lang):
    return f"{name}_{lang.replace('-', '_')}"


def catalogue(tmp_path, rows, langs, **extra):
    path = tmp_path / "cats.yaml"
    path.write_text(yaml.safe_dump(rows, allow_unicode=True), encoding="utf-8")
    spec = {"dataset": "t-lang-cats", "target": "categories", "key": "code", "code": "code", "rule": "rule",
            "attributes": "attributes", **{key(f, lang): key(f, lang) for f in ("name", "group") for lang in langs},
            **extra}
    return path, spec


def test_only_the_default_languages_values_are_required(tmp_path, config):
    default, other, _absent = config
    question = {"code": "size", "datatype": "singlevaluelist", "description": "How big?",
                "values": [{"key": "s", "name": "small"}, "l"]}
    rows = [{"code": "t-lang-one", key("name", default): "Hole", key("group", default): "Streets",
             "rule": "department", "attributes": [question]}]
    path, spec = catalogue(tmp_path, rows, [default])
    result = run_import(path, spec, commit=True, reroute=False)
    assert (result.counts["created"], result.counts["rejected"]) == (1, 0), result.rejects
    one = Category.objects.get(code="t-lang-one")
    assert (one.name_i18n, one.group_i18n, one.description_i18n) == ({default: "Hole"}, {default: "Streets"}, {})
    size = CategoryAttribute.objects.get(category=one)
    assert size.description_i18n == {default: "How big?"}
    assert size.values == [{"key": "s", "name_i18n": {default: "small"}}, {"key": "l", "name_i18n": {default: "l"}}]
    # shown in every language: its own value where it has one, else the default language's
    for lang in filter(None, (default, other, "ja")):
        with translation.override(lang):
            assert (localized(one, "name"), localized(one, "group")) == ("Hole", "Streets")
            assert localized(size, "description") == "How big?" and localized_value(size.values[0]) == "small"


@pytest.mark.parametrize("config", [name for name, c in CONFIGS.items() if c[2]], indirect=True)
def test_a_second_language_is_stored_and_shown_in_it(tmp_path, config):
    default, other, _absent = config
    rows = [{"code": "t-lang-two", key("name", default): "D", key("name", other): "O", key("group", default): "G",
             key("group", other): "", "rule": "department", "attributes": []}]  # an empty value: not stored
    path, spec = catalogue(tmp_path, rows, [default, other])
    run_import(path, spec, commit=True, reroute=False)
    two = Category.objects.get(code="t-lang-two")
    assert two.name_i18n == {default: "D", other: "O"} and two.group_i18n == {default: "G"}
    with translation.override(other):
        assert (localized(two, "name"), localized(two, "group")) == ("O", "G")  # the group: the default's
    with translation.override(default):
        assert localized(two, "name") == "D"


def test_the_default_languages_value_can_not_be_left_out(tmp_path, config):
    default, other, _absent = config
    rows = [{"code": "t-lang-x", key("name", default): "X", key("group", default): "G", "rule": "department",
             "attributes": []}]
    path, spec = catalogue(tmp_path, rows, [default])
    del spec[key("name", default)]
    with pytest.raises(ImportFailure, match=rf"spec: '{key('name', default)}' \(the default language's name\) is "
                                            "required"):
        run_import(path, spec)
    # an empty cell is a rejected row; so is a question without the default language's description
    rows += [{**rows[0], "code": "t-lang-empty", key("name", default): ""},
             {**rows[0], "code": "t-lang-q", "attributes": [{"code": "q", "datatype": "string",
                                                              **({key("description", other): "Q?"} if other else {})}]}]
    path, spec = catalogue(tmp_path, rows, [default])
    result = run_import(path, spec)
    reasons = {k: reason for _, k, reason in result.rejects}
    assert reasons["t-lang-empty"] == f"empty {key('name', default)} (the default language's)"
    assert reasons["t-lang-q"] == (f"attributes: attribute q: description (or {key('description', default)}, the "
                                   "default language's) is required")


def test_a_language_that_is_not_configured_is_refused(tmp_path, config):
    default, _other, absent = config
    rows = [{"code": "t-lang-x", key("name", default): "X", key("group", default): "G", "rule": "department",
             "attributes": [], key("name", absent): "?"}]
    path, spec = catalogue(tmp_path, rows, [default], **{key("name", absent): key("name", absent)})
    with pytest.raises(ImportFailure, match=rf"spec: '{key('name', absent)}' is for language '{absent}', which is "
                                            "not configured") as info:
        run_import(path, spec)
    assert "\n" not in str(info.value)
    del spec[key("name", absent)]
    rows[0]["attributes"] = [{"code": "q", "datatype": "string", "description": "Q?",
                              key("description", absent): "?"}]
    path, spec = catalogue(tmp_path, rows, [default])
    result = run_import(path, spec)
    (_row, _key, reason), = result.rejects
    assert f"description_{absent} is for language '{absent}', which is not configured" in reason


def test_an_english_city_loads_a_city_wide_category_to_agency_table_without_russian(tmp_path, settings):
    """docs/importing.md's example: the department rule, the agency named by its name."""
    settings.LANGUAGE_CODE, settings.LANGUAGES = "en", [("en", "English")]
    agencies = tmp_path / "agencies.csv"
    agencies.write_text("code,name\nt-sf-dpw,Public Works\nt-sf-mta,Municipal Transportation Agency\n",
                        encoding="utf-8")
    run_import(agencies, {"dataset": "t-sf-agencies", "target": "authorities", "key": "code", "code": "code",
                          "name": "name"}, commit=True, reroute=False)
    services = tmp_path / "services.csv"
    services.write_text("service_code,service_name,group,agency\n"
                        "t-sf-pothole,Pothole,Streets,Public Works\nt-sf-meter,Broken meter,Parking,"
                        "Municipal Transportation Agency\nt-sf-x,Unknown,Other,Nobody\n", encoding="utf-8")
    spec = {"dataset": "t-sf-services", "target": "categories", "key": "service_code", "code": "service_code",
            "name_en": "service_name", "group_en": "group", "rule": {"value": "department"},
            "department": {"field": "agency", "match": "name"}}
    result = run_import(services, spec, commit=True, reroute=False)
    assert [r[2] for r in result.rejects] == ["unknown department: no department with name 'Nobody'"]
    meter = Category.objects.get(code="t-sf-meter")
    assert meter.department.authority.code == "t-sf-mta" and meter.name_i18n == {"en": "Broken meter"}
    assert json.dumps([meter.name_i18n, meter.group_i18n, meter.description_i18n]).isascii()
