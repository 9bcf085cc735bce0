"""The place search (facilities.search) over the demo city: districts, the address register sample, the facilities'
names and addresses; word forms and typos forgiven; ranked; only what is active; the index really used."""
import re

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


# --- at the registry's scale (issue 10's 1M facilities): what keeps a search's index work small ----------------

def _address(label, lon=37.6056, lat=55.7655):
    from django.contrib.gis.geos import Point

    from facilities.models import Address, Dataset

    dataset, _ = Dataset.objects.get_or_create(code="t-scale", defaults={"name": "t", "target": "addresses"})
    return Address.objects.create(dataset=dataset, source_key=label, label=label, geom=Point(lon, lat, srid=4326))


@pytest.mark.parametrize("typed, wanted, unwanted", [
    ("Квазарная 12", "Квазарная аллея, дом 12", ["Квазарная аллея, дом 120", "Квазарная аллея, дом 129"]),
    ("Квазарная аллея, дом 3", "Квазарная аллея, дом 3", ["Квазарная аллея, дом 30", "Квазарная аллея, дом 3000"]),
    ("квазарной аллее 7", "Квазарная аллея, дом 7", ["Квазарная аллея, дом 77", "Квазарная аллея, дом 700"]),
])
def test_a_house_number_typed_last_is_that_house_not_a_prefix(typed, wanted, unwanted):
    """A number is never the start of a longer one: "12" is not "120" to "129" (on 1M facilities, "12":* expanded
    to every "№ 12..." of the registry, the slowest part of a search)."""
    from facilities.search import search_terms_add

    for label in [wanted, *unwanted]:
        _address(label)
    with connection.cursor() as cur:
        search_terms_add(cur, target="addresses", dataset_id=_address("Квазарная аллея, дом 1").dataset_id)
    labels = [p.label for p in places_search(typed)]
    assert labels[0] == wanted and not set(unwanted) & set(labels), labels


@pytest.mark.parametrize("typed", ["хрустальн", "Хрустальный пер"])
def test_the_last_word_is_still_a_prefix(typed):
    _address("Хрустальный переулок, дом 7")
    from facilities.search import search_terms_add

    with connection.cursor() as cur:
        search_terms_add(cur, target="addresses", dataset_id=_address("Хрустальный переулок, дом 9").dataset_id)
    assert places_search(typed)[0].label.startswith("Хрустальный переулок")


def test_the_vocabulary_counts_the_names_holding_each_stem_once_per_source():
    """ndoc is the most names of one source holding the stem (ts_stat's count), and an import run again does not
    count them twice."""
    from facilities.models import SearchTerm
    from facilities.search import search_terms_add

    def holding(stem):
        """The most names of one source (a facilities' or an addresses' dataset, the areas) holding the stem."""
        query = f"'{stem}'"
        with connection.cursor() as cur:
            cur.execute(f"""SELECT max(n) FROM (
                SELECT count(*) AS n FROM facilities_facility f WHERE f.valid_to IS NULL AND {FACILITY_KEY} @@
                    %(q)s::tsquery GROUP BY f.dataset_id
                UNION ALL SELECT count(*) FROM facilities_address d WHERE facilities_search_key(d.label) @@
                    %(q)s::tsquery GROUP BY d.dataset_id
                UNION ALL SELECT count(*) FROM facilities_adminarea a WHERE a.valid_to IS NULL AND
                    facilities_search_key(a.name) @@ %(q)s::tsquery) c""", {"q": query})
            return cur.fetchone()[0] or 0

    for stem in ("дом", "улиц", "школ", "нижегородск"):
        assert SearchTerm.objects.get(term=stem).ndoc == holding(stem) > 0, stem
    before = dict(SearchTerm.objects.values_list("term", "ndoc"))
    with connection.cursor() as cur:
        cur.execute("SELECT term, xmin::text FROM facilities_searchterm")
        versions = dict(cur.fetchall())
        search_terms_add(cur, target="areas")
        search_terms_add(cur, target="areas")
        cur.execute("SELECT term, xmin::text FROM facilities_searchterm")
        assert dict(cur.fetchall()) == versions  # a known stem no more names hold is not written again
    assert dict(SearchTerm.objects.values_list("term", "ndoc")) == before


@pytest.mark.parametrize("typed, label", [
    ("Нижегородская улица, дом 3", "Нижегородская улица, дом 3"),
    ("на Нижегородской улице 3", "Нижегородская улица, дом 3"),
    ("улица Маршала Тухачевского, дом 20", "улица Маршала Тухачевского, дом 20, корпус 1"),
    ("Тухачевскава 20", "улица Маршала Тухачевского, дом 20, корпус 1"),
])
def test_a_stem_nearly_every_name_holds_is_not_asked_of_the_index(monkeypatch, typed, label):
    """With "улица" and "дом" counted as common (as in a city's register of 400,000 addresses), the index is asked
    for the rarer words only, and the same place comes first: the common words still rank."""
    from django.test.utils import CaptureQueriesContext

    from facilities import search
    from facilities.models import SearchTerm

    monkeypatch.setattr(search, "COMMON_TERM_DOCS", 5)
    assert {"улиц", "дом"} <= set(SearchTerm.objects.filter(ndoc__gt=5).values_list("term", flat=True))
    with CaptureQueriesContext(connection) as queries:
        place = first(typed)
    assert (place.kind, place.label) == ("address", label)
    candidate = next(q["sql"] for q in queries.captured_queries if "facilities_address d" in q["sql"])
    index_query = re.search(r"@@ (.*?)::tsquery", candidate).group(1)
    assert "улиц" not in index_query and "дом" not in index_query, index_query
    assert "нижегородск" in index_query or "тухачевск" in index_query, index_query
    for number in re.findall(r"\d+", typed):  # a house number is never common: it makes a street an address
        assert f"''{number}''" in index_query, index_query


@pytest.mark.parametrize("typed", ["Нижегородская улица, дом 3", "Тварской", "школа 1788", "маршала тухачев"])
def test_a_search_that_finds_is_two_statements(typed):
    """The query's stems with their typo variants in one statement, the candidates ranked in a second."""
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        assert places_search(typed)
    assert len(queries.captured_queries) == 2, [q["sql"][:80] for q in queries.captured_queries]


# --- the word being typed, completed through the vocabulary ---------------------------------------------------

def _completions(text):
    """The last stem of `text` and the vocabulary's completions of it that facilities.search asks for."""
    from facilities.search import _terms

    with connection.cursor() as cur:
        stems, variants = _terms(cur, text)
    if not stems:  # a stop word ("в", "на") has no stem
        return None, []
    return stems[-1], [(term, ndoc) for term, kind, ndoc in variants[-1] if kind == "prefix"]


def test_the_word_being_typed_is_completed_into_the_most_common_words_that_start_with_it():
    """Against an oracle over the whole vocabulary: for every beginning of every word it holds (and of words with
    the characters a stem may hold that LIKE or a regular expression would read as patterns), the completions are words that start with it, never itself,
    never a number, as many as there are up to PREFIX_COMPLETIONS, and none left out is held by more names."""
    from facilities.models import SearchTerm
    from facilities.search import PREFIX_COMPLETIONS

    for i, term in enumerate(["кв_з", "кв.з", "кв-з", "кв/з", "квз", "кв_", "квазар", "кв1з"]):
        SearchTerm.objects.create(term=term, ndoc=i + 1)
    vocabulary = dict(SearchTerm.objects.values_list("term", "ndoc"))
    words = [t for t in vocabulary if not re.search(r"[0-9]", t)]
    beginnings = sorted({w[:n] for w in words for n in range(1, len(w) + 1) if w[:n].isalpha()})
    checked = 0
    for typed in beginnings[::7] + ["кв", "ква", "Кв"]:
        stem, got = _completions(typed)
        if stem is None:
            continue
        candidates = {t: n for t, n in vocabulary.items() if t.startswith(stem) and t != stem and not re.search(r"[0-9]", t)}
        assert len(got) == min(PREFIX_COMPLETIONS, len(candidates)), (typed, got)
        assert all(candidates.get(t) == n for t, n in got), (typed, got)
        left = [n for t, n in candidates.items() if t not in dict(got)]
        assert not left or min(n for _t, n in got) >= max(left), (typed, got)
        checked += 1
    assert checked > 100
    stem, got = _completions("кв")
    assert stem == "кв" and "кв1з" not in dict(got) and len(got) == PREFIX_COMPLETIONS


def _candidate_query(typed):
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        found = places_search(typed)
    candidate = next(q["sql"] for q in queries.captured_queries if "facilities_address d" in q["sql"])
    return found, re.search(r"@@ (.*?)::tsquery", candidate).group(1)


@pytest.mark.parametrize("typed", ["Зорянск", "зорянс", "улица Зорянск", "Зорянская ули"])
def test_a_beginning_the_vocabulary_knows_is_asked_as_whole_words_not_a_prefix_query(typed):
    """Ten words start with "зорянск"; the query asks for the PREFIX_COMPLETIONS most common as whole words, and the
    most common one's address comes first."""
    from facilities.search import PREFIX_COMPLETIONS, TYPO_VARIANTS, search_terms_add

    endings = ["ая", "ий", "ое", "ого", "ими", "овая", "енская", "оборская", "ицкая", "анная"]
    for i, ending in enumerate(endings):
        for house in range(len(endings) - i):  # "Зорянская" on the most addresses, "Зорянсканная" on one
            _address(f"Зорянск{ending} улица, дом {house + 1}")
    with connection.cursor() as cur:
        search_terms_add(cur, target="addresses", dataset_id=_address("Зорянская улица, дом 50").dataset_id)
    found, index_query = _candidate_query(typed)
    assert ":*" not in index_query, index_query
    last = index_query.split("&")[-1]
    alternatives = re.findall(r"''([^']+)''", last)
    assert len(alternatives) == len(set(alternatives)), index_query
    assert 1 <= len(alternatives) <= PREFIX_COMPLETIONS + TYPO_VARIANTS, index_query  # a beginning may be a typo too
    assert found and found[0].label.startswith("Зорянская улица"), [p.label for p in found]


def test_a_beginning_the_vocabulary_does_not_know_falls_back_to_a_prefix_query():
    """A name whose words the vocabulary has not got yet (an index built, its vocabulary not) is still found."""
    _address("Янтарногорский тупик, дом 4")
    found, index_query = _candidate_query("Янтарногорс")
    assert ":*" in index_query, index_query
    assert found and found[0].label == "Янтарногорский тупик, дом 4"


@pytest.mark.parametrize("typed", ["Квазарн", "Квазарная ал", "квазарной алл"])
def test_completions_find_the_same_places_as_a_prefix_query(typed):
    """What the completions find is what the prefix query finds when there are no more words than it asks for."""
    from facilities import search

    for label in ["Квазарная аллея, дом 1", "Квазарная аллея, дом 2", "Квазарный проезд, дом 5", "Квазарово, дом 9"]:
        _address(label)
    with connection.cursor() as cur:
        search.search_terms_add(cur, target="addresses", dataset_id=_address("Квазарная аллея, дом 3").dataset_id)
    completed = [p.label for p in places_search(typed)]
    stem, _got = _completions(typed)
    with connection.cursor() as cur:
        cur.execute(f"SELECT d.label FROM facilities_address d WHERE {search.ADDRESS_KEY} @@ %s::tsquery",
                    [" & ".join(f"'{s}'" for s in search._terms(cur, typed)[0][:-1]) + (" & " if " " in typed else "")
                     + f"'{stem}':*"])
        by_prefix = {r[0] for r in cur.fetchall()}
    assert by_prefix and set(completed) == by_prefix, (completed, by_prefix)
