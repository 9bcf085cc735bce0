"""Finding a place by its name or address: the registry's own words (facilities' names and addresses from their
datasets, the admin areas' names, and the `addresses` import target's addresses), tolerant of typos and word forms.

`places_search(text, limit=)` answers a list of Place, best first. The one rule of how a name is searched is the
SQL function facilities_search_key(text) (migration 0008): PostgreSQL's text search stems in the city's language
(settings.SEARCH_TEXT_CONFIG: "Тверской", "Тверская" and "Тверскую" are the stem "тверск"), and every source is
searched through a GIN index on that expression. A mistyped word ("Тварская") is matched first against the
vocabulary of the stems that exist (facilities_searchterm, pg_trgm similarity, as pg_trgm's documentation suggests
for spelling), and the query then asks for the close stems. The last word is also the start of a longer one (typing
as one goes; a number never is: "12" is a house, not the start of "120" to "129" and of every "№ 12..." in the
registry): the vocabulary completes it into the PREFIX_COMPLETIONS whole stems that most names hold, asked as
alternatives. A GIN prefix query (`'садов':*`) would collect every name holding any such word before the LIMIT:
on 1M facilities the slowest kind of search; it is only the fallback when the vocabulary knows no such word. A word's stem that nearly every name holds ("дом", the city's name: more than COMMON_TERM_DOCS names,
the vocabulary's count) is left out of the index condition when the query has a rarer one: it narrows nothing, and on
1M facilities walking its GIN posting tree was most of a search's time; it still counts in the ranking. The few
candidates are ranked by how much of the query each one's words cover exactly and by their trigram similarity to
what was typed.

Used by the residents' search box (routing/api.py GET /api/v1/places), Open311's address_string without lat/long
(open311.serializers) and the bench (bench/nearby_search_bench.py).
"""
import json
import re
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction

from geo_ourcity.languages import translated

# Each source: (kind, the SQL that finds its candidates for a tsquery %(q)s, at most %(per)s of them). The indexed
# expressions are exactly those of migration 0008's indexes (else the index is not used).
FACILITY_KEY = "facilities_search_key(f.name || ' ' || f.address)"
AREA_KEY = "facilities_search_key(a.name)"
ADDRESS_KEY = "facilities_search_key(d.label)"
# Only the generations whose table has its search index (Generation.searchable), read first and passed to
# SOURCES_SQL as constants, so the planner prunes the other partitions (a partition without the index would be a
# scan of every name, computing each one's stems). An array from a subquery is not pruned (PostgreSQL 15 prunes
# `key = ANY(...)` at run time only for a constant array): tests/facilities/test_search_per_generation.py.
SEARCHABLE_DATASETS_SQL = "SELECT g.dataset_id FROM facilities_generation g WHERE g.state = 'active' AND g.searchable"
SOURCES_SQL = f"""
    (SELECT 'area' AS kind, a.id, a.name AS label,
            jsonb_build_object('code', a.level, 'names', l.name_i18n)::text AS detail, ST_X(c) AS lon, ST_Y(c) AS lat,
            ST_XMin(a.geom) AS w, ST_YMin(a.geom) AS s, ST_XMax(a.geom) AS e, ST_YMax(a.geom) AS n
     FROM facilities_adminarea a JOIN facilities_arealevel l ON l.code = a.level, LATERAL ST_PointOnSurface(a.geom) c
     WHERE a.valid_to IS NULL AND {AREA_KEY} @@ %(q)s::tsquery LIMIT %(per)s)
    UNION ALL
    (SELECT 'address', d.id, d.label, d.district, ST_X(d.geom), ST_Y(d.geom), NULL, NULL, NULL, NULL
     FROM facilities_address d WHERE {ADDRESS_KEY} @@ %(q)s::tsquery LIMIT %(per)s)
    UNION ALL
    (SELECT 'facility', f.id, concat_ws(', ', nullif(f.name, ''), nullif(f.address, '')),
            jsonb_build_object('code', t.code, 'names', t.name_i18n)::text,
            ST_X(c), ST_Y(c), NULL, NULL, NULL, NULL
     FROM facilities_facility f JOIN facilities_facilitytype t ON t.id = f.type_id,
          LATERAL ST_PointOnSurface(f.geom) c
     WHERE f.valid_to IS NULL AND {FACILITY_KEY} @@ %(q)s::tsquery
       AND f.dataset_id = ANY(%(datasets)s) LIMIT %(per)s)
"""
CANDIDATES_PER_SOURCE = 100
KIND_BONUS = {"area": 0.15, "address": 0.1, "facility": 0.0}  # a district or an address before a building's name
TYPO_MIN = 0.35  # trigram similarity of a typed word's stem to a vocabulary stem, at least
TYPO_VARIANTS = 4  # close stems asked for one mistyped word, at most
PREFIX_COMPLETIONS = 6  # whole stems the last word (as typed so far) is completed into, the most common first
MAX_TERMS = 8  # words of a query that are searched (an address has fewer)
# A stem held by more names than this (of one source: facilities_searchterm.ndoc) narrows nothing: it is not asked of
# the index while the query has a rarer word (a bitmap of this many rows is a few milliseconds; "дом" in a city's
# address register is hundreds of thousands).
COMMON_TERM_DOCS = 50_000
_LEXEME = re.compile(r"^[\w.\-/]{1,60}$")  # what a stem may be to go into a tsquery (letters, digits, . - /)


@dataclass(frozen=True)
class Place:
    kind: str  # "area", "address" or "facility"
    id: int
    label: str
    detail: str  # the area's level, the address's district, the facility's type
    lon: float
    lat: float
    bbox: tuple | None  # (west, south, east, north) for an area: the map fits it
    score: float


def normalise_query(text):
    """The query as searched: one line, spaces collapsed, at most settings.PLACE_SEARCH_QUERY_MAX characters."""
    text = " ".join(str(text or "").replace("\x00", " ").split())
    return text[:settings.PLACE_SEARCH_QUERY_MAX]


def _terms(cur, text):
    stems, variants, _datasets = _terms_and_datasets(cur, text)
    return stems, variants


def _terms_and_datasets(cur, text):
    """(stems, variants, datasets): the query's stems in the order typed (facilities_search_key's lexemes, by position), and
    for each [(variant, kind, names holding it)]: kind "exact" for the stem itself when the vocabulary has it, else
    "typo" for the close ones (words only: a number, a house's or a postcode, is never "close" to another); and for
    the last stem also "prefix": the vocabulary's words that start with it, the most common first. One statement:
    each round trip to the database is a wait for a core on a busy server, so it also reads the datasets whose
    generations are searchable (SEARCHABLE_DATASETS_SQL, for SOURCES_SQL)."""
    cur.execute(
        f"""SELECT u.n, u.stem, v.term, v.kind, v.ndoc, ARRAY({SEARCHABLE_DATASETS_SQL})
           FROM (SELECT s.stem, row_number() OVER (ORDER BY s.pos) AS n, count(*) OVER () AS total
                 FROM (SELECT lexeme AS stem, positions[1] AS pos FROM unnest(facilities_search_key(%s))
                       ORDER BY positions[1] LIMIT %s) s) u
           LEFT JOIN LATERAL (
               (SELECT t.term, 'exact' AS kind, t.ndoc FROM facilities_searchterm t WHERE t.term = u.stem)
               UNION ALL
               (SELECT t.term, 'typo', t.ndoc FROM facilities_searchterm t
                WHERE length(u.stem) >= 3 AND u.stem !~ '[0-9]' AND t.term !~ '[0-9]' AND t.term %% u.stem AND similarity(t.term, u.stem) >= %s
                      AND NOT EXISTS (SELECT 1 FROM facilities_searchterm x WHERE x.term = u.stem)
                ORDER BY t.term <-> u.stem LIMIT %s)
               UNION ALL
               -- the words that start with the last stem: a byte-order range on the words-only index
               -- (migration 0015), so no character of the query is a pattern; starts_with() is the exact test.
               (SELECT t.term, 'prefix', t.ndoc FROM facilities_searchterm t
                WHERE u.n = u.total AND t.term !~ '[0-9]' AND t.term ~>=~ u.stem AND t.term ~<~ (u.stem || chr(1114111))
                      AND starts_with(t.term, u.stem) AND t.term <> u.stem
                ORDER BY t.ndoc DESC, t.term LIMIT %s)) v ON true
           ORDER BY u.n""",
        [text, 2 * MAX_TERMS, TYPO_MIN, TYPO_VARIANTS, PREFIX_COMPLETIONS])
    by_stem, datasets = {}, []
    for n, stem, term, kind, ndoc, datasets in cur.fetchall():
        found = by_stem.setdefault((n, stem), [])
        if term is not None and _LEXEME.match(term):
            found.append((term, kind, ndoc))
    kept = [(stem, found) for (_n, stem), found in by_stem.items() if _LEXEME.match(stem)][:MAX_TERMS]
    return [stem for stem, _found in kept], [found for _stem, found in kept], sorted(datasets)


def _quote(term):
    return "'" + term.replace("'", "''").replace("\\", "\\\\") + "'"


def _tsquery(groups, *, join=" & "):
    """groups: for each word, its alternatives as tsquery operands (quoted, a prefix with :*)."""
    return join.join("(" + " | ".join(group) + ")" for group in groups if group)


def _alternatives(stem, found, *, typing):
    """A word's operands: its known stem or close ones; for the word being typed, its completions too, or when the
    vocabulary completes it into nothing, the GIN prefix query as the fallback."""
    whole = [term for term, kind, _ndoc in found if kind != "prefix"]
    if not typing:
        return [_quote(term) for term in whole or [stem]]
    completions = [term for term, kind, _ndoc in found if kind == "prefix"]
    if completions or any(kind == "exact" for _t, kind, _n in found):
        return [_quote(term) for term in dict.fromkeys(whole + completions)]  # a close stem may be a completion too
    return [_quote(term) + ":*" for term in whole or [stem]]


def _is_word(stem):
    return any(ch.isalpha() for ch in stem)


def _queries(stems, variants):
    """The tsqueries to try, strictest first: every word (the last one also as a prefix); then the words without
    the ones nothing matches (a house number the register lacks); then any known word. A number alone (a house, a
    postcode) never locates anything: without a word the vocabulary knows (or a last word being typed), there is
    no query at all."""
    # each word's own stem or its close ones, without the last word's completions
    whole = [[(t, kind, n) for t, kind, n in found if kind != "prefix"] for found in variants]
    typing = _is_word(stems[-1]) and len(stems[-1]) >= 3  # the last word may be the start of a known one
    if not typing and not any(found for stem, found in zip(stems, whole) if _is_word(stem)):
        return
    prefix = _is_word(stems[-1])  # the last word as typed so far (a number is a house: never a prefix)
    groups = [_alternatives(stem, found, typing=prefix and i == len(stems) - 1)
              for i, (stem, found) in enumerate(zip(stems, variants))]
    exact = [[_quote(term) for term, _kind, _ndoc in found] or [_quote(stem)]
             for stem, found in zip(stems, whole)]  # the words as whole ones (the later, looser queries)
    # Only a word is common: a number (a house) is what narrows a street to an address.
    common = [_is_word(stem) and bool(found) and all(ndoc > COMMON_TERM_DOCS for _t, _k, ndoc in found)
              for stem, found in zip(stems, whole)]
    common[-1] = common[-1] and not prefix  # a prefix's count is not its stem's

    def narrowing(chosen, flags):
        """The groups without the common ones, while a rarer one is left (else all of them)."""
        rare = [g for g, c in zip(chosen, flags) if not c]
        return rare or chosen

    yield _tsquery(narrowing(groups, common))
    known = [(g, c) for g, found, c in zip(exact, whole, common) if found]
    if known and len(known) < len(groups) and any(_is_word(stem) for stem, found in zip(stems, whole) if found):
        yield _tsquery(narrowing(*zip(*known)))
    words = [(g, c) for g, found, stem, c in zip(exact, whole, stems, common) if found and _is_word(stem)]
    if words and (len(words) > 1 or len(words) < len(known)):
        yield _tsquery(narrowing(*zip(*words)), join=" | ")


def places_search(text, *, limit=8):
    """The places whose names or addresses match `text`, best first (at most `limit`)."""
    text = normalise_query(text)
    if len(text) < 2:
        return []
    with connection.cursor() as cur:
        stems, variants, datasets = _terms_and_datasets(cur, text)
        if not stems:
            return []
        exact_terms = [term for found in variants for term, kind, _ndoc in found if kind == "exact"]
        for query in _queries(stems, variants):
            cur.execute(
                f"""SELECT k.kind, k.id, k.label, k.detail, k.lon, k.lat, k.w, k.s, k.e, k.n,
                           similarity(lower(k.label), lower(%(text)s))
                             + 0.5 * coalesce(ts_rank(facilities_search_key(k.label), %(exact)s::tsquery), 0)
                             + CASE k.kind WHEN 'area' THEN %(area)s WHEN 'address' THEN %(address)s ELSE 0 END
                             AS score
                    FROM ({SOURCES_SQL}) k
                    ORDER BY score DESC, length(k.label), k.kind, k.id LIMIT %(limit)s""",
                {"q": query, "per": CANDIDATES_PER_SOURCE, "datasets": datasets, "text": text, "limit": int(limit),
                 "exact": _tsquery([[_quote(t)] for t in exact_terms], join=" | ") or None,
                 "area": KIND_BONUS["area"], "address": KIND_BONUS["address"]})
            rows = cur.fetchall()
            if rows:
                return [Place(kind=r[0], id=r[1], label=r[2], detail=_detail(r[0], r[3]), lon=float(r[4]), lat=float(r[5]),
                              bbox=(r[6], r[7], r[8], r[9]) if r[6] is not None else None, score=float(r[10]))
                        for r in rows]
    return []


def _detail(kind, detail):
    """What is shown beside a place: an area's level or a facility's type by its translated name in the active
    language (geo_ourcity.languages.translated; its code when it has none), an address's district."""
    if kind in ("area", "facility") and detail:
        value = json.loads(detail)
        return translated(value.get("names") or {}) or value.get("code") or ""
    return detail or ""


def place_for_address(text):
    """The best place for an address typed by a resident or sent by an integrator (Open311 address_string without
    lat/long), or None when nothing matches."""
    found = places_search(text, limit=1)
    return found[0] if found else None


# --- the vocabulary ----------------------------------------------------------------------------------------

VOCABULARY_SQL = {
    "facilities": f"SELECT {FACILITY_KEY} FROM facilities_facility f WHERE f.valid_to IS NULL AND f.dataset_id = %d",
    "areas": f"SELECT {AREA_KEY} FROM facilities_adminarea a WHERE a.valid_to IS NULL",
    "addresses": f"SELECT {ADDRESS_KEY} FROM facilities_address d WHERE d.dataset_id = %d",
}


def search_terms_add(cur, *, target, dataset_id=None):
    """Add the stems of a target's searchable names (of one dataset) to the vocabulary, in the caller's
    transaction (the import's): an import that rolls back adds none. A stem already known is written again only
    when more names hold it (rewriting 900,000 unchanged rows doubled a re-import's time)."""
    sql = VOCABULARY_SQL[target]
    if "%d" in sql:
        sql = sql % int(dataset_id)
    _terms_add(cur, sql)


def _terms_add(cur, documents_sql):
    # Each document's lexemes counted by a hash aggregate (a tsvector holds a lexeme once, so the count is ts_stat's
    # ndoc). ts_stat keeps its words in a binary tree of its own: on the routing bench's 1M facilities, whose names
    # carry their numbers (a million distinct words, in the order loaded), it ran over 10 minutes; this, 4.8 s.
    cur.execute(f"INSERT INTO facilities_searchterm AS t (term, ndoc) "
                f"SELECT l.lexeme, count(*) FROM ({documents_sql}) d(v), unnest(d.v) l "
                f"WHERE length(l.lexeme) <= 200 GROUP BY l.lexeme "
                f"ON CONFLICT (term) DO UPDATE SET ndoc = excluded.ndoc WHERE t.ndoc < excluded.ndoc")



# --- a facilities generation becomes searchable ---------------------------------------------------------------

GENERATION_INDEX_SQL = """CREATE INDEX "{name}" ON "{table}" USING gin (facilities_search_key(name || ' ' || address))"""


def search_index_exists(cur, table):
    """Whether the table has the search index, whatever its name: a generation's table is renamed when it is
    switched out or back in (importers.load), and its indexes keep the names they were built with."""
    cur.execute("SELECT EXISTS (SELECT 1 FROM pg_indexes WHERE schemaname = current_schema() AND tablename = %s "
                "AND indexdef LIKE '%%USING gin (facilities_search_key(%%')", [table])
    return cur.fetchone()[0]
_TABLE = re.compile(r"^facilities_facility_[a-z0-9_]{1,40}$")


def generation_make_searchable(generation_id):
    """Give an active generation of a facilities dataset its search index (the same expression as the selector's,
    FACILITY_KEY) and add its names' stems to the vocabulary, in one transaction: after it commits the place
    search reads the generation (Generation.searchable), and not before. True if this call did it; False if it was
    done, is being done by another caller, or the generation is no longer active.

    Just after the commit that switched the generation in (importers.core, the rollback), and by the scheduler's
    sweep for any a crash left behind (facilities.tasks). The table is locked (SHARE: readers go on, the next
    import's switch waits and retries) before the generation's row, the order an import's switch takes them in."""
    from .models import Generation

    table = Generation.objects.filter(pk=generation_id, state=Generation.State.ACTIVE, searchable=False) \
        .values_list("table_name", flat=True).first()
    if table is None or not _TABLE.match(table):
        return False
    # Outside a transaction the generation's rows are committed, so another connection sees them: the vocabulary is
    # counted there while this one builds the index (one process each; GIN builds in one in PostgreSQL 15).
    elsewhere = not connection.in_atomic_block
    documents = f'SELECT {FACILITY_KEY} FROM "{table}" f WHERE f.valid_to IS NULL'
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", [table])
        if not cur.fetchone()[0]:
            return False
        cur.execute(f'LOCK TABLE "{table}" IN SHARE MODE')
        generation = Generation.objects.select_for_update(skip_locked=True).filter(
            pk=generation_id, state=Generation.State.ACTIVE, searchable=False, table_name=table).first()
        if generation is None:
            return False
        vocabulary = _TermsElsewhere(documents) if elsewhere else None
        try:
            if not search_index_exists(cur, table):
                cur.execute("SELECT to_regclass(%s) IS NULL", [f"{table}_search"])
                name = f"{table}_search" if cur.fetchone()[0] else f"{table}_search_g{int(generation_id)}"
                cur.execute(GENERATION_INDEX_SQL.format(name=name, table=table))
        finally:
            if vocabulary is not None:
                vocabulary.join()
        if vocabulary is None:
            _terms_add(cur, documents)
        elif vocabulary.error is not None:
            # Its terms stay unwritten or written (the vocabulary only grows, and adds them again at the next try);
            # the generation stays unsearchable until a try has both.
            raise vocabulary.error
        Generation.objects.filter(pk=generation.pk).update(searchable=True)
    return True


class _TermsElsewhere:
    """_terms_add on a connection of its own, committed there, in a thread started at once (join() waits)."""

    def __init__(self, documents_sql):
        import threading

        self.error = None
        self._params = connection.get_connection_params()
        self._thread = threading.Thread(target=self._run, args=(documents_sql,), name="search-vocabulary")
        self._thread.start()

    def _run(self, documents_sql):
        try:
            raw = connection.get_new_connection(self._params)
            try:
                raw.autocommit = True  # one statement: its own transaction
                with raw.cursor() as cur:
                    _terms_add(cur, documents_sql)
            finally:
                raw.close()
        except Exception as exc:  # noqa: BLE001 - raised in the caller's thread (generation_make_searchable)
            self.error = exc

    def join(self):
        self._thread.join()


def generations_make_searchable(*, dataset_id=None):
    """generation_make_searchable for every active generation not searchable yet (of one dataset, if given).
    Returns how many this call made searchable."""
    from .models import Generation

    pending = Generation.objects.filter(state=Generation.State.ACTIVE, searchable=False)
    if dataset_id is not None:
        pending = pending.filter(dataset_id=dataset_id)
    return sum(generation_make_searchable(pk) for pk in pending.order_by("id").values_list("pk", flat=True))
