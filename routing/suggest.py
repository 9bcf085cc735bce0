"""Category suggestion: which services of the active catalogue a resident's words and place point to.

`suggest(description, point=None)` answers a list of Suggestion(service_code, confidence), best first, and the
name of what answered (`SuggestResult.model`). Three sources, all offline (nothing is fetched at run time):

1. The lexical scorer (always): the catalogue's own words (names, descriptions, keywords in every language) against
   the description's, as lemmas (pymorphy3 with its Russian dictionaries: "ямы", "яму" and "яма" are one word), with
   typos forgiven (a word the dictionary does not know is compared letter by letter with the catalogue's words:
   "фанарь" is "фонарь") and near meanings found through natasha's bundled navec word vectors ("лавочка" is close
   to "скамейка"). Each catalogue word counts by where it stands (keyword > name > description) and by how few
   categories share it (IDF).
2. The place (with a point): the facility types under or near the point (facilities.selectors): a category over a
   type that covers the point (a park, a school's grounds) or lies within the category's radius gains.
3. The model learned from the city's history (routing.suggest_model), when one has been trained: its
   probabilities are blended with the lexical scorer's (settings.SUGGEST_MODEL_WEIGHT).

What is cached per process is what follows from data the database names by version: the catalogue's word index is
rebuilt when the catalogue's signature changes, the model reloaded when a newer one is active. So two app servers
never answer from different catalogues or models for longer than one request.
"""
import math
import re
import threading
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from functools import lru_cache
from importlib import resources

import numpy as np
from django.conf import settings
from django.db import connection

from facilities.selectors import place_of_points

from .models import Category

LEXICAL_VERSION = "lexical-1"
TOKEN_RE = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")
NAVEC_FILE = "data/emb/navec_news_v1_1B_250K_300d_100q.tar"  # inside the natasha wheel (PITFALLS.md)
# Where a catalogue word stands, and how much it counts there.
FIELD_WEIGHTS = {"keywords": 1.0, "name": 0.8, "description": 0.5, "group": 0.3}
PHRASE_WORD = 0.7  # a word of a keyword phrase, against a keyword of its own
SKIP_POS = {"PREP", "CONJ", "PRCL", "INTJ", "NPRO", "PRED"}
EN_STOP = {"the", "and", "for", "with", "not", "are", "was", "has", "have", "this", "that", "there", "from", "its",
           "our", "near", "all", "out", "off", "into", "been", "very"}
FUZZY_MIN = 0.8  # letter-by-letter likeness (difflib ratio) for a word the dictionary does not know
VECTOR_MIN = 0.5  # cosine of navec vectors for a near meaning
VECTOR_WEIGHT = 0.6  # a near meaning counts less than the same word
MAX_TOKENS = 80  # distinct words of a description that are scored (the rest add little and cost time)
TEMPERATURE = 0.45  # softmax temperature over the lexical scores (with a null class at 0: no words, no confidence)
PLACE_COVERS = 1.0  # score a category gains when a facility of its types covers the point
PLACE_ELSEWHERE = 0.6  # ... and the factor on the words' score of the categories over no facility type then
PLACE_NEAR = 0.6  # ... at most, for one within its radius (falling off with the distance)
PLACE_RADIUS_MIN = 50  # metres: how near counts, at least, for a category without a radius
PLACE_RADIUS_MAX = 300


@dataclass(frozen=True)
class Suggestion:
    service_code: str
    confidence: float


@dataclass
class SuggestResult:
    suggestions: list  # Suggestion, best first
    model: str  # what answered: "lexical-1", or "lexical-1+history-v3"
    place_types: list = field(default_factory=list)  # facility type codes under or near the point


class OutsideCity(ValueError):
    """The point lies in no admin area of the city."""


# --- language resources (loaded once per process, from the installed wheels) ------------------------------

_lock = threading.Lock()


@lru_cache(maxsize=1)
def _morph():
    import pymorphy3

    return pymorphy3.MorphAnalyzer(lang="ru")


@lru_cache(maxsize=1)
def _navec():
    """natasha's bundled navec vectors (250k words x 300 dims), from the installed wheel; None if absent."""
    from navec import Navec

    path = resources.files("natasha") / NAVEC_FILE
    if not path.is_file():
        return None
    return Navec.load(str(path))


def warm_up():
    """Load the dictionaries and vectors now (the first suggestion would otherwise take about a second)."""
    _morph()
    _navec()


def _cyrillic(word):
    return any("а" <= ch <= "я" for ch in word)


@lru_cache(maxsize=50_000)
def _analyse(word):
    """(lemmas, known, skip) of one lower-case word: its dictionary forms (all likely ones), whether the
    dictionary knows it, and whether it is a function word."""
    if not _cyrillic(word):
        if len(word) < 3 or word in EN_STOP:
            return (), True, True
        stem = word[:-1] if len(word) > 4 and word.endswith("s") and not word.endswith("ss") else word
        return (stem,), True, False
    parses = _morph().parse(word)
    if not parses:
        return (word,), False, False
    top = parses[0]
    if top.tag.POS in SKIP_POS or len(word) < 2:
        return (), True, True
    best = top.score
    lemmas = []
    for parse in parses[:4]:
        if parse.score >= best * 0.3 and parse.normal_form.replace("ё", "е") not in lemmas:
            lemmas.append(parse.normal_form.replace("ё", "е"))
    known = _morph().word_is_known(word)
    return tuple(lemmas), known, False


def tokens(text):
    """The description's distinct words, lower case, ё as е, in order of appearance (at most MAX_TOKENS)."""
    seen = []
    for match in TOKEN_RE.finditer((text or "").lower().replace("ё", "е")):
        for word in match.group(0).split("-"):
            if word and word not in seen:
                seen.append(word)
                if len(seen) >= MAX_TOKENS:
                    return seen
    return seen


# --- the catalogue's word index -----------------------------------------------------------------------------

CATALOGUE_SIGNATURE_SQL = """
    SELECT md5(coalesce(string_agg(concat_ws('|', k.id, k.code, k.name_i18n::text, k.group_i18n::text,
                                             k.description_i18n::text, k.keywords, k.keywords_en,
                                             k.radius_m, t.types), '#' ORDER BY k.id), '')),
           (SELECT id FROM routing_suggestionmodel WHERE active ORDER BY version DESC LIMIT 1)
    FROM routing_category k
    LEFT JOIN LATERAL (SELECT string_agg(m.facilitytype_id::text, ',' ORDER BY m.facilitytype_id) AS types
                       FROM routing_category_facility_types m WHERE m.category_id = k.id) t ON true
    WHERE k.active"""


@dataclass
class Lexicon:
    codes: list  # service codes, in the order of the columns
    terms: list  # the catalogue's lemmas, in the order of the rows
    term_index: dict  # lemma -> row
    weights: np.ndarray  # terms x categories: field weight x IDF (0: not in that category)
    vectors: np.ndarray | None  # terms x 300, unit length (zero rows: no vector)
    bigrams: list  # per term: its set of letter pairs, for the typo search
    type_categories: dict  # facility type id -> [(column, radius_m)]
    placeless: np.ndarray  # the columns of the categories over no facility type


def _bigrams(word):
    padded = f"^{word}$"
    return {padded[i:i + 2] for i in range(len(padded) - 1)}


def _field_words(category):
    """(field weight, text) of the category's words. A keyword phrase's words count less than a keyword of
    its own ("мусор" beside "мусор у школы")."""
    for phrase in f"{category.keywords},{category.keywords_en}".split(","):
        words = tokens(phrase)
        yield FIELD_WEIGHTS["keywords"] * (1.0 if len(words) == 1 else PHRASE_WORD), phrase
    # Every language's text of the translated fields: residents may write in any of the city's languages.
    for weight, values in ((FIELD_WEIGHTS["name"], category.name_i18n),
                           (FIELD_WEIGHTS["description"], category.description_i18n),
                           (FIELD_WEIGHTS["group"], category.group_i18n)):
        yield weight, " ".join(str(v) for v in (values or {}).values() if v)


def build_lexicon(categories):
    """The word index of these categories (each with `facility_types` loaded)."""
    codes = [c.code for c in categories]
    per_term = {}  # lemma -> {column: weight}
    for col, category in enumerate(categories):
        for weight, text in _field_words(category):
            for word in tokens(text):
                lemmas, _known, skip = _analyse(word)
                if skip:
                    continue
                # the word's first (most likely) dictionary form is the catalogue's term for it
                lemma = lemmas[0] if lemmas else word
                cell = per_term.setdefault(lemma, {})
                cell[col] = max(cell.get(col, 0.0), weight)
    terms = sorted(per_term)
    n = max(len(codes), 1)
    weights = np.zeros((len(terms), len(codes)), dtype=np.float32)
    for row, term in enumerate(terms):
        cells = per_term[term]
        idf = math.log(1 + n / len(cells)) / math.log(1 + n)
        for col, weight in cells.items():
            weights[row, col] = weight * idf
    navec = _navec()
    vectors = None
    if navec is not None and terms:
        vectors = np.zeros((len(terms), 300), dtype=np.float32)
        for row, term in enumerate(terms):
            if term in navec:
                v = navec[term]
                vectors[row] = v / (np.linalg.norm(v) or 1.0)
    type_categories = {}
    for col, category in enumerate(categories):
        for facility_type in category.facility_types.all():
            type_categories.setdefault(facility_type.pk, []).append((col, category.radius_m))
    return Lexicon(codes=codes, terms=terms, term_index={t: i for i, t in enumerate(terms)}, weights=weights,
                   vectors=vectors, bigrams=[_bigrams(t) for t in terms], type_categories=type_categories,
                   placeless=np.array([col for col, c in enumerate(categories) if not c.facility_types.all()],
                                      dtype=np.int64))


def _fuzzy_rows(lex, word):
    """Rows of catalogue words that look like `word` (a typo): (row, likeness)."""
    grams = _bigrams(word)
    out = []
    for row, term_grams in enumerate(lex.bigrams):
        if abs(len(lex.terms[row]) - len(word)) > 2:
            continue
        overlap = len(grams & term_grams) / len(grams | term_grams)
        if overlap < 0.3:
            continue
        ratio = SequenceMatcher(None, word, lex.terms[row]).ratio()
        if ratio >= FUZZY_MIN:
            out.append((row, ratio))
    return out


def lexical_scores(lex, text):
    """Each category's score for the text (the sum over its words of the best match among the category's)."""
    scores = np.zeros(len(lex.codes), dtype=np.float32)
    if not lex.terms:
        return scores
    navec = _navec() if lex.vectors is not None else None
    for word in tokens(text):
        lemmas, known, skip = _analyse(word)
        if skip:
            continue
        sims = {}
        for lemma in lemmas or (word,):
            row = lex.term_index.get(lemma)
            if row is not None:
                sims[row] = 1.0
        in_vectors = navec is not None and any(lemma in navec for lemma in lemmas)
        if not sims and not known and not in_vectors:
            for candidate in {word, *lemmas}:
                for row, ratio in _fuzzy_rows(lex, candidate):
                    sims[row] = max(sims.get(row, 0.0), ratio)
        if navec is not None:
            for lemma in lemmas:
                if lemma in navec:
                    v = navec[lemma]
                    cos = lex.vectors @ (v / (np.linalg.norm(v) or 1.0))
                    for row in np.flatnonzero(cos >= VECTOR_MIN):
                        sims[row] = max(sims.get(row, 0.0), float(cos[row]) * VECTOR_WEIGHT)
                    break
        if not sims:
            continue
        rows = np.fromiter(sims.keys(), dtype=np.int64)
        values = np.fromiter(sims.values(), dtype=np.float32)
        scores += (lex.weights[rows] * values[:, None]).max(axis=0)
    return scores


@dataclass
class Place:
    gains: np.ndarray  # per category: added to its score (a facility of its types covers the point, or is near)
    scale: np.ndarray  # per category: its words' score is multiplied by this (see PLACE_ELSEWHERE)
    types: list  # the facility type ids found
    in_city: bool = True  # an area of the city covers the point (True without a point)


def _no_place(lex):
    return Place(np.zeros(len(lex.codes), dtype=np.float32), np.ones(len(lex.codes), dtype=np.float32), [])


def place_scores(lex, points):
    """A Place for each point (or None), from one query for all the points."""
    out = [_no_place(lex) for _ in points]
    asked = [i for i, p in enumerate(points) if p is not None]
    if not asked:
        return out
    radius = max([PLACE_RADIUS_MIN] + [min(max(r, PLACE_RADIUS_MIN), PLACE_RADIUS_MAX)
                                       for cats in lex.type_categories.values() for _c, r in cats])
    for i, (in_city, nearby) in zip(asked, place_of_points([points[i] for i in asked], radius_m=radius)):
        out[i] = _gains(lex, nearby)
        out[i].in_city = in_city
    return out


def _gains(lex, nearby):
    place = _no_place(lex)
    gains, found, covered = place.gains, place.types, False
    for item in nearby:
        for col, cat_radius in lex.type_categories.get(item.type_id, ()):
            reach = min(max(cat_radius, PLACE_RADIUS_MIN), PLACE_RADIUS_MAX)
            if item.covers:
                gain, covered = PLACE_COVERS, True
            elif item.distance_m <= reach:
                gain = PLACE_NEAR * (1 - item.distance_m / (reach * 1.5))
            else:
                continue
            gains[col] = max(gains[col], gain)
        found.append(item.type_id)
    if covered:  # inside a facility's grounds: the categories of no facility (a yard, a street) are less likely
        place.scale[lex.placeless] = PLACE_ELSEWHERE
    return place


def _softmax_with_null(scores):
    """Confidences from scores: a softmax in which a null class scores 0, so no evidence gives no confidence."""
    z = np.concatenate([scores, [0.0]]) / TEMPERATURE
    z -= z.max()
    e = np.exp(z)
    return (e / e.sum())[:-1]


# --- the per-process state, checked against the database each call -------------------------------------------

_state = {"signature": None, "lexicon": None, "model_id": None, "model": None}


def _current():
    """(lexicon, model or None) as the database has them now (one small query to tell)."""
    with connection.cursor() as cur:
        cur.execute(CATALOGUE_SIGNATURE_SQL)
        signature, model_id = cur.fetchone()  # an id is never used again (a version could be, after a rollback)
    with _lock:
        if _state["signature"] != signature:
            categories = list(Category.objects.filter(active=True).prefetch_related("facility_types")
                              .order_by("code"))
            _state["lexicon"], _state["signature"] = build_lexicon(categories), signature
        if _state["model_id"] != model_id:
            from .suggest_model import model_load

            _state["model"], _state["model_id"] = model_load(model_id, by="id"), model_id
        return _state["lexicon"], _state["model"]


def suggest(description, point=None, *, limit=5):
    """The active catalogue's categories for this description (and point: (lon, lat)), best first.

    Raises OutsideCity when a point is given that no area of the city covers."""
    return suggest_many([(description, point)], limit=limit, in_city=True)[0]


def suggest_many(items, *, limit=5, in_city=False):
    """suggest() for many (description, point) pairs at once, in two queries whatever their number (one
    without points). With `in_city`, a point that no area of the city covers raises OutsideCity; otherwise
    (stored complaints, whose points were checked when filed) it is scored as any other."""
    lex, model = _current()
    places = place_scores(lex, [point for _d, point in items])
    if in_city:
        for (_d, point), place in zip(items, places):
            if not place.in_city:
                raise OutsideCity(point)
    if not lex.codes:
        return [SuggestResult(suggestions=[], model=LEXICAL_VERSION) for _ in items]
    return [_rank(lex, model, description, place, limit) for (description, _p), place in zip(items, places)]


def _rank(lex, model, description, place, limit):
    types = place.types
    confidence = _softmax_with_null(lexical_scores(lex, description) * place.scale + place.gains)
    name = LEXICAL_VERSION
    if model is not None:
        learned = model.probabilities(description, lex.codes)
        if learned is not None:
            weight = settings.SUGGEST_MODEL_WEIGHT
            confidence = (1 - weight) * confidence + weight * learned
            name = f"{LEXICAL_VERSION}+{model.name}"
    order = np.argsort(-confidence, kind="stable")[:limit]
    return SuggestResult(
        suggestions=[Suggestion(lex.codes[i], round(float(confidence[i]), 4)) for i in order],
        model=name, place_types=types)


@dataclass(frozen=True)
class CategoryCheck:
    """A complaint whose words and place point elsewhere: the category suggested instead, and why."""

    service_code: str
    confidence: float
    reason: str  # "catch_all": filed under a catch-all category; "mismatch": another category is much likelier
    model: str


def category_checks(items):
    """{key: CategoryCheck} for the (key, description, point, category_code) items whose text and place point
    strongly (settings.SUGGEST_FLAG_CONFIDENCE) to another category than their own, or whose own is a catch-all
    category (settings.SUGGEST_CATCH_ALL) while another reaches settings.SUGGEST_CATCH_ALL_MIN. A few queries for
    all of them (a page of the staff list)."""
    items = list(items)
    results = suggest_many([(description, point) for _k, description, point, _c in items], limit=3)
    checks = {}
    for (key, _d, _p, code), result in zip(items, results):
        check = _check(result, code)
        if check is not None:
            checks[key] = check
    return checks


def _check(result, category_code):
    catch_all = set(settings.SUGGEST_CATCH_ALL)
    best = next((s for s in result.suggestions if s.service_code not in catch_all), None)
    if best is None or best.service_code == category_code:
        return None
    if category_code in catch_all:
        if best.confidence >= settings.SUGGEST_CATCH_ALL_MIN:
            return CategoryCheck(best.service_code, best.confidence, "catch_all", result.model)
        return None
    if best.confidence >= settings.SUGGEST_FLAG_CONFIDENCE:
        return CategoryCheck(best.service_code, best.confidence, "mismatch", result.model)
    return None


def category_check(*, description, point, category_code):
    """category_checks for one complaint: its CategoryCheck or None."""
    return category_checks([(None, description, point, category_code)]).get(None)
