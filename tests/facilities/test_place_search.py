"""The place search (facilities.search) over the demo city: districts, the address register sample, the facilities'
names and addresses; word forms and typos forgiven; ranked; only what is active; the index really used."""
import pytest
from django.db import connection
from django.utils import timezone

from facilities.models import AdminArea, Facility
from facilities.search import FACILITY_KEY, normalise_query, places_search

pytestmark = pytest.mark.django_db


def first(text):
    found = places_search(text)
    assert found, f"nothing found for {text!r}"
    return found[0]


@pytest.mark.parametrize("typed", ["Тверской", "тверской район", "Тверского района", "в Тверском районе",
                                   "ТВЕРСКОЙ", "  Тверской\t"])
def test_a_district_in_any_word_form(typed):
    place = first(typed)
    assert (place.kind, place.label) == ("area", "Тверской")
    west, south, east, north = place.bbox
    assert west < place.lon < east and south < place.lat < north


@pytest.mark.parametrize("typed", ["Тверкой", "Тварской", "Тверскй район", "Хорошово-Мневники", "Хорошёво Мнёвники"])
def test_a_district_with_a_typo(typed):
    assert first(typed).kind == "area"


@pytest.mark.parametrize("typed, label", [
    ("нижегородская 3", "Нижегородская улица, дом 3"),
    ("Нижегородская улица, дом 3", "Нижегородская улица, дом 3"),
    ("на Нижегородской улице 3", "Нижегородская улица, дом 3"),
    ("Нижгородская 3", "Нижегородская улица, дом 3"),
    ("тухачевского 20", "улица Маршала Тухачевского, дом 20, корпус 1"),
    ("Тухачевскава 20", "улица Маршала Тухачевского, дом 20, корпус 1"),
    ("маршала тухачев", "улица Маршала Тухачевского, дом 20, корпус 1"),  # the last word as typed so far
])
def test_an_address_of_the_register(typed, label):
    place = first(typed)
    assert (place.kind, place.label) == ("address", label)


@pytest.mark.parametrize("typed, name", [("школа 1788", "ГБОУ школа № 1788"), ("школы № 1788", "ГБОУ школа № 1788"),
                                         ("Лаборатория путешествий", "ГБУ «Лаборатория путешествий»")])
def test_a_facility_by_its_name(typed, name):
    place = first(typed)
    assert place.kind == "facility" and place.label.startswith(name)


def test_results_are_ranked_best_first_and_bounded():
    found = places_search("Нижегородская", limit=3)
    assert 1 <= len(found) <= 3
    assert [p.score for p in found] == sorted((p.score for p in found), reverse=True)
    assert places_search("школа", limit=10) and len(places_search("школа", limit=10)) == 10


@pytest.mark.parametrize("typed", ["Qwxz Jjjvv", "", " ", "я", "—", "1234567", "\x00\x00", "::: &&& |||",
                                   "Qwxz Jjjvv, 1", "Ыыыы 3", "3", "12, 1"])
def test_nothing_matches(typed):
    assert places_search(typed) == []


@pytest.mark.parametrize("typed", ["' OR 1=1 --", "a:* & !b | c", "\\'); DROP TABLE x; --", "((( тверской", "''''",
                                   "тверской:*", "!тверской", "<->", "%_%", "тверской " * 100, "\u202e\u200bтверской"])
def test_query_syntax_is_only_text(typed):
    """What means something to tsquery, SQL or LIKE never raises and is searched as words."""
    places_search(typed)


def test_the_query_is_bounded():
    assert len(normalise_query("я " * 1000)) == 200
    assert normalise_query(" a\n\tb\x00c ") == "a b c"


def test_retired_facilities_and_areas_are_not_found():
    facility = Facility.objects.filter(name="ГБОУ школа № 1788").first()
    area = AdminArea.objects.get(name="Тверской", level="district")
    assert first("школа 1788").id == facility.id
    Facility.objects.filter(pk=facility.pk).update(valid_to=timezone.now())
    AdminArea.objects.filter(pk=area.pk).update(valid_to=timezone.now())
    assert all(p.id != facility.id for p in places_search("школа 1788") if p.kind == "facility")
    assert all(p.id != area.id for p in places_search("Тверской") if p.kind == "area")


def test_the_facilities_search_uses_its_index():
    """The selector's expression is the index's (migration 0008), on every partition: no scan of every facility."""
    with connection.cursor() as cur:
        cur.execute("SET LOCAL enable_seqscan = off")
        cur.execute(f"EXPLAIN SELECT f.id FROM facilities_facility f WHERE {FACILITY_KEY} @@ 'школ'::tsquery")
        plan = "\n".join(r[0] for r in cur.fetchall())
    assert "Bitmap Index Scan on facilities_facility_d" in plan and "Seq Scan" not in plan, plan


@pytest.mark.parametrize("forms", [("Тверская", "Тверской", "Тверскую", "Тверском"), ("школа", "школы", "школе"),
                                   ("улица", "улице", "улицы"), ("Нижегородская", "Нижегородской"),
                                   ("больница", "больницы", "больнице"), ("parks", "park")])
def test_word_forms_are_one_stem(forms):
    """The one rule (facilities_search_key, migration 0008): every form of a word is the same stem, so a word form
    is found exactly, not as a near miss."""
    with connection.cursor() as cur:
        cur.execute("SELECT DISTINCT array_to_string(tsvector_to_array(facilities_search_key(f)), ' ') "
                    "FROM unnest(%s::text[]) f", [list(forms)])
        assert len(cur.fetchall()) == 1


@pytest.mark.parametrize("language, city_languages, level, school", [
    ("ru", None, "район", "Школа"), ("en", None, "district", "School"),
    ("fi", ("fi", "en"), "district", "School"),  # no Finnish names: the default language's (Finnish) else English
])
def test_the_detail_names_the_level_and_the_type_in_the_active_language(settings, language, city_languages, level,
                                                                        school):
    """What is shown beside a place is a translated name (the area level's, the facility type's), not a code."""
    from django.utils import translation

    if city_languages:
        settings.LANGUAGE_CODE = city_languages[0]
        settings.LANGUAGES = [(code, code) for code in city_languages]
    with translation.override(language):
        assert first("Тверской").detail == level
        assert first("школа 1788").detail == school
