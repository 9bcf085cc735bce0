#!/usr/bin/env python
"""Map benchmark: the residents' map with 1,000,000 complaints.

  (a) the map's data endpoint, /tiles/complaints/{z}/{x}/{y}.mvt, over HTTP (gunicorn, as `make demo` runs it):
      every tile of a 1280 x 800 view of the whole city (zoom 10) and of a street (zoom 16), several rounds,
      p50 / p95 / max; zoom 10 also with a filter;
  (b) beside it, the PostGIS query behind each tile alone (web.tiles.complaints_tile in this process), and the
      naive query the aggregates replace (grid-aggregated ST_AsMVT over the complaints table itself);
  (c) freshness: a complaint filed through complaints.services and a state change, read back through HTTP at
      once (the triggers keep the per-cell counts exact; tiles carry Cache-Control max-age=30);
  (d) what the triggers cost writers: complaint_create on the 1M table, and a 100,000-row UPDATE that touches
      no mapped column (a re-route) with the triggers on and off;
  (e) the weight of the map page: / loaded in Chromium (base-map tiles blocked), every response counted.

Everything runs in a database of its own (default geo_ourcity_map_bench), dropped and created again, migrated,
loaded with the demo city; the complaints are generated with numpy (uniform over the city, a fixed seed) and
COPYed in. `--keep-db` reuses a database that already holds the same number of them.

    .venv/bin/python bench/map_bench.py                 # the full 1M run (a few minutes)
    .venv/bin/python bench/map_bench.py --n 100000      # a quick check

Results: a table on stdout, bench/results/map.json, and the "Map" section of bench/README.md.
"""
import argparse
import contextlib
import io
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

# A benchmark measures speed, not the abuse limits (issue 8): the servers it starts inherit limits it can not
# reach. Each limit can still be set from the environment.
for _limit in ("OURCITY_LIMIT_OPEN311_POSTS", "OURCITY_LIMIT_OPEN311_BAD_KEYS", "OURCITY_LIMIT_OPEN311_TOKEN_LOOKUPS",
               "OURCITY_LIMIT_WEB_REPORTS", "OURCITY_LIMIT_CODE_LOOKUPS"):
    os.environ.setdefault(_limit, "100000000/m")

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "map.json"
README = ROOT / "bench" / "README.md"
PY = sys.executable
SEED = 20261123
VIEW = (1280, 800)  # the browser window the views are measured for, in pixels
CITY_VIEW = (10, 55.7558, 37.6173)  # zoom, lat, lon: the whole city
STREET_VIEW = (16, 55.7655, 37.6056)  # Tverskaya street by Pushkinskaya square
TARGETS_MS = {10: 100, 16: 30}  # p95 over HTTP, from the issue
TARGET_PAGE_BYTES = 1_500_000
# Complaint states of a city that has run for a year (hidden ones are in the table but never drawn).
STATES = {"assigned": 0.20, "in_progress": 0.15, "answered": 0.10, "resolved": 0.44, "reopened": 0.03,
          "transferred": 0.02, "duplicate": 0.03, "new": 0.01, "hidden": 0.02}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="complaints to generate")
    parser.add_argument("--db", default="geo_ourcity_map_bench", help="the benchmark database (dropped!)")
    parser.add_argument("--rounds", type=int, default=10, help="rounds over each view's tiles")
    parser.add_argument("--keep-db", action="store_true", help="reuse the database if it holds n complaints")
    args, _unknown = parser.parse_known_args(argv)  # make bench passes the other benchmarks' options too
    return args


# ------------------------------------------------------------------------------------------------------------
# the database

def django_env(db_name):
    os.environ["OURCITY_DB_NAME"] = db_name
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "geo_ourcity.settings")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API shares this thread; no async code here
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def admin_connection():
    import psycopg2
    from django.conf import settings

    db = settings.DATABASES["default"]
    conn = psycopg2.connect(dbname="postgres", user=db.get("USER") or None, password=db.get("PASSWORD") or None,
                            host=db.get("HOST") or None, port=db.get("PORT") or None)
    conn.autocommit = True
    return contextlib.closing(conn)


def complaint_count():
    from django.db import connection

    try:
        with connection.cursor() as cur:
            cur.execute("SELECT count(*) FROM complaints_complaint")
            return cur.fetchone()[0]
    except Exception:
        return None


def recreate_database(name):
    from django.db import connections

    connections.close_all()
    with admin_connection() as conn, conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cur.execute(f'CREATE DATABASE "{name}"')
    env = dict(os.environ, OURCITY_DB_NAME=name)
    for command in (["migrate", "--noinput", "-v", "0"], ["load_demo"]):
        subprocess.run([PY, "manage.py", *command], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)


def generate_complaints(n):
    """n complaints as a COPY text stream: uniform over the city's districts, a year of history."""
    import numpy as np
    import shapely

    from facilities.models import AdminArea, Department
    from routing.models import Category, RoutingDecision

    rng = np.random.default_rng(SEED)
    districts = list(AdminArea.objects.active().filter(level="district").select_related("authority"))
    shapes = shapely.from_wkb([bytes(d.geom.wkb) for d in districts])
    tree = shapely.STRtree(shapes)
    minx, miny, maxx, maxy = shapely.total_bounds(shapes)
    xs, ys, area_idx = [], [], []
    have = 0
    while have < n:
        m = int((n - have) / 0.3) + 1000
        x, y = rng.uniform(minx, maxx, m).round(6), rng.uniform(miny, maxy, m).round(6)
        point_idx, district_idx = tree.query(shapely.points(x, y), predicate="within")
        point_idx, first = np.unique(point_idx, return_index=True)  # a point on a shared edge: one district
        xs.append(x[point_idx]), ys.append(y[point_idx]), area_idx.append(district_idx[first])
        have += len(point_idx)
    x, y, area_idx = (np.concatenate(a)[:n] for a in (xs, ys, area_idx))

    # The district council's main department answers, by one routing decision per district.
    decision_of, department_of = [], []
    for d in districts:
        department = Department.objects.filter(authority=d.authority).order_by("id").first() \
            or Department.objects.filter(is_triage=True).first()
        decision = RoutingDecision.objects.create(
            department=department, authority=department.authority, area=d, rule=RoutingDecision.Rule.AREA,
            engine_version="bench", explanation_ru=f"Район {d.name}", explanation_en=f"District {d.name}")
        decision_of.append(decision.id)
        department_of.append(department.id)
    decision_of, department_of = np.array(decision_of), np.array(department_of)
    area_ids = np.array([d.id for d in districts])
    categories = np.array(list(Category.objects.filter(active=True).values_list("id", flat=True)))

    names = list(STATES)
    state = np.array(names)[rng.choice(len(names), size=n, p=list(STATES.values()))]
    now = time.time()
    submitted = now - rng.uniform(0, 365 * 86400, n)
    deadline = submitted + 8 * 86400
    answer_after = rng.uniform(0.1, 15, n) * 86400
    answered = np.isin(state, ["answered", "resolved", "reopened"])
    answered_at = np.where(answered, np.minimum(submitted + answer_after, now), np.nan)
    resolved_at = np.where(state == "resolved", np.minimum(answered_at + 86400, now), np.nan)
    category = categories[rng.integers(0, len(categories), n)]

    def ts(values):  # epoch seconds -> ISO 8601 UTC text, NaN -> NULL
        text = np.datetime_as_string(np.nan_to_num(values).astype("datetime64[s]"), timezone="UTC")
        return np.where(np.isnan(values), "\\N", text)

    columns = {
        "tracking_code": [f"BENCH{i:011d}" for i in range(n)],
        "token": [f"bench-{i}" for i in range(n)],
        "category_id": category,
        "location": [f"SRID=4326;POINT({a} {b})" for a, b in zip(x, y)],
        "address_string": [""] * n, "description": ["Тестовое обращение"] * n, "attributes": ["{}"] * n,
        "email": [""] * n, "phone": [""] * n, "first_name": [""] * n, "last_name": [""] * n,
        "device_id": [""] * n, "account_id": [""] * n, "media_url": [""] * n,
        "state": state,
        "submitted_at": ts(submitted), "updated_at": ts(submitted), "deadline": ts(deadline),
        "answered_at": ts(answered_at), "resolved_at": ts(resolved_at),
        "reopen_count": (state == "reopened").astype(int), "source": ["bench"] * n,
        "area_id": area_ids[area_idx], "decision_id": decision_of[area_idx], "department_id": department_of[area_idx],
    }
    return columns


def copy_chunks(columns, chunk=1_000_000):
    """The columns as COPY text streams of up to `chunk` rows each (a stream at a time: bounded memory)."""
    n = len(columns["token"])
    for start in range(0, n, chunk):
        buffer = io.StringIO()
        for row in zip(*(values[start:start + chunk] for values in columns.values())):
            buffer.write("\t".join(map(str, row)) + "\n")
        buffer.seek(0)
        yield buffer


def load_complaints(n):
    """COPY n complaints in (a million rows to a statement; the map's counting trigger runs on each): plain indexes
    dropped first and built after (the fast way to load a table)."""
    from django.db import connection

    timings = {}
    started = time.perf_counter()
    columns = generate_complaints(n)
    timings["generate_s"] = time.perf_counter() - started
    with connection.cursor() as cur:
        cur.execute("""SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'complaints_complaint'
                       AND indexname NOT IN (SELECT conname FROM pg_constraint)""")
        indexes = cur.fetchall()
        for name, _definition in indexes:
            cur.execute(f'DROP INDEX "{name}"')
        copying = 0.0
        for data in copy_chunks(columns):
            started = time.perf_counter()
            cur.cursor.copy_expert(f"COPY complaints_complaint ({', '.join(columns)}) FROM STDIN", data)
            copying += time.perf_counter() - started
        timings["copy_with_cell_trigger_s"] = copying
        started = time.perf_counter()
        for _name, definition in indexes:
            cur.execute(definition)
        timings["indexes_s"] = time.perf_counter() - started
        cur.execute("ANALYZE complaints_complaint")
        cur.execute("ANALYZE web_complaintcell")
    return timings


def table_sizes():
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT count(*), pg_total_relation_size('web_complaintcell'),"
                    " pg_total_relation_size('complaints_complaint') FROM web_complaintcell")
        return dict(zip(("cell_rows", "cells_bytes", "complaints_bytes"), cur.fetchone()))


# ------------------------------------------------------------------------------------------------------------
# views and measurements

def view_tiles(zoom, lat, lon, size=VIEW):
    """The tiles (z, x, y) a window of `size` pixels centred on (lat, lon) shows at `zoom`."""
    import math

    n = 1 << zoom
    cx = (lon + 180) / 360 * n * 256
    cy = (1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n * 256
    x0, x1 = int((cx - size[0] / 2) // 256), int((cx + size[0] / 2) // 256)
    y0, y1 = int((cy - size[1] / 2) // 256), int((cy + size[1] / 2) // 256)
    return [(zoom, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]


def summary(samples_ms):
    ordered = sorted(samples_ms)

    def pct(p):
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]

    return {"n": len(ordered), "p50_ms": round(statistics.median(ordered), 2), "p95_ms": round(pct(95), 2),
            "max_ms": round(ordered[-1], 2)}


def time_calls(fn, items, rounds):
    samples = []
    for _ in range(rounds):
        for item in items:
            started = time.perf_counter()
            fn(item)
            samples.append((time.perf_counter() - started) * 1000)
    return samples


NAIVE_SQL = """
    SELECT ST_AsMVT(t, 'complaints', 4096, 'geom') FROM (
        SELECT ST_AsMVTGeom(ST_Centroid(ST_Collect(g)), ST_TileEnvelope(%(z)s, %(x)s, %(y)s)) AS geom,
               count(*)::integer AS n
        FROM (SELECT ST_Transform(location, 3857) AS g FROM complaints_complaint
              WHERE location && ST_Transform(ST_TileEnvelope(%(z)s, %(x)s, %(y)s), 4326) AND state <> 'hidden') p
        GROUP BY ST_SnapToGrid(g, %(cell)s)
    ) t
"""


def naive_tile(tile):
    from django.db import connection

    z, x, y = tile
    cell = 2 * 20037508.342789244 / (1 << z) / 8
    with connection.cursor() as cur:
        cur.execute(NAIVE_SQL, {"z": z, "x": x, "y": y, "cell": cell})
        return cur.fetchone()[0]


@contextlib.contextmanager
def gunicorn(db_name, workers=3):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, OURCITY_DB_NAME=db_name, DEBUG="0")
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    subprocess.run([PY, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    process = subprocess.Popen([str(Path(PY).parent / "gunicorn"), "geo_ourcity.wsgi", "--bind", f"127.0.0.1:{port}",
                                "--workers", str(workers), "--log-level", "warning"], cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        import requests

        for _ in range(100):
            try:
                requests.get(base + "/tiles/complaints/0/0/0.mvt", timeout=5)
                break
            except requests.RequestException:
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)


def http_tiles(base, tiles, rounds, params=None):
    import requests

    session = requests.Session()
    sizes = []

    def get(tile):
        response = session.get(base + "/tiles/complaints/%d/%d/%d.mvt" % tile, params=params)
        response.raise_for_status()
        sizes.append(len(response.content))

    samples = time_calls(get, tiles, rounds)
    return {**summary(samples), "tiles": len(tiles), "mean_tile_bytes": int(sum(sizes) / len(sizes))}


def freshness(base):
    """File a complaint and change its state; read the city-wide tile over HTTP after each (no waiting)."""
    import requests
    from django.contrib.gis.geos import Point

    from complaints.models import Complaint, State
    from complaints.services import complaint_create
    from routing.models import Category

    sys.path.insert(0, str(ROOT / "tests" / "web"))
    from mvt import decode  # the tests' small MVT reader

    lon, lat = 37.6056, 55.7655
    z = 10
    tile = next(t for t in view_tiles(z, lat, lon, size=(1, 1)))

    def count(state):
        url = base + "/tiles/complaints/%d/%d/%d.mvt" % tile
        data = requests.get(url, params={"state": state, "v": time.time()}).content  # past any HTTP cache
        return sum(f["properties"]["n"] for f in decode(data)["complaints"]["features"])

    category = Category.objects.get(code="yard-rubbish")

    def create(i):
        return complaint_create(category=category, point=Point(lon + i * 1e-5, lat, srid=4326), description="bench")

    create(0)  # warm (caches, connection)
    before = count("assigned"), count("resolved")
    samples = time_calls(create, range(1, 21), 1)
    after_create = count("assigned"), count("resolved")
    complaint = Complaint.objects.filter(description="bench").latest("id")
    Complaint.objects.filter(pk=complaint.pk).update(state=State.RESOLVED)
    after_update = count("assigned"), count("resolved")
    Complaint.objects.filter(description="bench").delete()  # the table holds n complaints again (--keep-db)
    return {
        "complaint_create_on_1M": summary(samples),
        "assigned_before_create_after_resolve": [before[0], after_create[0], after_update[0]],
        "resolved_before_create_after_resolve": [before[1], after_create[1], after_update[1]],
        "new_complaints_seen_at_once": after_create[0] - before[0] == 20,
        "state_change_seen_at_once": after_update == (after_create[0] - 1, after_create[1] + 1),
        "tile_http_max_age_s": 30,
    }


def rebuild_seconds():
    """The map counts recomputed from scratch (what a bulk load of the whole table costs the triggers)."""
    from django.db import connection

    with connection.cursor() as cur:
        started = time.perf_counter()
        cur.execute("SELECT web_complaintcell_rebuild()")
        return round(time.perf_counter() - started, 1)


TRIGGER_TIME = re.compile(r"Trigger web_complaintcell_\w+: time=([\d.]+)")
EXECUTION_TIME = re.compile(r"Execution Time: ([\d.]+) ms")
ONE_INSERT = """
    INSERT INTO complaints_complaint (tracking_code, token, category_id, location, address_string, description,
        attributes, email, phone, first_name, last_name, device_id, account_id, state, submitted_at, updated_at,
        deadline, reopen_count, source, area_id, decision_id, department_id, media_url)
    SELECT 'BENCH-ONE', 'bench-one', category_id, location, '', '', '{}', '', '', '', '', '', '', 'new', now(),
        now(), deadline, 0, 'bench', area_id, decision_id, department_id, ''
    FROM complaints_complaint WHERE id = (SELECT min(id) FROM complaints_complaint)
"""


def trigger_cost(rows=100_000, repeat=5):
    """What the map triggers add to writes, as PostgreSQL itself accounts it (EXPLAIN ANALYZE reports trigger
    time apart from the statement's), so other load on the machine does not blur it. Each statement is rolled
    back: one new complaint; one state change; an UPDATE of `rows` complaints that moves none of them on the map
    (as a re-route does)."""
    from django.db import connection, transaction

    statements = {
        "insert_one": (ONE_INSERT, []),
        "state_change_one": ("UPDATE complaints_complaint SET state = CASE WHEN state = 'resolved' THEN 'reopened'"
                             " ELSE 'resolved' END WHERE id = (SELECT min(id) FROM complaints_complaint)", []),
        f"update_{rows}_unmapped": ("UPDATE complaints_complaint SET updated_at = updated_at WHERE id <= %s", [rows]),
    }
    out = {}
    for name, (sql, params) in statements.items():
        triggers, totals = [], []
        for _ in range(repeat if name.startswith("update") else repeat * 20):
            with transaction.atomic(), connection.cursor() as cur:
                cur.execute("EXPLAIN (ANALYZE, COSTS OFF) " + sql, params)
                plan = "\n".join(r[0] for r in cur.fetchall())
                transaction.set_rollback(True)
            triggers.append(sum(float(t) for t in TRIGGER_TIME.findall(plan)))
            totals.append(float(EXECUTION_TIME.search(plan).group(1)))
        out[name] = {"trigger_ms_p50": round(statistics.median(triggers), 3),
                     "statement_ms_p50": round(statistics.median(totals), 3)}
    return out


def page_weight(base):
    """Load / in Chromium as a first-time visitor; count every response (base-map tiles blocked)."""
    from playwright.sync_api import sync_playwright

    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync"]
    rows = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=os.environ.get("OURCITY_CHROMIUM", "/usr/bin/chromium"),
                                    args=flags, headless=True)
        page = browser.new_page(viewport={"width": VIEW[0], "height": VIEW[1]}, locale="ru-RU")
        page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(base) else route.abort())

        def finished(request):
            sizes = request.sizes()
            rows.append({"url": request.url[len(base):], "type": request.resource_type,
                         "bytes": sizes["responseBodySize"] + sizes["responseHeadersSize"]})

        page.on("requestfinished", finished)
        started = time.perf_counter()
        page.goto(base + "/", wait_until="networkidle")
        load_s = time.perf_counter() - started
        browser.close()
    by_kind = {}
    for r in rows:
        kind = "complaint tiles" if r["url"].startswith("/tiles/") else \
            "districts" if "districts" in r["url"] else r["type"]
        by_kind[kind] = by_kind.get(kind, 0) + r["bytes"]
    return {"total_bytes": sum(by_kind.values()), "by_kind": by_kind, "requests": len(rows),
            "load_to_network_idle_s": round(load_s, 2), "files": rows}


# ------------------------------------------------------------------------------------------------------------

def machine():
    from django.db import connection

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal")))
    with connection.cursor() as cur:
        cur.execute("SELECT current_setting('server_version'), postgis_lib_version()")
        pg, postgis = cur.fetchone()
    return {"cpu": cpu, "cores": os.cpu_count(), "ram_gb": round(mem_kb / 1024 ** 2, 1), "postgresql": pg,
            "postgis": postgis, "python": platform.python_version(), "os": platform.platform()}


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    load_before = round(os.getloadavg()[0], 2)
    django_env(args.db)
    from web import tiles as web_tiles

    result = {"n": args.n, "db": args.db, "rounds": args.rounds}
    if args.keep_db and complaint_count() == args.n:
        print(f"reusing {args.db} with {args.n:,} complaints", flush=True)
    else:
        print(f"creating {args.db} (migrate, demo city) and {args.n:,} complaints", flush=True)
        started = time.perf_counter()
        recreate_database(args.db)
        result["setup_s"] = round(time.perf_counter() - started, 1)
        result["load"] = {k: round(v, 2) if isinstance(v, float) else v for k, v in load_complaints(args.n).items()}
        print(f"loaded: {result['load']}", flush=True)
    result["machine"] = {**machine(), "load_average_1m_before": load_before}
    result["sizes"] = table_sizes()

    views = {"city_z10": view_tiles(*CITY_VIEW), "street_z16": view_tiles(*STREET_VIEW)}
    result["views"] = {name: len(t) for name, t in views.items()}
    sql = {}
    for name, tiles in views.items():
        sql[name] = summary(time_calls(lambda t: web_tiles.complaints_tile(*t), tiles, args.rounds))
    sql["city_z10_naive"] = summary(time_calls(naive_tile, views["city_z10"], 2))
    result["sql"] = sql
    result["triggers"] = trigger_cost(min(100_000, args.n))
    result["cells_rebuild_s"] = rebuild_seconds()
    with gunicorn(args.db) as base:
        filtered = {"group": "Дворы", "state": ["assigned", "in_progress", "reopened"]}
        result["http"] = {
            "city_z10": http_tiles(base, views["city_z10"], args.rounds),
            "city_z10_filtered": http_tiles(base, views["city_z10"], args.rounds, params=filtered),
            "street_z16": http_tiles(base, views["street_z16"], args.rounds),
        }
        result["freshness"] = freshness(base)
        result["page"] = page_weight(base)
    result["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    result["targets"] = {
        "z10_p95_ok": result["http"]["city_z10"]["p95_ms"] <= TARGETS_MS[10],
        "z16_p95_ok": result["http"]["street_z16"]["p95_ms"] <= TARGETS_MS[16],
        "page_ok": result["page"]["total_bytes"] <= TARGET_PAGE_BYTES,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print_table(result)
    write_readme(result)
    return 0 if all(result["targets"].values()) else 1


def print_table(r):
    m = r["machine"]
    print(f"\nMap benchmark: {r['n']:,} complaints; {m['cpu']}, {m['cores']} cores, {m['ram_gb']} GB; "
          f"PostgreSQL {m['postgresql']}, PostGIS {m['postgis']}")
    print(f"{'measurement':58} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    rows = [
        (f"zoom 10, whole city ({r['views']['city_z10']} tiles), HTTP", r["http"]["city_z10"]),
        ("zoom 10, filtered (yards, open states), HTTP", r["http"]["city_z10_filtered"]),
        ("zoom 10, the query behind it (per-cell counts)", r["sql"]["city_z10"]),
        ("zoom 10, naive grid ST_AsMVT over the complaints", r["sql"]["city_z10_naive"]),
        (f"zoom 16, street ({r['views']['street_z16']} tiles), HTTP", r["http"]["street_z16"]),
        ("zoom 16, the query behind it (one point per complaint)", r["sql"]["street_z16"]),
        ("complaint_create (routing + 2 writes + history) on the table", r["freshness"]["complaint_create_on_1M"]),
    ]
    for label, s in rows:
        print(f"{label:58} {s['p50_ms']:8.2f} {s['p95_ms']:8.2f} {s['max_ms']:8.2f}")
    for name, t in r["triggers"].items():
        print(f"map triggers in {name}: {t['trigger_ms_p50']} ms of {t['statement_ms_p50']} ms (p50, EXPLAIN ANALYZE)")
    print(f"all map counts rebuilt from scratch: {r['cells_rebuild_s']} s")
    f = r["freshness"]
    print(f"freshness: new complaints on the map at once: {f['new_complaints_seen_at_once']}; "
          f"state change at once: {f['state_change_seen_at_once']} (HTTP max-age {f['tile_http_max_age_s']} s)")
    p = r["page"]
    print(f"first load of /: {p['total_bytes'] / 1e6:.2f} MB in {p['requests']} requests "
          f"({', '.join(f'{k} {v / 1e3:.0f} kB' for k, v in sorted(p['by_kind'].items()))})")
    print(f"targets: {r['targets']}")


def write_readme(r):
    """Replace this benchmark's section of bench/README.md (between its markers), leaving the others alone."""
    m, h, q, f, p = r["machine"], r["http"], r["sql"], r["freshness"], r["page"]

    def row(label, s, target=""):
        return f"| {label} | {s['p50_ms']:.1f} | {s['p95_ms']:.1f} | {s['max_ms']:.1f} | {target} |"

    ok = {True: "met", False: "NOT met"}
    t = r["targets"]
    lines = [
        "<!-- map:start -->",
        "## Map",
        "",
        f"`bench/map_bench.py`, {r['finished']}: {r['n']:,} synthetic complaints (uniform over the city, a year of "
        f"states) in their own database; {m['cores']} cores ({m['cpu']}, {m['ram_gb']} GB), {m['os']}, PostgreSQL "
        f"{m['postgresql'].split()[0]}, PostGIS {m['postgis']}. HTTP: gunicorn, 3 sync workers (as `make demo`), "
        f"on the same machine, one client; every tile of a {VIEW[0]} x {VIEW[1]} view, {r['rounds']} rounds "
        f"(the max includes each worker's first request). Load average (1 min) before the run: "
        f"{m['load_average_1m_before']}" + (" (other work shared the cores)." if m["load_average_1m_before"] > 0.5
                                             else "."),
        "",
        "| `/tiles/complaints/{z}/{x}/{y}.mvt` | p50 ms | p95 ms | max ms | target |",
        "| --- | ---: | ---: | ---: | --- |",
        row(f"zoom 10, whole city, {r['views']['city_z10']} tiles, HTTP", h["city_z10"],
            f"p95 <= {TARGETS_MS[10]} ({ok[t['z10_p95_ok']]})"),
        row("zoom 10, filtered (a group, open states), HTTP", h["city_z10_filtered"]),
        row("zoom 10, the query behind it (per-cell counts)", q["city_z10"]),
        row("zoom 10, naive: grid-aggregated `ST_AsMVT` over the complaints (max: the densest tiles)",
            q["city_z10_naive"]),
        row(f"zoom 16, a street, {r['views']['street_z16']} tiles, HTTP", h["street_z16"],
            f"p95 <= {TARGETS_MS[16]} ({ok[t['z16_p95_ok']]})"),
        row("zoom 16, the query behind it (one point per complaint)", q["street_z16"]),
        "",
        f"First load of `/` in Chromium (base-map tiles blocked): **{p['total_bytes'] / 1e6:.2f} MB** in "
        f"{p['requests']} requests (" + ", ".join(f"{k} {v / 1e3:.0f} kB" for k, v in sorted(p["by_kind"].items()))
        + f"); target < {TARGET_PAGE_BYTES / 1e6:.1f} MB ({ok[t['page_ok']]}).",
        "",
        "Freshness: the per-cell counts are kept by triggers in the writing transaction, so a new complaint and "
        f"a state change are in the next tile read (checked: {f['new_complaints_seen_at_once']}, "
        f"{f['state_change_seen_at_once']}); tiles are cacheable for {f['tile_http_max_age_s']} s. What the "
        "triggers cost writers (PostgreSQL's own trigger timing, p50): "
        + "; ".join(f"{name.replace('_', ' ')} {v['trigger_ms_p50']} ms of {v['statement_ms_p50']} ms"
                    for name, v in r["triggers"].items())
        + f". `complaint_create` on the full table: p50 {f['complaint_create_on_1M']['p50_ms']:.1f} ms. "
        f"Counts rebuilt from scratch: {r['cells_rebuild_s']} s."
        + f" The counts take {r['sizes']['cell_rows']:,} rows, {r['sizes']['cells_bytes'] / 1e6:.0f} MB beside "
        f"{r['sizes']['complaints_bytes'] / 1e6:.0f} MB of complaints."
        + (f" COPY of the complaints, counting trigger included: {r['load']['copy_with_cell_trigger_s']} s."
           if "load" in r else ""),
        "<!-- map:end -->",
    ]
    section = "\n".join(lines)
    text = README.read_text(encoding="utf-8") if README.exists() else "# Benchmarks\n\n`make bench` runs them all.\n"
    start, end = text.find("<!-- map:start -->"), text.find("<!-- map:end -->")
    if start != -1 and end != -1:
        text = text[:start] + section + text[end + len("<!-- map:end -->"):]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    README.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
