#!/usr/bin/env python
"""Nearby and place-search benchmark (issue 10): the demo city plus 1,000,000 synthetic facilities with Russian
names and addresses (loaded through import_dataset, so with the search index and vocabulary an import builds) and
1,000,000 complaints (a quarter open, half of them around 2,000 hot spots), in a database of its own.

  nearby    complaints.selectors.complaints_nearby() (the open complaints of a category group within 250 m, the
            five nearest, a description as the tie-break), p50/p99 over random points (half at hot spots); the
            same through GET /api/v1/nearby (Django's test client: view, serializers, no HTTP); beside the raw SQL
            floor (one statement, psycopg2, no Django) and FixMyStreet's nearby shape (a latitude/longitude box,
            then spherical distance for every complaint in it, ordered: its problem_find_nearby + ORDER BY);
  search    facilities.search.places_search() over a mix of typed queries (full addresses, street and house, word
            forms, typos, prefixes, facility names, districts), p50/p99; beside the raw SQL floor (the candidate
            statement alone, for the query's exact stems) and pg_trgm alone (similarity ordering of the labels
            through a trigram GiST index, as simple geocoders do).

  http      both over HTTP through the real stack (gunicorn sync workers, the middleware, the rate limit in
            Redis, the views and serializers), each query asked of the endpoint and of its floor in the same server
            (bench/nearby_search_http/nearby_search_floor.py: one raw statement, JSON out), one after the other,
            p50/p95/p99 and the ratio to the floor's; the searches include the address register's labels (an
            `addresses` import of --addresses generated points, 400,000 by default: about Moscow's register).

Targets (over HTTP): nearby p99 <= 20 ms, search p99 <= 30 ms. Results: a table on stdout, bench/results/nearby_search.json
and the "Nearby and place search" section of bench/README.md.

    .venv/bin/python bench/nearby_search_bench.py                     # the full run
    .venv/bin/python bench/nearby_search_bench.py --n 100000 --queries 500 --check   # a quick check
"""
import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import routing_bench as rb  # noqa: E402 (the routing bench's database helpers: one way to build a bench database)

ROOT = rb.ROOT
RESULTS = ROOT / "bench" / "results" / "nearby_search.json"
README = ROOT / "bench" / "README.md"
CACHE = ROOT / "var" / "bench" / "nearby_search"
SEED = 20261202
TARGET_NEARBY_P99_MS = 20.0
TARGET_SEARCH_P99_MS = 30.0
HOTSPOTS = 2_000
ADDRESSES_FILE = []  # the address register's CSV once generated (search_cases draws queries from it)
TRGM_QUERIES = [300]  # the pg_trgm peer's queries (it is slow: one round of these; --trgm-queries)
TYPES = {"streetlight": ("Опора освещения", 0.55), "bus_stop": ("Остановка", 0.10),
         "playground": ("Детская площадка", 0.15), "waste_site": ("Контейнерная площадка", 0.20)}
ADJECTIVES = ["Садовая", "Лесная", "Парковая", "Центральная", "Школьная", "Новая", "Молодёжная", "Полевая",
              "Речная", "Зелёная", "Луговая", "Солнечная", "Заводская", "Советская", "Рабочая", "Почтовая",
              "Вокзальная", "Озёрная", "Берёзовая", "Липовая", "Сиреневая", "Цветочная", "Южная", "Северная",
              "Восточная", "Западная", "Строителей", "Мира", "Победы", "Дружбы", "Народная", "Спортивная",
              "Весенняя", "Снежная", "Кленовая", "Рябиновая", "Песчаная", "Каменная", "Светлая", "Тихая"]
SURNAMES = ["Пушкина", "Гоголя", "Лермонтова", "Толстого", "Чехова", "Маяковского", "Есенина", "Ломоносова",
            "Гагарина", "Королёва", "Чкалова", "Титова", "Циолковского", "Менделеева", "Павлова", "Вавилова",
            "Лобачевского", "Курчатова", "Плеханова", "Радищева", "Грибоедова", "Островского", "Некрасова",
            "Тургенева", "Герцена", "Белинского", "Достоевского", "Крылова", "Державина", "Суворова"]
KINDS = ["улица", "переулок", "проезд", "бульвар", "шоссе"]
DESCRIPTIONS = ["Переполнены мусорные контейнеры", "Не горит фонарь у подъезда", "Сломаны качели на площадке",
                "Глубокая яма на проезжей части", "Брошенный автомобиль во дворе", "Не убран снег с тротуара",
                "Разрушен павильон остановки", "Течёт вода из люка", "Сломана скамейка", "Граффити на стене"]


def log(text):
    print(text, file=sys.stderr, flush=True)


def streets():
    """About 3,500 street names: "1-я Садовая улица", "улица Пушкина", ..."""
    out = []
    for kind in KINDS:
        for adjective in ADJECTIVES:
            for number in ["", *(f"{i}-я " for i in range(1, 16))]:
                out.append(f"{number}{adjective} {kind}")
        out += [f"{kind} {surname}" for surname in SURNAMES]
    return out


def generate(n):
    """The facilities (CSV with lon/lat, names and addresses) and their spec; cached by size and seed."""
    import numpy as np
    import pandas as pd
    import yaml

    CACHE.mkdir(parents=True, exist_ok=True)
    path, spec = CACHE / f"facilities-{n}-{SEED}-v2.csv", CACHE / "facilities.yaml"
    spec.write_text(yaml.safe_dump({
        "dataset": "bench-find-facilities", "target": "facilities", "key": "key",
        "source": {"lon": "lon", "lat": "lat"}, "type": {"field": "type"}, "owner": {"match": "code", "field": "owner"},
        "name": "name", "address": "address"}, allow_unicode=True), encoding="utf-8")
    if not path.exists():
        log(f"generating {n:,} facilities with names and addresses ...")
        rng = np.random.default_rng(SEED)
        x, y = rb.points_in_city(n, rng)
        names = streets()
        street = rng.integers(0, len(names), n)
        house = rng.integers(1, 151, n)
        korpus = np.where(rng.random(n) < 0.2, rng.integers(1, 5, n), 0)
        types = rng.choice(list(TYPES), size=n, p=[share for _label, share in TYPES.values()])
        address = [f"город Москва, {names[s]}, дом {h}" + (f", корпус {k}" if k else "")
                   for s, h, k in zip(street, house, korpus)]
        label = [TYPES[t][0] + (f" «{names[s]}»" if t == "bus_stop" else f" № {i}")
                 for i, (t, s) in enumerate(zip(types, street))]
        pd.DataFrame({"key": np.arange(n), "type": types, "owner": "mos", "name": label, "address": address,
                      "lon": x, "lat": y}).to_csv(path.with_suffix(".tmp"), index=False)
        path.with_suffix(".tmp").rename(path)
    return path, spec


def generate_addresses(n):
    """The address register (the `addresses` target, data.mos.ru's shape reduced to label, street, house): n
    addresses on the same streets as the facilities, each a point in the city; cached by size and seed."""
    import numpy as np
    import pandas as pd
    import yaml

    CACHE.mkdir(parents=True, exist_ok=True)
    path, spec = CACHE / f"addresses-{n}-{SEED}.csv", CACHE / "addresses.yaml"
    spec.write_text(yaml.safe_dump({
        "dataset": "bench-find-addresses", "target": "addresses", "key": "key",
        "source": {"lon": "lon", "lat": "lat"}, "label": "label", "street": "street", "house": "house"},
        allow_unicode=True), encoding="utf-8")
    if not path.exists():
        log(f"generating {n:,} addresses ...")
        rng = np.random.default_rng(SEED + 5)
        x, y = rb.points_in_city(n, rng)
        names = streets()
        street = rng.integers(0, len(names), n)
        house = rng.integers(1, 201, n)
        korpus = np.where(rng.random(n) < 0.25, rng.integers(1, 6, n), 0)
        houses = [f"дом {h}" + (f", корпус {k}" if k else "") for h, k in zip(house, korpus)]
        pd.DataFrame({"key": np.arange(n), "label": [f"{names[s]}, {h}" for s, h in zip(street, houses)],
                      "street": [names[s] for s in street], "house": houses, "lon": x, "lat": y}
                     ).to_csv(path.with_suffix(".tmp"), index=False)
        path.with_suffix(".tmp").rename(path)
    return path, spec


def build_addresses(n):
    path, spec = generate_addresses(n)
    log(f"importing {n:,} addresses through import_dataset ...")
    started = time.perf_counter()
    rb.manage("import_dataset", str(path), "--spec", str(spec), "--commit", "--quiet")
    with rb.pg_connect() as conn, conn.cursor() as cur:
        cur.execute("VACUUM ANALYZE facilities_address")
    return round(time.perf_counter() - started, 1)


def build(db_name, n, complaints):
    with rb.pg_connect("postgres") as conn, conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{db_name}"')
    with rb.pg_connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    log("migrating and loading the demo city ...")
    rb.manage("migrate", "--noinput", "-v", "0")
    rb.manage("load_demo")
    path, spec = generate(n)
    log(f"importing {n:,} facilities through import_dataset (search index and vocabulary included) ...")
    started = time.perf_counter()
    rb.manage("import_dataset", str(path), "--spec", str(spec), "--commit", "--quiet")
    import_s = round(time.perf_counter() - started, 1)
    log(f"  {import_s} s")
    log(f"storing {complaints:,} complaints ...")
    started = time.perf_counter()
    store_complaints(complaints)
    with rb.pg_connect() as conn, conn.cursor() as cur:
        cur.execute("VACUUM ANALYZE")
    return {"import_s": import_s, "complaints_s": round(time.perf_counter() - started, 1)}


def hotspots(rng):
    x, y = rb.points_in_city(HOTSPOTS, rng)
    return x, y


def complaint_points(n, rng, spots):
    """Half uniform over the city, half around the hot spots (a normal spread of about 300 m)."""
    import numpy as np

    ux, uy = rb.points_in_city(n - n // 2, rng)
    k = rng.integers(0, HOTSPOTS, n // 2)
    hx = spots[0][k] + rng.normal(0, 300 / 63_000, n // 2)
    hy = spots[1][k] + rng.normal(0, 300 / 111_000, n // 2)
    return np.concatenate([ux, hx]), np.concatenate([uy, hy])


def store_complaints(n):
    """n complaints by COPY (a quarter open, the rest resolved, duplicate or hidden), one shared routing decision;
    the map's count triggers off while loading (the bench database's own), their cells rebuilt after."""
    import io
    import uuid

    import numpy as np
    import pandas as pd
    from django.db import connection
    from django.utils import timezone

    from complaints.models import Complaint, State
    from facilities.models import Department
    from routing.models import Category, RoutingDecision

    rng = np.random.default_rng(SEED + 1)
    spots = hotspots(rng)
    x, y = complaint_points(n, rng, spots)
    department = Department.objects.filter(is_triage=True).first() or Department.objects.first()
    decision = RoutingDecision.objects.create(department=department, authority=department.authority,
                                              rule=RoutingDecision.Rule.TRIAGE, engine_version="bench",
                                              explanation_ru="bench", explanation_en="bench")
    categories = list(Category.objects.filter(active=True).values_list("id", flat=True))
    states = rng.choice([State.NEW, State.ASSIGNED, State.IN_PROGRESS, State.ANSWERED, State.REOPENED,
                         State.RESOLVED, State.DUPLICATE, State.HIDDEN], size=n,
                        p=[0.03, 0.12, 0.05, 0.04, 0.01, 0.65, 0.05, 0.05])
    now = timezone.now().isoformat()
    frame = pd.DataFrame({
        "tracking_code": [f"B{i:015d}" for i in range(n)], "token": [str(uuid.UUID(int=i)) for i in range(n)],
        "category_id": rng.choice(categories, n), "location": [f"SRID=4326;POINT({a:.6f} {b:.6f})" for a, b in
                                                              zip(x, y)],
        "description": [DESCRIPTIONS[i % len(DESCRIPTIONS)] + f" ({i})" for i in rng.integers(0, 10**6, n)],
        "state": states.astype(str), "decision_id": decision.pk, "department_id": department.pk,
        "submitted_at": now, "updated_at": now, "deadline": now})
    blank = ["address_string", "media_url", "email", "phone", "first_name", "last_name", "device_id", "account_id",
             "source"]
    for name in blank:
        frame[name] = ""
    frame["language"] = "ru"
    frame["attributes"] = "{}"
    frame["reopen_count"] = 0
    columns = list(frame.columns)
    with connection.cursor() as cur:
        cur.execute("ALTER TABLE complaints_complaint DISABLE TRIGGER USER")
        for start in range(0, n, 200_000):
            buf = io.StringIO()
            frame.iloc[start:start + 200_000].to_csv(buf, index=False, header=False)
            buf.seek(0)
            cur.cursor.copy_expert(f"COPY complaints_complaint ({', '.join(columns)}) FROM STDIN "
                                   "WITH (FORMAT csv, NULL '\\N')", buf)
        cur.execute("ALTER TABLE complaints_complaint ENABLE TRIGGER USER")
    assert Complaint.objects.count() >= n


# ------------------------------------------------------------------------------------------------------------
# measurements

FLOOR_NEARBY_SQL = """
    SELECT c.id, c.d FROM (
        SELECT c.id, c.category_id, ST_Distance(c.location::geography, p.g::geography) AS d
        FROM complaints_complaint c, (SELECT ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326) AS g) p
        WHERE c.state <> ALL(%(closed)s)
          AND ST_DWithin(c.location::geography, p.g::geography, 250)
          AND c.location && ST_Expand(p.g, 0.0045)
        OFFSET 0) c  -- the window's few rows from the GiST index alone, as complaints.selectors does
    JOIN routing_category k ON k.id = c.category_id
    WHERE k.group_i18n = %(group)s::jsonb
    ORDER BY c.d LIMIT 5"""
# FixMyStreet's shape (perllib/FixMyStreet/DB/ResultSet/Nearby.pm over its problem_find_nearby SQL function): every
# complaint in a latitude/longitude box, a distance on a sphere for each, the states filtered, ordered by distance.
FMS_NEARBY_SQL = """
    SELECT c.id, d FROM (
        SELECT c.id, c.category_id, c.state, ST_DistanceSphere(c.location, p.g) AS d
        FROM complaints_complaint c, (SELECT ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326) AS g) p
        WHERE ST_Y(c.location) BETWEEN %(lat)s - 0.0023 AND %(lat)s + 0.0023
          AND ST_X(c.location) BETWEEN %(lon)s - 0.0041 AND %(lon)s + 0.0041
          AND c.location && ST_MakeEnvelope(%(lon)s - 0.0041, %(lat)s - 0.0023, %(lon)s + 0.0041, %(lat)s + 0.0023,
                                            4326)) c
    JOIN routing_category k ON k.id = c.category_id
    WHERE d <= 250 AND c.state IN ('new', 'assigned', 'in_progress', 'answered', 'reopened', 'transferred')
      AND k.group_i18n = %(group)s::jsonb
    ORDER BY d LIMIT 5"""


def nearby_cases(count):
    import numpy as np

    from routing.models import Category

    rng = np.random.default_rng(SEED + 2)
    spots = hotspots(np.random.default_rng(SEED + 1))  # the same hot spots as the complaints'
    x, y = complaint_points(count, rng, spots)
    categories = list(Category.objects.filter(active=True))
    return [(float(a), float(b), categories[i % len(categories)], DESCRIPTIONS[i % len(DESCRIPTIONS)])
            for i, (a, b) in enumerate(zip(x, y))]


def timed(cases, run, warm=100):
    for case in cases[:warm]:
        run(case)
    samples, found = [], 0
    for case in cases:
        started = time.perf_counter()
        found += run(case)
        samples.append(time.perf_counter() - started)
    return {**rb.percentiles(samples), "found_per_query": round(found / len(cases), 2)}


def measure_nearby(cases, rounds, max_wait):
    from django.db import connection
    from django.test import Client

    from complaints.models import CLOSED_STATES
    from complaints.selectors import complaints_nearby

    closed = [str(s) for s in CLOSED_STATES]
    out = {}
    out["selector"] = rb.best_of(rounds, lambda: timed(cases, lambda c: len(complaints_nearby(
        (c[0], c[1]), category=c[2], description=c[3]))), max_wait)
    client = Client()

    def api(c):
        response = client.get("/api/v1/nearby", {"lat": c[1], "long": c[0], "service_code": c[2].code,
                                                 "description": c[3]}, REMOTE_ADDR="10.0.0.1")
        assert response.status_code == 200, response.content
        return len(response.json())

    out["api"] = rb.best_of(rounds, lambda: timed(cases, api), max_wait)
    with connection.cursor() as cur:
        raw = cur.cursor

        def sql(statement):
            def run(c):
                raw.execute(statement, {"lon": c[0], "lat": c[1], "group": json.dumps(c[2].group_i18n), "closed": closed})
                return len(raw.fetchall())
            return run

        out["floor_sql"] = rb.best_of(rounds, lambda: timed(cases, sql(FLOOR_NEARBY_SQL)), max_wait)
        out["fixmystreet_shape"] = rb.best_of(rounds, lambda: timed(cases, sql(FMS_NEARBY_SQL)), max_wait)
    return out


def typo(word, rng):
    """One letter of a word replaced by a neighbour's (a typo a resident makes)."""
    if len(word) < 5:
        return word
    i = int(rng.integers(1, len(word) - 1))
    return word[:i] + "аоеиу"[int(rng.integers(0, 5))] + word[i + 1:]


def search_cases(count, n):
    """(kind of query, text) over the generated addresses and the demo city's names."""
    import numpy as np
    import pandas as pd

    from facilities.models import AdminArea

    rng = np.random.default_rng(SEED + 3)
    path = CACHE / f"facilities-{n}-{SEED}-v2.csv"
    sample = pd.read_csv(path, nrows=min(n, 200_000)).sample(count, random_state=SEED)
    districts = list(AdminArea.objects.active().values_list("name", flat=True))
    register = [label for label in pd.read_csv(ADDRESSES_FILE[0], nrows=100_000)["label"].sample(
        count, random_state=SEED, replace=True)] if ADDRESSES_FILE else []
    cases = []
    for i, row in enumerate(sample.itertuples()):
        address = row.address.replace("город Москва, ", "")
        street, house = address.split(", дом ")[0], address.split(", дом ")[1].split(",")[0]
        words = [w for w in street.split() if w not in KINDS]
        kinds = ["address", "street_house", "word_form", "typo", "prefix", "facility", "district"]
        kind = (kinds + ["register"] if register else kinds)[i % (len(kinds) + bool(register))]
        text = {"address": address,
                "street_house": f"{' '.join(words)} {house}",
                "word_form": f"на {' '.join(words[:-1] + [words[-1][:-2] + 'ой' if words[-1].endswith('ая') else words[-1]])}"
                             f" {house}",
                "typo": f"{' '.join(words[:-1] + [typo(words[-1], rng)])} {house}",
                "prefix": words[-1][:5],
                "facility": row.name,
                "district": districts[i % len(districts)],
                "register": register[i] if register else ""}[kind]
        cases.append((kind, text))
    return cases


def measure_search(cases, rounds, max_wait):
    from django.db import connection

    from facilities.search import FACILITY_KEY, places_search

    out = {"places_search": rb.best_of(rounds, lambda: timed(cases, lambda c: len(places_search(c[1]))),
                                       max_wait)}
    by_kind = {}
    for kind in sorted({k for k, _t in cases}):
        mine = [c for c in cases if c[0] == kind]
        by_kind[kind] = timed(mine, lambda c: len(places_search(c[1])), warm=5)
    out["by_kind"] = by_kind
    with connection.cursor() as cur:
        raw = cur.cursor

        def floor(c):
            raw.execute(f"""SELECT f.id, f.name, f.address FROM facilities_facility f
                            WHERE f.valid_to IS NULL AND {FACILITY_KEY} @@ plainto_tsquery(%s::regconfig, %s)
                            LIMIT 8""", [settings_config(), c[1]])
            return len(raw.fetchall())

        out["floor_sql"] = rb.best_of(rounds, lambda: timed(cases, floor), max_wait)
        log("building the pg_trgm peer's trigram index on the facilities' labels ...")
        started = time.perf_counter()
        raw.execute("CREATE INDEX IF NOT EXISTS bench_facility_trgm ON facilities_facility "
                    "USING gist ((lower(name || ' ' || address)) gist_trgm_ops)")
        out["trgm_index_s"] = round(time.perf_counter() - started, 1)

        def trgm(c):
            raw.execute("""SELECT f.id FROM facilities_facility f
                           ORDER BY lower(f.name || ' ' || f.address) <-> lower(%s) LIMIT 8""", [c[1]])
            return len(raw.fetchall())

        few = cases[:TRGM_QUERIES[0]]  # the slow peer: fewer queries, one round
        out["trgm_only"] = rb.best_of(1, lambda: timed(few, trgm, warm=10), max_wait)
        raw.execute("DROP INDEX bench_facility_trgm")
    return out


# ------------------------------------------------------------------------------------------------------------
# over HTTP: the real stack (gunicorn, middleware, rate limit in Redis, view, serializers) beside a floor in the
# same server


HTTP_DIR = ROOT / "bench" / "nearby_search_http"


def start_server(db_name, workers):
    """gunicorn with the project's settings plus the two floor URLs, on a free port; (process, port)."""
    import socket
    import subprocess
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "nearby_search_bench_settings", "OURCITY_DB_NAME": db_name,
           "PYTHONPATH": os.pathsep.join([str(HTTP_DIR), str(ROOT)]),
           # the bench's one client asks thousands of times a minute: the limits are not what is measured
           "OURCITY_LIMIT_API_NEARBY": "100000000/m", "OURCITY_LIMIT_API_PLACES": "100000000/m"}
    server = subprocess.Popen([str(ROOT / ".venv" / "bin" / "gunicorn"), "geo_ourcity.wsgi:application",
                               "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--worker-class", "sync",
                               "--log-level", "warning"], cwd=ROOT, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/bench/places-floor?q=x", timeout=10).read()
            return server, port
        except OSError:
            if server.poll() is not None:
                raise SystemExit("gunicorn exited") from None
            time.sleep(0.5)
    server.terminate()
    raise SystemExit("gunicorn did not answer within 120 s")


def http_pairs(port, pairs, warm=50):
    """Each case asks both endpoints of its pair one after the other (which goes first alternates), so that the
    machine's load at that moment hits both; one connection per request (gunicorn's sync workers close it).
    Answers {name: percentiles} with p95 too."""
    import http.client

    import numpy as np

    def get(url):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        started = time.perf_counter()
        conn.request("GET", url)
        response = conn.getresponse()
        body = response.read()
        took = time.perf_counter() - started
        conn.close()
        if response.status != 200:
            raise SystemExit(f"GET {url}: {response.status} {body[:300]!r}")
        return took, len(json.loads(body))

    names = list(pairs[0])
    samples, found = {name: [] for name in names}, {name: 0 for name in names}
    for i, pair in enumerate(pairs):
        order = names if i % 2 == 0 else names[::-1]
        for name in order:
            took, count = get(pair[name])
            if i >= warm:
                samples[name].append(took)
                found[name] += count
    out = {}
    for name in names:
        ms = np.array(samples[name]) * 1000
        out[name] = {**rb.percentiles(samples[name]), "p95_ms": round(float(np.percentile(ms, 95)), 3),
                     "found_per_query": round(found[name] / max(1, len(samples[name])), 2)}
    return out


def measure_http(db_name, nearby, search, workers=2, warm=50):
    from urllib.parse import urlencode

    server, port = start_server(db_name, workers)
    try:
        near_pairs = [{"api": "/api/v1/nearby?" + urlencode({"lat": c[1], "long": c[0], "service_code": c[2].code,
                                                            "description": c[3]}),
                       "floor": "/bench/nearby-floor?" + urlencode({"lat": c[1], "long": c[0],
                                                                   "service_code": c[2].code})}
                      for c in nearby[-warm:] + nearby]
        search_pairs = [{"api": "/api/v1/places?" + urlencode({"q": t}),
                         "floor": "/bench/places-floor?" + urlencode({"q": t})} for _k, t in search[-warm:] + search]
        return {"nearby": http_pairs(port, near_pairs, warm), "search": http_pairs(port, search_pairs, warm),
                "gunicorn_workers": workers}
    finally:
        server.terminate()
        server.wait(30)


def settings_config():
    from django.conf import settings

    return settings.SEARCH_TEXT_CONFIG


# ------------------------------------------------------------------------------------------------------------
# report


def http_table(result):
    ok = {True: "met", False: "NOT met"}
    rows = ["| over HTTP (gunicorn, the whole stack), one client | p50 ms | p95 ms | p99 ms | found per query |"
            " p99 / floor's p99 | target |",
            "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for i, run in enumerate(result["http"], 1):
        for what, label, target in [("nearby", "`GET /api/v1/nearby`", TARGET_NEARBY_P99_MS),
                                    ("search", "`GET /api/v1/places`", TARGET_SEARCH_P99_MS)]:
            api, floor = run[what]["api"], run[what]["floor"]
            rows.append(f"| run {i}: {label} | {api['p50_ms']:.2f} | {api['p95_ms']:.2f} | {api['p99_ms']:.2f} | "
                        f"{api['found_per_query']} | {api['p99_ms'] / floor['p99_ms']:.2f}x | <= {target:g} ms: "
                        f"{ok[api['p99_ms'] <= target]} |")
            rows.append(f"| run {i}: ... its floor (one raw statement in the same server) | {floor['p50_ms']:.2f} | "
                        f"{floor['p95_ms']:.2f} | {floor['p99_ms']:.2f} | {floor['found_per_query']} | 1x | |")
    return "\n".join(rows)


def table(result):
    ok = {True: "met", False: "NOT met"}
    n, s = result["nearby"], result["search"]
    rows = [http_table(result), "", "| nearby: open complaints of a group within 250 m, five nearest | p50 ms | p99 ms | found per query |",
            "| --- | ---: | ---: | ---: |"]
    for label, key in [("`complaints_nearby()` (the selector: one statement)", "selector"),
                       ("`GET /api/v1/nearby` (view, serializers, rate limit in Redis; no HTTP)", "api"),
                       ("floor: one raw SQL statement (psycopg2, no Django)", "floor_sql"),
                       ("peer: FixMyStreet's nearby shape (lat/long box, sphere distance for all, ordered)",
                        "fixmystreet_shape")]:
        m = n[key]
        rows.append(f"| {label} | {m['p50_ms']:.2f} | {m['p99_ms']:.2f} | {m['found_per_query']} |")
    rows.append(f"| target for the API | | <= {TARGET_NEARBY_P99_MS:g} ({ok[n['api']['p99_ms'] <= TARGET_NEARBY_P99_MS]};"
                f" {n['api']['p99_ms'] / n['floor_sql']['p99_ms']:.1f}x the floor's p99) | |")
    rows += ["", "| place search: typed queries | p50 ms | p99 ms | found per query |", "| --- | ---: | ---: | ---: |"]
    m = s["places_search"]
    rows.append(f"| `places_search()`: all kinds of query | {m['p50_ms']:.2f} | {m['p99_ms']:.2f} | "
                f"{m['found_per_query']} |")
    for kind, m in s["by_kind"].items():
        rows.append(f"| ... {kind.replace('_', ' ')} | {m['p50_ms']:.2f} | {m['p99_ms']:.2f} | {m['found_per_query']} |")
    for label, key in [("floor: the candidate statement alone, exact stems (psycopg2)", "floor_sql"),
                       (f"peer: pg_trgm alone, `<->` over a trigram GiST index (built in {s['trgm_index_s']} s; "
                        f"{s['trgm_only']['n']} queries, one round)",
                        "trgm_only")]:
        m = s[key]
        rows.append(f"| {label} | {m['p50_ms']:.2f} | {m['p99_ms']:.2f} | {m['found_per_query']} |")
    rows.append(f"| target | | <= {TARGET_SEARCH_P99_MS:g} ({ok[m_ok(s)]}; "
                f"{s['places_search']['p99_ms'] / s['trgm_only']['p99_ms']:.2f}x pg_trgm alone) | |")
    return "\n".join(rows)


def m_ok(s):
    return s["places_search"]["p99_ms"] <= TARGET_SEARCH_P99_MS


def previous_line(previous):
    """One paragraph with the previous run's HTTP figures (the bench is run at least twice; both are shown)."""
    if not previous or "http" not in previous:
        return []
    parts = []
    for i, run in enumerate(previous["http"], 1):
        for what, label in [("nearby", "nearby"), ("search", "search")]:
            api, floor = run[what]["api"], run[what]["floor"]
            parts.append(f"{label} p50/p95/p99 {api['p50_ms']:.1f}/{api['p95_ms']:.1f}/{api['p99_ms']:.1f} ms "
                         f"(floor {floor['p50_ms']:.1f}/{floor['p95_ms']:.1f}/{floor['p99_ms']:.1f} ms, "
                         f"{api['p99_ms'] / floor['p99_ms']:.2f}x)")
    load = ", ".join(f"{v:.1f}" for v in previous.get("loadavg_at_start", []))
    return ["", f"The previous run ({previous['machine']['date']}, load average {load} at its start), over HTTP: "
            + "; ".join(parts) + "."]


def machine_state(loadavg):
    """How loaded the machine was when the run began: its own server and client load it during the run."""
    if loadavg and loadavg[0] < 0.5:
        return "on an idle machine"
    return "**on a loaded machine**, other work beside it"


def write_readme(result, previous=None):
    m = result["machine"]
    section = "\n".join([
        "<!-- nearby_search:start -->",
        "## Nearby and place search",
        "",
        f"`bench/nearby_search_bench.py`, {m['date']}, {machine_state(result['loadavg_at_start'])} (load average {', '.join(f'{v:.1f}' for v in result['loadavg_at_start'])} at the start, "
        f"{', '.join(f'{v:.1f}' for v in result['loadavg_at_end'])} at the end): the demo city plus "
        f"{result['facilities']:,} synthetic facilities with Russian names and addresses (about 3,500 streets; "
        f"`import_dataset` with the search index and vocabulary: {result['build'].get('import_s')} s), "
        f"{result['addresses']:,} address register points (the `addresses` target, the same streets) and "
        f"{result['complaints']:,} complaints (a quarter open; half around {HOTSPOTS:,} hot spots), in a database "
        f"of its own; {m['nproc']} cores ({m['cpu']}, {m['ram_gb']} GB), PostgreSQL {m['postgresql']}, PostGIS "
        f"{m['postgis']}. {result['nearby_queries']:,} nearby queries (random points, half at hot spots, each "
        f"category in turn, with a description) and {result['search_queries']:,} searches (full addresses, street "
        "and house, another word form, a typo, the first five letters, a facility's name, a district: one "
        "seventh each, or an eighth each with the address register's labels); in-process rows: the best of "
        f"{result['rounds']} rounds (lowest p99). Over HTTP: gunicorn with {result['http'][0]['gunicorn_workers']} "
        "sync workers, one client asking each query of the endpoint and of its floor in turn (a fresh connection "
        f"each), {len(result['http'])} runs; the first 50 requests of each run are not counted.",
        "",
        table(result),
        *previous_line(previous),
        "<!-- nearby_search:end -->",
    ])
    text = README.read_text(encoding="utf-8") if README.exists() else "# Benchmarks\n"
    start, end = text.find("<!-- nearby_search:start -->"), text.find("<!-- nearby_search:end -->")
    if start >= 0 and end > start:
        text = text[:start] + section + text[end + len("<!-- nearby_search:end -->"):]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    README.write_text(text, encoding="utf-8")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="synthetic facilities (default 1,000,000)")
    parser.add_argument("--complaints", type=int, default=1_000_000, help="complaints (default 1,000,000)")
    parser.add_argument("--queries", type=int, default=2_000, help="nearby queries and searches, each")
    parser.add_argument("--addresses", type=int, default=400_000,
                        help="address register points (default 400,000: about Moscow's register)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers of the HTTP server")
    parser.add_argument("--trgm-queries", type=int, default=300, help="queries of the slow pg_trgm-alone peer")
    parser.add_argument("--http-runs", type=int, default=2, help="HTTP runs (each: every query, both endpoints)")
    parser.add_argument("--db", default="geo_ourcity_find_bench", help="the bench database (dropped, created)")
    parser.add_argument("--reuse", action="store_true", help="keep the bench database if it is there")
    parser.add_argument("--keep", action="store_true", help="do not drop the bench database at the end")
    parser.add_argument("--rounds", type=int, default=3, help="latency rounds; the one with the lowest p99 is kept")
    parser.add_argument("--max-wait", type=float, default=30, help="seconds to wait for a quiet machine per round")
    parser.add_argument("--check", action="store_true", help="print the table; write neither results nor README")
    args, _unknown = parser.parse_known_args(argv)

    TRGM_QUERIES[0] = args.trgm_queries
    rb.setup_env(args.db)
    import django

    django.setup()
    from django.conf import settings

    settings.LIMIT_API_NEARBY = "100000000/m"  # the bench's one client asks thousands of times a minute
    loadavg_at_start = list(os.getloadavg())
    built = None
    built_file = CACHE / f"built-{args.db}.json"
    if not args.reuse or not database_ready():
        built = build(args.db, args.n, args.complaints)
        built_file.write_text(json.dumps(built), encoding="utf-8")
    else:
        generate(args.n)
        built = json.loads(built_file.read_text(encoding="utf-8")) if built_file.exists() else None
        from complaints.models import Complaint

        if Complaint.objects.count() < args.complaints:  # a build stopped before its complaints were stored
            started = time.perf_counter()
            store_complaints(args.complaints)
            with rb.pg_connect() as conn, conn.cursor() as cur:
                cur.execute("VACUUM ANALYZE")
            built = {**(built or {}), "complaints_s": round(time.perf_counter() - started, 1)}
            built_file.write_text(json.dumps(built), encoding="utf-8")
    from complaints.models import Complaint
    from facilities.models import Address, Facility

    if args.addresses and not Address.objects.filter(dataset__code="bench-find-addresses").exists():
        built = {**(built or {}), "addresses_s": build_addresses(args.addresses)}
        built_file.write_text(json.dumps(built), encoding="utf-8")
    if args.addresses:
        ADDRESSES_FILE.append(generate_addresses(args.addresses)[0])

    result = {"facilities": Facility.objects.filter(dataset__code="bench-find-facilities").count(),
              "complaints": Complaint.objects.count(), "build": built or {"import_s": None, "complaints_s": None},
              "rounds": args.rounds, "nearby_queries": args.queries, "search_queries": args.queries}
    result["addresses"] = Address.objects.filter(dataset__code="bench-find-addresses").count()
    result["machine"] = rb.machine()
    nearby, search = nearby_cases(args.queries), search_cases(args.queries, args.n)
    log("measuring over HTTP ...")
    result["http"] = [measure_http(args.db, nearby, search, workers=args.workers) for _ in range(args.http_runs)]
    log("measuring nearby ...")
    result["nearby"] = measure_nearby(nearby, args.rounds, args.max_wait)
    log("measuring the place search ...")
    result["search"] = measure_search(search, args.rounds, args.max_wait)
    result["loadavg_at_start"], result["loadavg_at_end"] = loadavg_at_start, list(os.getloadavg())
    result["targets"] = {"nearby_p99_http": [r["nearby"]["api"]["p99_ms"] <= TARGET_NEARBY_P99_MS
                                             for r in result["http"]],
                         "search_p99_http": [r["search"]["api"]["p99_ms"] <= TARGET_SEARCH_P99_MS
                                             for r in result["http"]]}
    print(table(result))
    if not args.check:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        previous = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else None
        RESULTS.write_text(json.dumps(result, ensure_ascii=False, indent=2, default=str) + "\n", encoding="utf-8")
        write_readme(result, previous)
    if not args.keep:
        from django.db import connections

        connections.close_all()
        with rb.pg_connect("postgres") as conn, conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{args.db}" WITH (FORCE)')
    return 0


def database_ready():
    try:
        from facilities.models import Dataset

        return Dataset.objects.filter(code="bench-find-facilities").exists()
    except Exception:  # no database yet
        return False


if __name__ == "__main__":
    sys.exit(main())
