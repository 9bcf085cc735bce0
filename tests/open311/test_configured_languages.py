"""The services list and definitions in the city's configured languages (issue 12 §1): an English-only city's
catalogue holds English alone and answers in it whatever the client asks; a value missing in one language falls
back to the default language's."""
import pytest

from routing.models import Category, CategoryAttribute

pytestmark = pytest.mark.django_db
BASE = "/open311/v2"


def make_category(code, names, values):
    category = Category.objects.create(code=code, name_i18n=names, group_i18n=names, description_i18n=names,
                                       rule=Category.Rule.DEPARTMENT)
    CategoryAttribute.objects.create(category=category, code="kind", datatype="singlevaluelist", order=1,
                                     description_i18n=names, values=values)
    return category


def listed(client, code, **params):
    services = client.get(f"{BASE}/services.json", params).json()
    service, = [s for s in services if s["service_code"] == code]
    definition = client.get(f"{BASE}/services/{code}.json", params).json()
    attribute, = definition["attributes"]
    return (service["service_name"], service["group"], service["description"], attribute["description"],
            [v["name"] for v in attribute["values"]])


@pytest.mark.parametrize("params, header", [({}, ""), ({"locale": "ru"}, ""), ({"locale": "en_US"}, ""),
                                            ({}, "ru-RU,ru;q=0.9"), ({"locale": "de"}, "de")])
def test_an_english_only_city_answers_in_english(client, settings, params, header):
    settings.LANGUAGE_CODE, settings.LANGUAGES = "en", [("en", "English")]
    make_category("t-en-only", {"en": "Pothole"}, [{"key": "hole", "name_i18n": {"en": "Hole"}}])
    got = listed(client, "t-en-only", **params) if not header else \
        listed(client.__class__(HTTP_ACCEPT_LANGUAGE=header), "t-en-only", **params)
    assert got == ("Pothole", "Pothole", "Pothole", "Pothole", ["Hole"])


@pytest.mark.parametrize("names, locale, expected", [
    ({"ru": "Яма", "en": "Pothole"}, "en", "Pothole"),   # its own language's value
    ({"ru": "Яма", "en": "Pothole"}, "ru", "Яма"),
    ({"ru": "Яма"}, "en", "Яма"),                        # none in English: the default language's (ru)
    ({"ru": "Яма", "en": "Pothole"}, "de", "Яма"),       # a language not configured: the default's
])
def test_a_value_missing_in_a_language_falls_back_to_the_default_languages(client, settings, names, locale,
                                                                           expected):
    settings.LANGUAGE_CODE, settings.LANGUAGES = "ru", [("ru", "Русский"), ("en", "English")]
    make_category("t-two-lang", names, [{"key": "k", "name_i18n": names}])
    assert listed(client, "t-two-lang", locale=locale) == (expected,) * 4 + ([expected],)
