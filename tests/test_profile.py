"""The city's profile (issue 12): languages, time zone, the map's box and the site's name from the environment or a
profile file (geo_ourcity/env.py), checked at start-up with one clear line; and a city whose default language
has no catalogue of its own (German) gets pages and Open311 answers in English, its mail too."""
import json
import os
import subprocess
import sys

import pytest
from django.core import mail
from django.test import override_settings

from complaints.mails import tracking_mail_message
from complaints.services import complaint_create
from geo_ourcity import env
from geo_ourcity.env import BASE_DIR, env_bounds, env_languages, env_time_zone, read_profile

from .open311.conftest import TVERSKOY, make_service

PROFILE_VARS = ("LANGUAGE_CODE", "LANGUAGES", "TIME_ZONE", "OURCITY_MAP_BOUNDS", "OURCITY_SITE_NAME")


@pytest.fixture
def clean_env(monkeypatch):
    """No profile and none of its variables in the environment: each test sets what it checks."""
    for name in PROFILE_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(env, "PROFILE", {})
    return monkeypatch


def refused(call, capsys):
    with pytest.raises(SystemExit) as stop:
        call()
    err = capsys.readouterr().err
    assert stop.value.code == 3 and err.startswith("error: ") and err.count("\n") == 1
    return err


# --- languages ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("code, languages, expected_default, expected", [
    (None, None, "en", [("en", "English")]),
    ("ru", "ru,en", "ru", [("ru", "Русский"), ("en", "English")]),
    ("de", "en,de", "de", [("en", "English"), ("de", "Deutsch")]),
    ("de", "en", "de", [("en", "English"), ("de", "Deutsch")]),  # the default is always offered
    ("DE", " en , de ,en", "de", [("en", "English"), ("de", "Deutsch")]),
    ("pt-br", "pt-br,es", "pt-br", [("pt-br", "Português Brasileiro"), ("es", "español")]),
    ("zh-hans", None, "zh-hans", [("zh-hans", "简体中文")]),
    ("en-us", "en-us,fr", "en-us", [("en-us", "English"), ("fr", "français")]),  # a region of a known language
    ("fi", "fi,sv,en", "fi", [("fi", "suomi"), ("sv", "svenska"), ("en", "English")]),
])
def test_languages_from_the_environment(clean_env, code, languages, expected_default, expected):
    if code is not None:
        clean_env.setenv("LANGUAGE_CODE", code)
    if languages is not None:
        clean_env.setenv("LANGUAGES", languages)
    assert env_languages() == (expected_default, expected)


@pytest.mark.parametrize("variable, value", [
    ("LANGUAGE_CODE", "xx"), ("LANGUAGE_CODE", "english"), ("LANGUAGE_CODE", "ru_RU"), ("LANGUAGE_CODE", "../etc"),
    ("LANGUAGE_CODE", "zh-cn"), ("LANGUAGES", "en,klingon"), ("LANGUAGES", "en;de"), ("LANGUAGES", "en,x-y"),
    ("LANGUAGES", "en,<script>"),
])
def test_an_unknown_language_stops_the_start_with_one_line(clean_env, capsys, variable, value):
    clean_env.setenv(variable, value)
    err = refused(env_languages, capsys)
    assert err.startswith(f"error: {variable}: ")


# --- time zone, map box --------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, expected", [(None, "UTC"), ("America/Los_Angeles", "America/Los_Angeles"),
                                             ("Europe/Helsinki", "Europe/Helsinki"), ("UTC", "UTC")])
def test_time_zone(clean_env, value, expected):
    if value:
        clean_env.setenv("TIME_ZONE", value)
    assert env_time_zone() == expected


@pytest.mark.parametrize("value", ["Mars/Olympus", "MSK+3", "../../etc/passwd", "Europe/", "/etc/localtime", "UTC\x00"])
def test_an_unknown_time_zone_stops_the_start(clean_env, capsys, value):
    clean_env.setattr(env, "PROFILE", {"TIME_ZONE": value})  # from a profile file: it may hold any character
    assert refused(env_time_zone, capsys).startswith("error: TIME_ZONE: ")


@pytest.mark.parametrize("value, expected", [("", None), ("24.78,60.10,25.25,60.30", (24.78, 60.10, 25.25, 60.30)),
                                             ("-122.52, 37.70, -122.35, 37.83", (-122.52, 37.70, -122.35, 37.83))])
def test_map_bounds(clean_env, value, expected):
    clean_env.setenv("OURCITY_MAP_BOUNDS", value)
    assert env_bounds("OURCITY_MAP_BOUNDS") == expected


@pytest.mark.parametrize("value", ["1,2,3", "a,b,c,d", "25,60,24,61", "0,95,1,96", "-190,0,0,1", "1,2,3,4,5", "nan,0,1,1"])
def test_a_bad_map_box_stops_the_start(clean_env, capsys, value):
    clean_env.setenv("OURCITY_MAP_BOUNDS", value)
    assert refused(lambda: env_bounds("OURCITY_MAP_BOUNDS"), capsys).startswith("error: OURCITY_MAP_BOUNDS")


# --- the profile file ----------------------------------------------------------------------------------------

def test_a_profile_file_gives_defaults_and_the_environment_wins(clean_env, tmp_path):
    path = tmp_path / "city.env"
    path.write_text("# Helsinki\n\nLANGUAGE_CODE=fi\nLANGUAGES=fi,sv,en\nTIME_ZONE=Europe/Helsinki\n", encoding="utf-8")
    clean_env.setattr(env, "PROFILE", read_profile(path))
    assert env_languages()[0] == "fi" and env_time_zone() == "Europe/Helsinki"
    clean_env.setenv("TIME_ZONE", "UTC")
    clean_env.setenv("LANGUAGE_CODE", "sv")
    assert env_languages()[0] == "sv" and env_time_zone() == "UTC"


def test_the_demo_profile_is_the_demo_citys_and_names_only_variables_the_settings_read():
    profile = read_profile(BASE_DIR / "data" / "demo.env")
    assert profile["LANGUAGE_CODE"] == "ru" and profile["TIME_ZONE"] == "Europe/Moscow"
    read = "".join((BASE_DIR / "geo_ourcity" / name).read_text(encoding="utf-8") for name in ("env.py", "settings.py"))
    assert [name for name in profile if f'"{name}"' not in read] == []


def settings_of(extra_env, *names):
    """The settings a fresh process starts with under `extra_env` (rc, {name: value} or stderr)."""
    code = ("import json, django; django.setup(); from django.conf import settings; "
            f"print(json.dumps({{n: getattr(settings, n) for n in {list(names)!r}}}))")
    environ = {k: v for k, v in os.environ.items() if k not in PROFILE_VARS and k != "OURCITY_PROFILE"}
    environ.update({"DJANGO_SETTINGS_MODULE": "geo_ourcity.settings", **extra_env})
    done = subprocess.run([sys.executable, "-c", code], cwd=BASE_DIR, env=environ, capture_output=True, text=True,
                          timeout=120)
    return done.returncode, (json.loads(done.stdout) if done.returncode == 0 else done.stderr)


def test_settings_start_from_the_profile_or_without_one(tmp_path):
    rc, values = settings_of({}, "LANGUAGE_CODE", "TIME_ZONE", "CELERY_TIMEZONE")
    assert rc == 0 and values == {"LANGUAGE_CODE": "ru", "TIME_ZONE": "Europe/Moscow", "CELERY_TIMEZONE": "Europe/Moscow"}
    rc, values = settings_of({"OURCITY_PROFILE": ""}, "LANGUAGE_CODE", "LANGUAGES", "TIME_ZONE", "DEFAULT_FROM_EMAIL")
    assert rc == 0 and values == {"LANGUAGE_CODE": "en", "LANGUAGES": [["en", "English"]], "TIME_ZONE": "UTC",
                                  "DEFAULT_FROM_EMAIL": "Our City <no-reply@example.org>"}
    path = tmp_path / "sf.env"
    path.write_text("LANGUAGE_CODE=en\nLANGUAGES=en,es,zh-hans\nTIME_ZONE=America/Los_Angeles\n"
                    "OURCITY_SITE_NAME=SF311\nOURCITY_MAP_BOUNDS=-122.52,37.70,-122.35,37.83\n", encoding="utf-8")
    rc, values = settings_of({"OURCITY_PROFILE": str(path)}, "LANGUAGES", "TIME_ZONE", "SITE_NAME", "MAP_BOUNDS")
    assert rc == 0 and values == {"LANGUAGES": [["en", "English"], ["es", "español"], ["zh-hans", "简体中文"]],
                                  "TIME_ZONE": "America/Los_Angeles", "SITE_NAME": "SF311",
                                  "MAP_BOUNDS": [-122.52, 37.70, -122.35, 37.83]}


@pytest.mark.parametrize("extra, profile_text, message", [
    ({"LANGUAGE_CODE": "xx"}, None, "error: LANGUAGE_CODE: 'xx' is not a language Django knows"),
    ({"LANGUAGES": "en,zz"}, None, "error: LANGUAGES: 'zz' is not a language Django knows"),
    ({"TIME_ZONE": "Moon/Base"}, None, "error: TIME_ZONE: 'Moon/Base' is not a time zone"),
    ({}, "LANGUAGE_CODE=de\nthis is not a variable\n", "is not NAME=VALUE"),
    ({}, "LANGUAGES=en,qq\n", "error: LANGUAGES: 'qq'"),
    ({"OURCITY_PROFILE": "/nonexistent/city.env"}, None, "error: OURCITY_PROFILE: can not read /nonexistent/city.env"),
])
def test_a_bad_profile_stops_the_start_with_one_line(tmp_path, extra, profile_text, message):
    if profile_text is not None:
        path = tmp_path / "city.env"
        path.write_text(profile_text, encoding="utf-8")
        extra = {**extra, "OURCITY_PROFILE": str(path)}
    rc, err = settings_of(extra, "LANGUAGE_CODE")
    assert rc == 3 and message in err and err.count("\n") == 1 and "Traceback" not in err


# --- a city in a language without a catalogue: English where German has none --------------------------------

GERMAN_CITY = {"LANGUAGE_CODE": "de", "LANGUAGES": [("en", "English"), ("de", "Deutsch")]}


@pytest.fixture
def category(db):
    return make_service("t-profile-pothole")


@pytest.mark.django_db
@pytest.mark.parametrize("accept", [None, "de-DE,de;q=0.9", "ru", "fr"])
@pytest.mark.parametrize("path, english, russian", [
    ("/", "Statistics", "Статистика"), ("/stats/", "Statistics", "Статистика"),
    ("/staff/login/", "Log in to the staff workspace", "Рабочее место"), ("/c/NOPE-NOPE-NOPE/", "Go to the map", "На карту"),
])
def test_pages_render_in_english_where_german_has_no_catalogue(client, category, path, english, russian, accept):
    headers = {"HTTP_ACCEPT_LANGUAGE": accept} if accept else {}
    with override_settings(**GERMAN_CITY):
        response = client.get(path, **headers)
        html = response.content.decode()
    assert response.status_code in (200, 404), path
    assert '<html lang="de">' in html
    assert english in html and "Our City" in html
    assert russian not in html and "Наш город" not in html
    if path == "/":
        assert "Pothole" in html and "Яма на дороге" not in html  # category names: English, not Russian
        assert 'value="de"' in html and 'value="en"' in html and 'value="ru"' not in html  # the language switch


@pytest.mark.django_db
@pytest.mark.parametrize("city, name, english_notice", [
    (GERMAN_CITY, "Pothole", True),
    ({"LANGUAGE_CODE": "en", "LANGUAGES": [("en", "English")]}, "Pothole", True),
    ({"LANGUAGE_CODE": "ru", "LANGUAGES": [("ru", "Русский"), ("en", "English")]}, "Яма на дороге", False),
])
def test_open311_answers_in_the_citys_default_language(client, category, city, name, english_notice):
    with override_settings(**city):
        services = json.loads(client.get("/open311/v2/services.json").content)
        complaint = complaint_create(category=category, point=TVERSKOY, description="x", source="test",
                                     attributes={"kind": "hole"})
        request = json.loads(client.get(f"/open311/v2/requests/{complaint.pk}.json").content)[0]
    assert [s["service_name"] for s in services if s["service_code"] == category.code] == [name]
    assert request["service_name"] == name
    notice = request["service_notice"] or ""  # the demo's names are Russian; the sentence around them is not
    assert notice and ("is responsible for" in notice) == english_notice


@pytest.mark.django_db
@pytest.mark.parametrize("city, expected, absent", [
    (GERMAN_CITY, ["Your report No.", "Tracking code:", "Pothole"], ["Код отслеживания", "Яма"]),
    ({"LANGUAGE_CODE": "en", "LANGUAGES": [("en", "English")]}, ["Tracking code:", "Pothole"], ["Код"]),
    ({"LANGUAGE_CODE": "ru", "LANGUAGES": [("ru", "Русский"), ("en", "English")]},
     ["Ваше обращение №", "Код отслеживания:", "Яма на дороге"], ["Tracking code", "Pothole"]),
])
def test_mail_is_in_the_citys_default_language(category, city, expected, absent):
    complaint = complaint_create(category=category, point=TVERSKOY, description="x", source="test",
                                 email="resident@example.org", attributes={"kind": "hole"})
    with override_settings(**city):
        message = tracking_mail_message(complaint)
    text = message.subject + "\n" + message.body
    assert str(complaint.pk) in message.subject and complaint.tracking_code in message.body
    assert all(part in text for part in expected), text
    assert not any(part in text for part in absent), text
    assert mail.outbox == []


# --- the front's own pages (scripts/serve.py: nginx answers them before Django) -------------------------------

def serve_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("ourcity_serve", BASE_DIR / "scripts" / "serve.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("language, first, languages", [("ru", "Запрос слишком велик", ["ru", "en"]),
                                                         ("de", "Request too large", ["en"]),
                                                         ("en", "Request too large", ["en"])])
def test_the_fronts_pages_are_in_the_default_language_then_english(language, first, languages):
    serve = serve_module()
    with override_settings(LANGUAGE_CODE=language, LANGUAGES=[(language, language), ("en", "English")]):
        versions = serve.front_pages(language)["413"]
    assert [v[0] for v in versions] == languages and versions[0][1] == first
    html = serve.page(versions)
    assert html.startswith(f'<!doctype html><html lang="{languages[0]}">') and f"<h1>{first}</h1>" in html
    assert serve.QUOTED_SAFE.match(html)


def test_a_front_page_escapes_its_text():
    html = serve_module().page([("en", "<script>x</script>", "a & b 'c'")])
    assert "<script>" not in html and "&lt;script&gt;" in html and "'" not in html


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/stats/", "/staff/login/"])
def test_the_site_name_and_contact_are_the_citys(client, settings, path):
    settings.SITE_NAME = "SF311 <b>"
    settings.SITE_CONTACT = "Call 3-1-1 or write to <311@sf.example>"
    html = client.get(path).content.decode()
    assert "SF311 &lt;b&gt;" in html and "<b>" not in html and "Our City" not in html and "Наш город" not in html
    if not path.startswith("/staff/"):
        assert "Call 3-1-1 or write to &lt;311@sf.example&gt;" in html
    settings.SITE_NAME, settings.SITE_CONTACT = "", ""
    html = client.get(path).content.decode()
    assert "Наш город" in html and "Call 3-1-1" not in html  # the demo's default language: the name translated


# --- a third language: a Finnish city (fi, en), no Finnish catalogue of the UI's own -------------------------

FINNISH_CITY = {"LANGUAGE_CODE": "fi", "LANGUAGES": [("fi", "suomi"), ("en", "English")]}


def test_a_finnish_profile_starts():
    rc, values = settings_of({"LANGUAGE_CODE": "fi", "LANGUAGES": "fi,en", "TIME_ZONE": "Europe/Helsinki"},
                             "LANGUAGE_CODE", "LANGUAGES", "TIME_ZONE")
    assert rc == 0 and values == {"LANGUAGE_CODE": "fi", "LANGUAGES": [["fi", "suomi"], ["en", "English"]],
                                  "TIME_ZONE": "Europe/Helsinki"}, values


def finnish_catalogue(tmp_path, row, types=None):
    import yaml

    from importers.core import run_import

    path = tmp_path / "services.yaml"
    path.write_text(yaml.safe_dump([row], allow_unicode=True), encoding="utf-8")
    spec = {"dataset": "t-fi-services", "target": "categories", "key": "code", "code": "code",
            "rule": {"value": "area"}, "area_level": {"value": "district"}, "facility_types": "types",
            **{key: key for key in row if key.startswith(("name_", "group_", "description_"))}}
    if types is not None:
        spec["types"] = types
    with override_settings(**FINNISH_CITY):
        return run_import(path, spec, commit=True, reroute=False)


@pytest.fixture
def finnish_category(db, tmp_path):
    result = finnish_catalogue(tmp_path, {"code": "t-fi-pothole", "name_fi": "Kuoppa tiessä", "group_fi": "Kadut",
                                          "description_fi": "Kuoppa ajoradassa", "types": "t-fi-bench"},
                               types={"t-fi-bench": {"fi": "Penkki"}})
    assert result.counts["rejected"] == 0 and result.counts["created"] == 1, result.rejects
    from routing.models import Category

    return Category.objects.get(code="t-fi-pothole")


@pytest.mark.django_db
def test_the_catalogue_takes_a_category_and_a_facility_type_named_in_finnish_alone(finnish_category):
    from facilities.models import FacilityType
    from web.labels import localized

    assert finnish_category.name_i18n == {"fi": "Kuoppa tiessä"} and finnish_category.group_i18n == {"fi": "Kadut"}
    bench = FacilityType.objects.get(code="t-fi-bench")
    assert bench.name_i18n == {"fi": "Penkki"}
    from django.utils import translation

    with override_settings(**FINNISH_CITY):
        for language in ("fi", "en"):  # English has no name of its own: the default language's
            with translation.override(language):
                assert localized(finnish_category, "name") == "Kuoppa tiessä"
                assert localized(bench, "name") == "Penkki" and str(bench) == "Penkki"


@pytest.mark.django_db
def test_a_facility_type_named_only_in_english_shows_english_in_a_finnish_city(tmp_path):
    from django.utils import translation

    from facilities.models import FacilityType
    from web.labels import localized

    result = finnish_catalogue(tmp_path, {"code": "t-fi-y", "name_fi": "Kuoppa", "group_fi": "Kadut",
                                          "types": "t-fi-lamp,t-fi-pole"},
                               types={"t-fi-lamp": {"en": "Street lamp"}, "t-fi-pole": {}})
    assert result.counts["rejected"] == 0, result.rejects
    lamp, pole = FacilityType.objects.get(code="t-fi-lamp"), FacilityType.objects.get(code="t-fi-pole")
    assert lamp.name_i18n == {"en": "Street lamp"} and pole.name_i18n == {"fi": "t-fi-pole"}
    with override_settings(**FINNISH_CITY), translation.override("fi"):
        assert localized(lamp, "name") == "Street lamp" and localized(pole, "name") == "t-fi-pole"


@pytest.mark.parametrize("row, types, message", [
    ({"code": "t-fi-x", "name_en": "Pothole", "group_fi": "Kadut"}, None, "'name_fi' (the default language's name) is required"),
    ({"code": "t-fi-x", "name_fi": "Kuoppa", "name_ru": "Яма", "group_fi": "Kadut"}, None,
     "'name_ru' is for language 'ru', which is not configured (LANGUAGES: fi, en)"),
    ({"code": "t-fi-x", "name_fi": "Kuoppa", "group_fi": "Kadut"}, {"t-fi-bench": {"fi": ["Penkki"]}},
     "types.t-fi-bench.name_fi must be a text"),
    ({"code": "t-fi-x", "name_fi": "Kuoppa", "group_fi": "Kadut"}, {"t-fi-bench": {"fi": "Penkki", "colour": "red"}},
     "types.t-fi-bench: unknown key 'colour'"),
    ({"code": "t-fi-x", "name_fi": "Kuoppa", "group_fi": "Kadut"}, {"t-fi-bench": {"fi": "Penkki", "ru": "Скамья"}},
     "'name_ru' is for language 'ru', which is not configured"),
])
@pytest.mark.django_db
def test_a_finnish_city_refuses_keys_of_languages_it_has_not_and_needs_its_own(tmp_path, row, types, message):
    from importers.errors import ImportFailure
    from routing.models import Category

    with pytest.raises(ImportFailure) as info:
        finnish_catalogue(tmp_path, {**row, "types": ""}, types=types)
    assert message in str(info.value) and "\n" not in str(info.value)
    assert not Category.objects.filter(code="t-fi-x").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("accept, lang", [(None, "fi"), ("fi-FI,fi;q=0.9", "fi"), ("en", "en"), ("ru", "fi")])
@pytest.mark.parametrize("path, english, russian", [
    ("/", "Statistics", "Статистика"), ("/stats/", "Statistics", "Статистика"),
    ("/staff/login/", "Log in to the staff workspace", "Рабочее место"),
])
def test_pages_of_a_finnish_city_fall_back_to_english(client, finnish_category, path, english, russian, accept,
                                                      lang):
    headers = {"HTTP_ACCEPT_LANGUAGE": accept} if accept else {}
    with override_settings(**FINNISH_CITY):
        response = client.get(path, **headers)
        html = response.content.decode()
    assert response.status_code == 200, path
    assert f'<html lang="{lang}">' in html
    assert english in html and "Our City" in html  # no Finnish catalogue of the UI: its English msgids
    assert russian not in html and "Наш город" not in html
    if path == "/":
        assert "Kuoppa tiessä" in html and "Kadut" in html  # the city's data: in Finnish, whatever the page's language
        assert 'value="fi"' in html and 'value="en"' in html and 'value="ru"' not in html


@pytest.mark.django_db
@pytest.mark.parametrize("locale", [None, "fi", "en"])
def test_open311_of_a_finnish_city_names_the_service_in_finnish(client, finnish_category, locale):
    query = f"?locale={locale}" if locale else ""
    with override_settings(**FINNISH_CITY):
        response = client.get(f"/open311/v2/services.json{query}")
    services = json.loads(response.content)
    assert response.status_code == 200
    assert [(s["service_name"], s["group"], s["description"]) for s in services
            if s["service_code"] == "t-fi-pothole"] == [("Kuoppa tiessä", "Kadut", "Kuoppa ajoradassa")]
