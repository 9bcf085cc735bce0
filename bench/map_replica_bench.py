#!/usr/bin/env python
"""Map benchmark at 5,000,000 complaints, read from a streaming replica (issue 9).

  (a) the map's tiles over HTTP from two gunicorns on one database: one with DATABASE_REPLICA_URL (the tile views
      are @stale_reads_ok, so they read the standby), one without (the primary); the same tiles (every tile of a
      1280 x 800 view of the whole city at zoom 10, of a street at zoom 16, zoom 10 with a filter), the rounds
      interleaved so that both see the same load of this shared machine; p50 / p95 / max;
  (b) proof that the replica's server reads the standby: the tables' scan counters (pg_stat_user_tables) on the
      standby and on the primary, before and after one pass over the tiles through the replica's server only;
  (c) freshness: a complaint filed on the primary (complaints.services.complaint_create) and a state change, each
      followed by polling the replica's server for the tile until it shows it; p50 / max over several changes;
  (d) what the map triggers cost writers at this size (as bench/map_bench.py measures it), and the query behind
      each tile in this process (the primary).

The data: a database of its own (default geo_ourcity_map5m_bench): migrated, the demo city, the complaints
generated as bench/map_bench.py does (numpy, a fixed seed) and COPYed in a million at a time with the indexes
built after. Once loaded completely, the database is marked so (a COMMENT naming n and the seed) and later runs
reuse it; --fresh-db loads it again. The standby is made again on every run (scripts/replica.sh: pg_basebackup
of the cluster into var/bench-replica, removed at the end).

    .venv/bin/python bench/map_replica_bench.py                  # the 5M run (the first one loads: ~10 minutes)
    .venv/bin/python bench/map_replica_bench.py --n 200000       # a quick check (another database)

Results: a table on stdout, bench/results/map_replica.json, and the "Map at 5,000,000, from a replica" part of
bench/README.md.
"""
import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import map_bench as mb  # noqa: E402  (the 1M benchmark's data generator, views and measurements)

ROOT = mb.ROOT
RESULTS = ROOT / "bench" / "results" / "map_replica.json"
README = ROOT / "bench" / "README.md"
PY = mb.PY
TARGETS_MS = {10: 50, 16: 20}  # p95 over HTTP from the replica, from issue 9
TARGET_VISIBLE_S = 60
REPLICA_DIR = ROOT / "var" / "bench-replica"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=5_000_000, help="complaints to generate")
    parser.add_argument("--db", default=None, help="the benchmark database (dropped when loaded again); "
                                                   "default geo_ourcity_map5m_bench, or ..._N for another --n")
    parser.add_argument("--rounds", type=int, default=10, help="rounds over each view's tiles, per server")
    parser.add_argument("--changes", type=int, default=10, help="new complaints and state changes to time")
    parser.add_argument("--fresh-db", action="store_true", help="load the database again even if it is complete")
    args, _unknown = parser.parse_known_args(argv)  # make bench passes the other benchmarks' options too
    if args.db is None:
        args.db = "geo_ourcity_map5m_bench" if args.n == 5_000_000 else f"geo_ourcity_map5m_bench_{args.n}"
    return args


def complete_mark(n):
    return f"map_replica_bench: {n} complaints, seed {mb.SEED}, loaded completely"


def database_is_complete(name, n):
    """The database exists and a previous run finished loading it with n complaints (its COMMENT says so)."""
    with mb.admin_connection() as conn, conn.cursor() as cur:
        cur.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", [name])
        row = cur.fetchone()
    return bool(row) and row[0] == complete_mark(n) and mb.complaint_count() == n


def vacuum():
    from django.db import connection

    with connection.cursor() as cur:
        for table in ("complaints_complaint", "web_complaintcell", "web_complaintcellstate"):
            cur.execute("SELECT to_regclass(%s)", [table])
            if cur.fetchone()[0]:
                cur.execute(f"VACUUM (ANALYZE) {table}")


def load(name, n):
    from django.db import connections

    timings = {}
    started = time.perf_counter()
    mb.recreate_database(name)
    timings["setup_s"] = time.perf_counter() - started
    timings.update(mb.load_complaints(n))
    started = time.perf_counter()
    vacuum()  # the visibility map and hint bits, before the base backup copies the pages
    timings["vacuum_s"] = time.perf_counter() - started
    connections.close_all()
    with mb.admin_connection() as conn, conn.cursor() as cur:
        cur.execute(f'COMMENT ON DATABASE "{name}" IS %s', [complete_mark(n)])
    return {k: round(v, 2) for k, v in timings.items()}


# ------------------------------------------------------------------------------------------------------------
# the standby and the two servers

@contextlib.contextmanager
def standby():
    """A fresh hot standby of the cluster (scripts/replica.sh); yields its socket directory."""
    from django.conf import settings

    script = str(ROOT / "scripts" / "replica.sh")
    env = dict(os.environ, OURCITY_PG_RUN=settings.DATABASES["default"]["HOST"],
               OURCITY_REPLICA_SHARED_BUFFERS="256MB")  # as the primary's (scripts/pg.sh)
    subprocess.run([script, "stop", str(REPLICA_DIR)], env=env, capture_output=True)  # a run that was killed
    shutil.rmtree(REPLICA_DIR, ignore_errors=True)
    started = time.perf_counter()
    try:
        run = subprocess.run([script, "start", str(REPLICA_DIR)], env=env, check=True, capture_output=True, text=True)
        yield run.stdout.strip().splitlines()[-1], round(time.perf_counter() - started, 1)
    finally:
        subprocess.run([script, "stop", str(REPLICA_DIR)], env=env, capture_output=True)
        shutil.rmtree(REPLICA_DIR, ignore_errors=True)


def connect(db_name, host):
    import psycopg2
    from django.conf import settings

    conn = psycopg2.connect(dbname=db_name, host=host, user=settings.DATABASES["default"].get("USER") or None)
    conn.autocommit = True
    return contextlib.closing(conn)


def replica_url(db_name, host):
    from django.conf import settings

    return f"postgres://{settings.DATABASES['default']['USER']}@:5432/{db_name}?host={host}"


def wait_replayed(db_name, standby_host, timeout=120):
    """Until the standby has replayed all the primary has written so far."""
    from django.conf import settings

    with connect(db_name, settings.DATABASES["default"]["HOST"]) as p, p.cursor() as cur:
        cur.execute("SELECT pg_current_wal_lsn()::text")
        target = cur.fetchone()[0]
    deadline = time.monotonic() + timeout
    with connect(db_name, standby_host) as s, s.cursor() as cur:
        while True:
            cur.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [target])
            if cur.fetchone()[0]:
                return
            if time.monotonic() > deadline:
                raise SystemExit(f"error: the standby did not catch up within {timeout} s")
            time.sleep(0.05)


@contextlib.contextmanager
def gunicorn(db_name, replica=None, workers=3):
    """gunicorn as `make demo` runs it (3 sync workers), on a free port; with DATABASE_REPLICA_URL if replica."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, OURCITY_DB_NAME=db_name, DEBUG="0")
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env.pop("DATABASE_REPLICA_URL", None)
    if replica:
        env["DATABASE_REPLICA_URL"] = replica
    process = subprocess.Popen([str(Path(PY).parent / "gunicorn"), "geo_ourcity.wsgi", "--bind", f"127.0.0.1:{port}",
                                "--workers", str(workers), "--log-level", "warning"], cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        import requests

        for _ in range(200):
            try:
                requests.get(base + "/tiles/complaints/0/0/0.mvt", timeout=5)
                break
            except requests.RequestException:
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)  # a loaded machine: gunicorn's workers may take a while to go
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# ------------------------------------------------------------------------------------------------------------
# measurements

SCANS = """SELECT relname, COALESCE(seq_scan, 0) + COALESCE(idx_scan, 0) FROM pg_stat_user_tables
           WHERE relname IN ('web_complaintcell', 'web_complaintcellstate', 'complaints_complaint')"""


def scans(db_name, host):
    with connect(db_name, host) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_stat_clear_snapshot()")
        cur.execute(SCANS)
        return dict(cur.fetchall())


def where_tiles_are_read(db_name, standby_host, base_replica, tiles):
    """One pass over the tiles through the replica's server only; the tables' scan counters on both servers.
    PostgreSQL publishes a backend's counters some seconds after its work: wait for them to settle."""
    import requests
    from django.conf import settings

    primary_host = settings.DATABASES["default"]["HOST"]
    time.sleep(12)  # what the servers did before (the warm-up pass, on both) is published first
    before = {"standby": scans(db_name, standby_host), "primary": scans(db_name, primary_host)}
    session = requests.Session()
    for tile in tiles:
        session.get(base_replica + "/tiles/complaints/%d/%d/%d.mvt" % tile).raise_for_status()
    # A backend that published less than a second ago publishes again after 10 s idle (PGSTAT_IDLE_INTERVAL).
    time.sleep(11)
    after, previous = {}, None
    for _ in range(30):  # until the counters have stood still for 3 s
        time.sleep(1)
        after = {"standby": scans(db_name, standby_host), "primary": scans(db_name, primary_host)}
        if after == previous:
            break
        previous = after
        time.sleep(2)
    delta = {server: {t: after[server].get(t, 0) - before[server].get(t, 0) for t in before[server]}
             for server in before}
    return {"tile_requests": len(tiles), "table_scans_during_the_pass": delta,
            "served_from_the_replica": delta["standby"]["complaints_complaint"] > 0
            and delta["standby"]["web_complaintcell"] + delta["standby"].get("web_complaintcellstate", 0) > 0
            and all(v == 0 for v in delta["primary"].values())}


def interleaved_http(bases, tiles, rounds, params=None):
    """The same tiles from each server in turn, round by round (both share the machine's load alike)."""
    import requests

    sessions = {name: requests.Session() for name in bases}
    samples = {name: [] for name in bases}
    for _ in range(rounds):
        for name, base in bases.items():
            for tile in tiles:
                started = time.perf_counter()
                response = sessions[name].get(base + "/tiles/complaints/%d/%d/%d.mvt" % tile, params=params)
                response.raise_for_status()
                samples[name].append((time.perf_counter() - started) * 1000)
    return {name: mb.summary(s) for name, s in samples.items()}


def freshness(base_replica, changes):
    """A new complaint, then a state change, on the primary; after each, poll the replica's server for the tile
    (zoom 10, the cells' counts; past any HTTP cache) until it shows the change. Seconds from the commit."""
    import requests
    from django.contrib.gis.geos import Point

    from complaints.models import Complaint, State
    from complaints.services import complaint_create
    from routing.models import Category

    sys.path.insert(0, str(ROOT / "tests" / "web"))
    from mvt import decode  # the tests' small MVT reader

    lon, lat = mb.STREET_VIEW[2], mb.STREET_VIEW[1]
    tile = mb.view_tiles(10, lat, lon, size=(1, 1))[0]
    url = base_replica + "/tiles/complaints/%d/%d/%d.mvt" % tile
    session = requests.Session()

    def counts():
        data = session.get(url, params={"v": time.time()}).content
        features = decode(data)["complaints"]["features"]
        return (sum(f["properties"]["n"] for f in features),
                sum(f["properties"].get(State.RESOLVED.value, 0) for f in features))

    def until(expected, timeout=TARGET_VISIBLE_S * 2):
        started = time.perf_counter()
        polls = 0
        while True:
            polls += 1
            if counts() == expected:
                return time.perf_counter() - started, polls
            if time.perf_counter() - started > timeout:
                return None, polls

    category = Category.objects.get(code="yard-rubbish")
    created, changed, create_ms, polls = [], [], [], []
    try:
        complaint_create(category=category, point=Point(lon, lat, srid=4326), description="bench-replica")  # warm
        time.sleep(1)
        for i in range(1, changes + 1):
            total, resolved = counts()
            started = time.perf_counter()
            complaint = complaint_create(category=category, point=Point(lon + i * 1e-5, lat, srid=4326),
                                         description="bench-replica")
            create_ms.append((time.perf_counter() - started) * 1000)
            seconds, n = until((total + 1, resolved))
            created.append(seconds)
            polls.append(n)
            Complaint.objects.filter(pk=complaint.pk).update(state=State.RESOLVED)  # autocommit: committed here
            seconds, n = until((total + 1, resolved + 1))
            changed.append(seconds)
            polls.append(n)
    finally:
        Complaint.objects.filter(description="bench-replica").delete()  # the table holds n again (reuse)

    def stats(values):
        seen = [v for v in values if v is not None]
        return {"changes": len(values), "seen": len(seen),
                "p50_s": round(sorted(seen)[len(seen) // 2], 4) if seen else None,
                "max_s": round(max(seen), 4) if seen else None}

    return {"new_complaint": stats(created), "state_change": stats(changed), "polls_max": max(polls),
            "complaint_create_ms": mb.summary(create_ms), "tile_http_max_age_s": 30}


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    load_before = [round(v, 2) for v in os.getloadavg()]
    mb.django_env(args.db)
    from web import tiles as web_tiles

    result = {"n": args.n, "db": args.db, "rounds": args.rounds}
    if not args.fresh_db and database_is_complete(args.db, args.n):
        print(f"reusing {args.db} with {args.n:,} complaints (loaded completely before)", flush=True)
        subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True,
                       env=dict(os.environ, OURCITY_DB_NAME=args.db))  # a newer migration (the map's counts)
    else:
        print(f"creating {args.db} (migrate, demo city) and {args.n:,} complaints", flush=True)
        started = time.perf_counter()
        result["load"] = load(args.db, args.n)
        result["load"]["total_s"] = round(time.perf_counter() - started, 1)
        print(f"loaded: {result['load']}", flush=True)
    result["machine"] = {**mb.machine(), "load_average_before": load_before}
    result["sizes"] = mb.table_sizes()
    views = {"city_z10": mb.view_tiles(*mb.CITY_VIEW), "street_z16": mb.view_tiles(*mb.STREET_VIEW)}
    result["views"] = {name: len(t) for name, t in views.items()}
    result["triggers"] = mb.trigger_cost(min(100_000, args.n))
    # Its rolled-back updates left ~500,000 dead row versions: a standby's index scans can not trust the primary's
    # "dead" marks on index entries (they visit the heap for each until VACUUM removes them), so clear them first.
    vacuum()

    env = dict(os.environ, OURCITY_DB_NAME=args.db, DEBUG="0")
    subprocess.run([PY, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    with standby() as (standby_host, made_s):
        result["standby_made_s"] = made_s
        print(f"standby made in {made_s} s", flush=True)
        wait_replayed(args.db, standby_host)
        with gunicorn(args.db) as base_primary, \
                gunicorn(args.db, replica=replica_url(args.db, standby_host)) as base_replica:
            bases = {"replica": base_replica, "primary": base_primary}
            all_tiles = views["city_z10"] + views["street_z16"]
            # Each server's caches warmed alike: one pass over every tile (not measured).
            interleaved_http(bases, all_tiles, 1)
            result["reads"] = where_tiles_are_read(args.db, standby_host, base_replica, all_tiles)
            print(f"reads: {result['reads']}", flush=True)
            filtered = {"group": "Дворы", "state": ["assigned", "in_progress", "reopened"]}
            result["http"] = {
                "city_z10": interleaved_http(bases, views["city_z10"], args.rounds),
                "city_z10_filtered": interleaved_http(bases, views["city_z10"], args.rounds, params=filtered),
                "street_z16": interleaved_http(bases, views["street_z16"], args.rounds),
            }
            print(f"http: {json.dumps(result['http'])}", flush=True)
            result["freshness"] = freshness(base_replica, args.changes)
            print(f"freshness: {json.dumps(result['freshness'])}", flush=True)
    result["sql"] = {name: mb.summary(mb.time_calls(lambda t: web_tiles.complaints_tile(*t), tiles, args.rounds))
                     for name, tiles in views.items()}
    result["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    result["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    f = result["freshness"]
    result["targets"] = {
        "z10_p95_ok": result["http"]["city_z10"]["replica"]["p95_ms"] <= TARGETS_MS[10],
        "z16_p95_ok": result["http"]["street_z16"]["replica"]["p95_ms"] <= TARGETS_MS[16],
        "visible_within_a_minute": all(
            k["seen"] == k["changes"] and k["max_s"] <= TARGET_VISIBLE_S for k in (f["new_complaint"], f["state_change"])),
        "served_from_the_replica": result["reads"]["served_from_the_replica"],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print_table(result)
    write_readme(result)
    return 0 if all(result["targets"].values()) else 1


def rows(r):
    h, q = r["http"], r["sql"]
    return [
        (f"zoom 10, whole city, {r['views']['city_z10']} tiles, HTTP", h["city_z10"], f"p95 <= {TARGETS_MS[10]}",
         "z10_p95_ok"),
        ("zoom 10, filtered (a group, open states), HTTP", h["city_z10_filtered"], "", None),
        (f"zoom 16, a street, {r['views']['street_z16']} tiles, HTTP", h["street_z16"], f"p95 <= {TARGETS_MS[16]}",
         "z16_p95_ok"),
    ], [("zoom 10, the query behind it (primary, in process)", q["city_z10"]),
        ("zoom 16, the query behind it (primary, in process)", q["street_z16"])]


def freshness_text(r):
    f = r["freshness"]

    def one(k):
        return f"{k['seen']} of {k['changes']} seen, p50 {k['p50_s'] * 1000:.0f} ms, max {k['max_s'] * 1000:.0f} ms" \
            if k["seen"] else f"0 of {k['changes']} seen"

    return f"a new complaint: {one(f['new_complaint'])}; a state change: {one(f['state_change'])}"


def print_table(r):
    m = r["machine"]
    print(f"\nMap at {r['n']:,} complaints, replica beside primary; {m['cpu']}, {m['cores']} cores; "
          f"load average before {m['load_average_before']}, after {r['load_average_after']}")
    print(f"{'measurement':52} {'replica p50/p95/max ms':>26} {'primary p50/p95/max ms':>26}")
    http_rows, sql_rows = rows(r)
    for label, s, target, key in http_rows:
        fmt = lambda x: f"{x['p50_ms']:.1f} / {x['p95_ms']:.1f} / {x['max_ms']:.1f}"  # noqa: E731
        met = f"  {target}: {'met' if r['targets'][key] else 'NOT met'}" if key else ""
        print(f"{label:52} {fmt(s['replica']):>26} {fmt(s['primary']):>26}{met}")
    for label, s in sql_rows:
        print(f"{label:52} {s['p50_ms']:.1f} / {s['p95_ms']:.1f} / {s['max_ms']:.1f}")
    print(f"reads: {r['reads']}")
    print(f"freshness from the replica: {freshness_text(r)}")
    for name, t in r["triggers"].items():
        print(f"map triggers in {name}: {t['trigger_ms_p50']} ms of {t['statement_ms_p50']} ms (p50, EXPLAIN ANALYZE)")
    print(f"targets: {r['targets']}")


def write_readme(r):
    """Replace this benchmark's part of bench/README.md (between its markers), after the Map section."""
    m, f = r["machine"], r["freshness"]
    ok = {True: "met", False: "NOT met"}
    http_rows, sql_rows = rows(r)
    d = r["reads"]["table_scans_during_the_pass"]
    lines = [
        "<!-- map-replica:start -->",
        f"### Map at {r['n']:,} complaints, read from a streaming replica",
        "",
        f"`bench/map_replica_bench.py`, {r['finished']}: {r['n']:,} synthetic complaints (as above, same generator) "
        f"in their own database; a hot standby of the cluster made by `scripts/replica.sh` (pg_basebackup, "
        f"streaming; {r['standby_made_s']} s to make); two gunicorns (3 sync workers each) on one database, one with "
        "`DATABASE_REPLICA_URL` (the tile views are `@stale_reads_ok`: they read the standby), one without (the "
        f"primary); one client; every tile of a {mb.VIEW[0]} x {mb.VIEW[1]} view, {r['rounds']} rounds per server, "
        f"the two servers' rounds interleaved, after one unmeasured pass. {m['cores']} cores ({m['cpu']}, "
        f"{m['ram_gb']} GB), PostgreSQL {m['postgresql'].split()[0]}, PostGIS {m['postgis']}. **The machine was "
        f"shared with other work**: load average (1, 5, 15 min) {m['load_average_before']} before the run, "
        f"{r['load_average_after']} after.",
        "",
        "| `/tiles/complaints/{z}/{x}/{y}.mvt` | replica p50 ms | p95 ms | max ms | primary p50 ms | p95 ms | max ms "
        "| target (replica) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for label, s, target, key in http_rows:
        a, b = s["replica"], s["primary"]
        lines.append(f"| {label} | {a['p50_ms']:.1f} | {a['p95_ms']:.1f} | {a['max_ms']:.1f} | {b['p50_ms']:.1f} "
                     f"| {b['p95_ms']:.1f} | {b['max_ms']:.1f} | "
                     + (f"{target} ({ok[r['targets'][key]]})" if key else "") + " |")
    for label, s in sql_rows:
        lines.append(f"| {label} | | | | {s['p50_ms']:.1f} | {s['p95_ms']:.1f} | {s['max_ms']:.1f} | |")
    lines += [
        "",
        f"The reads really are the standby's: one pass of {r['reads']['tile_requests']} tile requests through the "
        f"replica's server scanned, on the standby, the map's counts (web_complaintcell, web_complaintcellstate) "
        f"{d['standby'].get('web_complaintcell', 0) + d['standby'].get('web_complaintcellstate', 0)} times and "
        f"complaints_complaint {d['standby'].get('complaints_complaint', 0)} times; on the primary "
        f"{d['primary'].get('web_complaintcell', 0) + d['primary'].get('web_complaintcellstate', 0)} and "
        f"{d['primary'].get('complaints_complaint', 0)} times (`pg_stat_user_tables`, seq + index scans).",
        "",
        f"A change visible within a minute ({ok[r['targets']['visible_within_a_minute']]}): written on the primary, "
        f"polled through the replica's server until its zoom 10 tile shows it: {freshness_text(r)}. A browser may "
        f"also keep a tile for its HTTP max-age ({f['tile_http_max_age_s']} s), so a resident sees a change at "
        f"most that much later again. `complaint_create` on the {r['n']:,}-row table: p50 "
        f"{f['complaint_create_ms']['p50_ms']:.1f} ms. What the map triggers cost writers at this size "
        "(PostgreSQL's own trigger timing, p50): "
        + "; ".join(f"{name.replace('_', ' ')} {v['trigger_ms_p50']} ms of {v['statement_ms_p50']} ms"
                    for name, v in r["triggers"].items())
        + f". The counts take {r['sizes']['cell_rows']:,} rows, {r['sizes']['cells_bytes'] / 1e6:.0f} MB beside "
        f"{r['sizes']['complaints_bytes'] / 1e6:.0f} MB of complaints."
        + (f" Loading (once; later runs reuse the database): {r['load']['total_s']} s, of which COPY with the "
           f"counting trigger {r['load']['copy_with_cell_trigger_s']} s, indexes {r['load']['indexes_s']} s."
           if "load" in r else ""),
        "<!-- map-replica:end -->",
    ]
    section = "\n".join(lines)
    text = README.read_text(encoding="utf-8")
    start, end = text.find("<!-- map-replica:start -->"), text.find("<!-- map-replica:end -->")
    if start != -1 and end != -1:
        text = text[:start] + section + text[end + len("<!-- map-replica:end -->"):]
    else:
        anchor = text.find("<!-- map:end -->")
        if anchor != -1:
            cut = anchor + len("<!-- map:end -->")
            text = text[:cut] + "\n\n" + section + text[cut:]
        else:
            text = text.rstrip("\n") + "\n\n" + section + "\n"
    README.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
