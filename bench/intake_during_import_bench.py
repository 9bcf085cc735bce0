#!/usr/bin/env python
"""Complaint intake during a facilities import: Open311 POST latency while a new 300,000-point facilities dataset,
whose owners are found by district, is dry-run from the admin upload page and committed by `import_dataset`.

A client process sends a steady, open-loop stream of `POST /open311/v2/requests.json` (a fixed rate, each request
on its own thread at its scheduled time, so a stalled server shows as latency, not as fewer requests) to gunicorn,
and records each request's latency from its scheduled time to the answer. Phases, one after another, in one run:

  (a) quiet: no import;
  (b) peer: ogr2ogr loads the same file into a table of its own (the bulk-load floor; no reader touches it);
  (c) the same file dry-run through the admin upload page (a multipart POST to the running server);
  (d) `manage.py import_dataset FILE --spec SPEC --commit` of the file;
  (e) the same command with the next version of the file (every point moved, one more): a new generation of the
      dataset replaces the old one, so the switch detaches the old partition (an ACCESS EXCLUSIVE lock, taken in
      the last step before COMMIT under a short lock_timeout, retried).

For each: POSTs sent, answered 201, p50, p99 and max latency; and for (b)-(d) the load's own wall time, our
import beside ogr2ogr as a ratio (both under the same POST load). A sampler reads pg_locks every 50 ms and keeps
the longest lock wait of any backend (which relation, which mode, and what the blocker held). After (d), the
POSTs sent after the commit are checked to be routed with the new registry (some decided by a facility of the
new dataset, owned by its district's council).

Targets (issue 8): p99 <= 100 ms and max <= 500 ms during the import, on 2 cores.
The benchmark database (default geo_ourcity_bench_intake) is created anew each run: migrated, demo city loaded.
The file is import_bench.py's synthetic one (cached under var/bench/).

    .venv/bin/python bench/intake_during_import_bench.py [--n 300000] [--rate 20] [--workers 4]

Writes bench/results/intake_during_import.json and the "Intake during an import" section of bench/README.md.
"""
import argparse
import concurrent.futures
import datetime
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results" / "intake_during_import.json"
README = BENCH / "README.md"
SPEC = BENCH / "specs" / "bench_facilities_by_district.yaml"
DATASET = "bench-district-facilities"
DB_NAME = os.environ.get("OURCITY_BENCH_INTAKE_DB", "geo_ourcity_bench_intake")
SERVICE = "streetlight-out"  # routed by the nearest streetlight within 30 m: reads the facilities being imported
MARK_START, MARK_END = "<!-- intake_during_import:start -->", "<!-- intake_during_import:end -->"
TARGET_P99_MS, TARGET_MAX_MS = 100, 500
PY = sys.executable

sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))
os.environ["OURCITY_DB_NAME"] = DB_NAME
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "geo_ourcity.settings")

import import_bench  # noqa: E402  (the synthetic file, timed child processes, ogr2ogr)

# A benchmark measures speed, not the abuse limits (issue 8): the servers it starts inherit limits it can not
# reach. Each limit can still be set from the environment.
for _limit in ("OURCITY_LIMIT_OPEN311_POSTS", "OURCITY_LIMIT_OPEN311_BAD_KEYS", "OURCITY_LIMIT_OPEN311_TOKEN_LOOKUPS",
               "OURCITY_LIMIT_WEB_REPORTS", "OURCITY_LIMIT_CODE_LOOKUPS"):
    os.environ.setdefault(_limit, "100000000/m")


def log(text):
    print(text, flush=True)


# ------------------------------------------------------------------------------------------------------------
# set-up


def child_env():
    env = import_bench.child_env(DB_NAME)
    env["OURCITY_IMPORTS_DIR"] = str(import_bench.CACHE_DIR / f"imports-{DB_NAME}")
    return env


def recreate_database(db, env):
    with import_bench.pg_connect(db, "postgres") as conn, conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{DB_NAME}"')
    with import_bench.pg_connect(db) as conn, conn.cursor() as cur:
        cur.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    import_bench.manage(env, "migrate", "--noinput", "-v", "0")
    import_bench.manage(env, "load_demo")


def post_form():
    """The fixed part of every POST (a key, the service, its required attributes); and an admin's login."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from open311.keys import api_key_issue
    from routing.models import Category

    category = Category.objects.prefetch_related("attributes").get(code=SERVICE)
    _key, raw = api_key_issue(name="intake-bench")
    fields = {"api_key": raw, "service_code": category.code, "description": "Не горит фонарь у подъезда",
              "email": "bench@example.org"}
    for attribute in category.attributes.all():
        if attribute.required:
            fields[f"attribute[{attribute.code}]"] = attribute.values[0]["key"] if attribute.values else "1"
    password = secrets.token_urlsafe(16)
    get_user_model().objects.create_superuser("intake-bench", "intake-bench@example.org", password)
    from django.db import connection

    connection.close()
    return fields, ("intake-bench", password)


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(port, workers, env):
    # A long worker timeout: the upload page's dry run of 300,000 rows runs inside its request.
    command = [str(ROOT / ".venv" / "bin" / "gunicorn"), "geo_ourcity.wsgi:application", "--bind",
               f"127.0.0.1:{port}", "--workers", str(workers), "--worker-class", "sync", "--timeout", "900",
               "--backlog", "2048", "--log-level", "warning"]
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    import urllib.request

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/open311/v2/discovery.json", timeout=10).read()
            return server
        except OSError:
            if server.poll() is not None:
                raise SystemExit("gunicorn exited")
            time.sleep(0.5)
    server.terminate()
    raise SystemExit("gunicorn did not answer within 120 s")


# ------------------------------------------------------------------------------------------------------------
# the POST load (a child process: its threads and the GIL do not slow the loads it is measured beside)


def worker_client(argv):
    """Open-loop POSTs at `rate`/s until the stop file appears; one JSON list of samples on stdout."""
    base, body_file, rate, stop_file, seed = argv[0], argv[1], float(argv[2]), Path(argv[3]), int(argv[4])
    import requests

    fields = json.loads(Path(body_file).read_text(encoding="utf-8"))
    rng = random.Random(seed)
    samples, lock = [], threading.Lock()

    def one(scheduled, lon, lat):
        status, error = None, ""
        try:
            r = requests.post(base + "/open311/v2/requests.json", data={**fields, "long": f"{lon:.6f}",
                                                                         "lat": f"{lat:.6f}"}, timeout=120)
            status = r.status_code
            if status == 201:
                ident = r.json()[0].get("service_request_id")
            else:
                ident, error = None, r.text[:200]
        except requests.RequestException as exc:
            ident, error = None, exc.__class__.__name__
        done = time.time()
        with lock:
            samples.append({"t": scheduled, "ms": round((done - scheduled) * 1000, 2), "status": status,
                            "id": ident, "error": error})

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=256)
    start, i = time.time(), 0
    while not stop_file.exists():
        scheduled = start + i / rate
        pause = scheduled - time.time()
        if pause > 0:
            time.sleep(pause)
        # Points inside the city's core box (as the Open311 HTTP benchmark): all are in some district.
        pool.submit(one, scheduled, 37.48 + rng.random() * 0.26, 55.66 + rng.random() * 0.18)
        i += 1
    pool.shutdown(wait=True)
    print(json.dumps(samples))


class Load:
    """The client process, started and stopped around one phase."""

    def __init__(self, base, fields, rate, seed):
        self.tmp = tempfile.TemporaryDirectory(prefix="intake-bench-", dir=import_bench.CACHE_DIR)
        body = Path(self.tmp.name) / "body.json"
        body.write_text(json.dumps(fields), encoding="utf-8")
        self.stop_file = Path(self.tmp.name) / "stop"
        self.proc = subprocess.Popen([PY, str(Path(__file__)), "_worker_client", base, str(body), str(rate),
                                      str(self.stop_file), str(seed)], stdout=subprocess.PIPE, text=True)
        self.started = time.time()

    def stop(self):
        self.stop_file.touch()
        out, _ = self.proc.communicate(timeout=300)
        self.tmp.cleanup()
        return json.loads(out)


# ------------------------------------------------------------------------------------------------------------
# lock waits


class LockSampler(threading.Thread):
    """Every 50 ms: which backends of the benchmark database wait for a lock, on what, and what the blocker holds.
    Keeps the longest wait seen and the strongest lock any backend held on facilities_facility."""

    QUERY = """
        SELECT w.pid, extract(epoch FROM now() - coalesce(wa.state_change, wa.query_start)), w.mode,
               w.relation::regclass::text, left(wa.query, 80),
               (SELECT string_agg(DISTINCT b.mode || ' by pid ' || b.pid, ', ') FROM pg_locks b
                WHERE b.granted AND b.relation = w.relation AND b.pid = ANY(pg_blocking_pids(w.pid)))
        FROM pg_locks w JOIN pg_stat_activity wa ON wa.pid = w.pid
        WHERE NOT w.granted AND wa.datname = %s AND w.relation IS NOT NULL"""
    HELD = """SELECT l.mode, l.pid FROM pg_locks l WHERE l.granted AND l.relation = 'facilities_facility'::regclass
              AND l.mode IN ('AccessExclusiveLock', 'ExclusiveLock', 'ShareRowExclusiveLock', 'ShareLock')"""

    def __init__(self, db):
        super().__init__(daemon=True)
        self.db, self.halt = db, threading.Event()
        self.reset()

    def reset(self):
        self.longest = {"s": 0.0}
        self.strong = {}  # mode -> (first seen, last seen)

    def run(self):
        with import_bench.pg_connect(self.db) as conn, conn.cursor() as cur:
            while not self.halt.wait(0.05):
                now = time.time()
                cur.execute(self.QUERY, [DB_NAME])
                for pid, waited, mode, rel, query, blocker in cur.fetchall():
                    if waited and waited > self.longest["s"]:
                        self.longest = {"s": round(float(waited), 3), "mode": mode, "relation": rel,
                                        "query": " ".join((query or "").split()), "blocker_holds": blocker}
                cur.execute(self.HELD)
                for mode, _pid in cur.fetchall():
                    first, _ = self.strong.get(mode, (now, now))
                    self.strong[mode] = (first, now)

    def summary(self):
        return {"longest_wait": self.longest,
                "strong_locks_on_facilities_facility_s": {m: round(b - a + 0.05, 2) for m, (a, b) in self.strong.items()}}


# ------------------------------------------------------------------------------------------------------------
# the phases


def stats(samples, started=None, ended=None):
    import numpy as np

    inside = [s for s in samples if (started is None or s["t"] >= started) and (ended is None or s["t"] <= ended)]
    ms = np.array([s["ms"] for s in inside]) if inside else np.array([0.0])
    ok = sum(1 for s in inside if s["status"] == 201)
    return {"sent": len(inside), "answered_201": ok, "other": len(inside) - ok,
            "p50_ms": round(float(np.percentile(ms, 50)), 1), "p99_ms": round(float(np.percentile(ms, 99)), 1),
            "max_ms": round(float(ms.max()), 1),
            "errors": sorted({s["error"] for s in inside if s["error"]})[:5]}


def phase(name, base, fields, rate, sampler, action, lead=2.0, tail=2.0):
    """Run `action` (returns a dict, or None) under the POST load; the POSTs scheduled while it ran are its
    figures. `lead` seconds of load before it (not counted), `tail` after."""
    log(f"-- {name}")
    sampler.reset()
    load = Load(base, fields, rate, seed=hash(name) & 0xFFFF)
    time.sleep(lead)
    t0 = time.time()
    detail = action() or {}
    t1 = time.time()
    time.sleep(tail)
    samples = load.stop()
    s = stats(samples, t0, t1)
    out = {"phase": name, "seconds": round(t1 - t0, 2), **s, **detail, "locks": sampler.summary(),
           "_samples": samples, "_window": (t0, t1)}
    log(f"   {s['sent']} POSTs in {t1 - t0:.1f} s: 201 {s['answered_201']}, p50 {s['p50_ms']} ms, "
        f"p99 {s['p99_ms']} ms, max {s['max_ms']} ms; longest lock wait {out['locks']['longest_wait']}")
    return out


def upload_dry_run(base, login, path):
    import requests

    session = requests.Session()
    page = session.get(base + "/admin/login/", timeout=30)
    page.raise_for_status()
    r = session.post(base + "/admin/login/?next=/admin/", data={
        "username": login[0], "password": login[1], "csrfmiddlewaretoken": session.cookies["csrftoken"],
        "next": "/admin/"}, timeout=30)
    r.raise_for_status()
    url = base + "/admin/importers/importrun/upload/"
    session.get(url, timeout=30).raise_for_status()
    started = time.perf_counter()
    with open(path, "rb") as data, open(SPEC, "rb") as spec:
        r = session.post(url, data={"csrfmiddlewaretoken": session.cookies["csrftoken"]}, timeout=900,
                         files={"file": (path.name, data, "application/geopackage+sqlite3"),
                                "spec_file": (SPEC.name, spec, "application/yaml")}, headers={"Referer": url})
    wall = time.perf_counter() - started
    if r.status_code != 200 or "/report/" not in r.url:
        raise SystemExit(f"the upload's dry run did not reach its report: {r.status_code} {r.url}\n{r.text[-2000:]}")
    return {"wall_s": round(wall, 2), "report_url": r.url.removeprefix(base)}


def last_run(db):
    with import_bench.pg_connect(db) as conn, conn.cursor() as cur:
        cur.execute("SELECT status, counts FROM importers_importrun ORDER BY id DESC LIMIT 1")
        status, counts = cur.fetchone()
    keys = ("read", "created", "updated", "retired", "rejected", "rerouted", "seconds")
    return {"status": status, "counts": {k: counts[k] for k in keys if k in counts}}


def routed_by_new_dataset(db, ids):
    """Of these complaints (Open311 ids), how many were decided by a facility of the benchmark's dataset."""
    with import_bench.pg_connect(db) as conn, conn.cursor() as cur:
        cur.execute("""SELECT count(*) FROM complaints_complaint c
                       JOIN routing_routingdecision d ON d.id = c.decision_id
                       JOIN facilities_facility f ON f.id = d.facility_id
                       JOIN facilities_dataset ds ON ds.id = f.dataset_id AND ds.code = %s
                       WHERE c.id = ANY(%s)""", [DATASET, [int(i) for i in ids]])
        return cur.fetchone()[0]


# ------------------------------------------------------------------------------------------------------------


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_worker_client":
        return worker_client(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--n", type=int, default=300_000, help="facilities in the file")
    parser.add_argument("--rate", type=float, default=20, help="POSTs per second")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument("--quiet-seconds", type=float, default=20, help="length of the no-import phase")
    args, _unknown = parser.parse_known_args(argv)  # bench/run.py may pass options meant for other benchmarks

    load_before = os.getloadavg()[0]
    db, dsn = import_bench.bench_db_config(DB_NAME)
    env = child_env()
    path = import_bench.dataset_file(args.n)
    changed = import_bench.dataset_file(args.n + 1)  # other points (the generator draws them for n), same keys
    log(f"database {DB_NAME}: created anew, migrated, demo city loaded")
    recreate_database(db, env)
    fields, login = post_form()
    port = free_port()
    server = start_gunicorn(port, args.workers, env)
    base = f"http://127.0.0.1:{port}"
    sampler = LockSampler(db)
    sampler.start()
    phases = {}
    try:
        import_bench.warm_cache(path)
        phases["quiet"] = phase("quiet: no import", base, fields, args.rate, sampler,
                                lambda: time.sleep(args.quiet_seconds), lead=3.0)
        phases["ogr2ogr"] = phase("peer: ogr2ogr of the file into a table of its own", base, fields, args.rate,
                                  sampler, lambda: {"wall_s": round(import_bench.run_ogr2ogr(
                                      path, dsn, env, args.n)["wall_s"], 2)})
        phases["dry_run"] = phase("dry run of the file from the admin upload page", base, fields, args.rate,
                                  sampler, lambda: {**upload_dry_run(base, login, path), **last_run(db)})

        def commit(file):
            r = import_bench.run_timed([PY, "manage.py", "import_dataset", str(file), "--spec", str(SPEC),
                                        "--commit", "--quiet"], env, "import_dataset --commit")
            return {"wall_s": round(r["wall_s"], 2), **last_run(db), "committed_at": time.time()}

        phases["commit"] = phase("import_dataset --commit of the file", base, fields, args.rate, sampler,
                                 lambda: commit(path), tail=5.0)
        phases["recommit"] = phase("import_dataset --commit of its next version (replaces the generation)", base,
                                   fields, args.rate, sampler, lambda: commit(changed), tail=5.0)
    finally:
        sampler.halt.set()
        server.terminate()
        server.wait(timeout=60)
    for c in (phases["commit"], phases["recommit"]):
        committed_at = c.pop("committed_at")
        after = [s["id"] for s in c["_samples"] if s["t"] > committed_at + 1 and s["id"]]
        c["after_commit"] = {"posts": len(after), "routed_by_a_new_facility": routed_by_new_dataset(db, after)}
    for p in phases.values():
        p.pop("_samples")
        p.pop("_window")
    result = summarise(args, phases, load_before)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    write_readme(result)
    log(table(result))
    log(f"results: {RESULTS.relative_to(ROOT)}")
    return 0


def summarise(args, phases, load_before):
    during = [phases["dry_run"], phases["commit"], phases["recommit"]]
    return {
        "benchmark": "intake_during_import",
        "finished": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {**import_bench.machine(), "load_average_1m_before": round(load_before, 2)},
        "source": import_bench.source_revision(),
        "config": {"features": args.n, "rate_per_s": args.rate, "gunicorn_workers": args.workers,
                   "service_code": SERVICE, "database": DB_NAME, "spec": str(SPEC.relative_to(ROOT))},
        "phases": phases,
        "import_vs_ogr2ogr": round(phases["commit"]["wall_s"] / phases["ogr2ogr"]["wall_s"], 2),
        "targets": {"p99_ms": TARGET_P99_MS, "max_ms": TARGET_MAX_MS,
                    "met": all(p["p99_ms"] <= TARGET_P99_MS and p["max_ms"] <= TARGET_MAX_MS for p in during)},
    }


def table(result):
    lines = ["| while | load s | POSTs | 201 | p50 ms | p99 ms | max ms | longest lock wait (any backend) | "
             "ACCESS EXCLUSIVE on facilities_facility seen for |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |"]
    for key, p in result["phases"].items():
        w = p["locks"]["longest_wait"]
        wait = (f"{w['s']} s for {w['mode']} on {w['relation']} (blocker: {w.get('blocker_holds')})"
                if w["s"] else "none seen")
        load_s = p.get("wall_s", "")
        exclusive = p["locks"]["strong_locks_on_facilities_facility_s"].get("AccessExclusiveLock")
        lines.append(f"| {p['phase']} | {load_s} | {p['sent']} | {p['answered_201']} | {p['p50_ms']} | "
                     f"{p['p99_ms']} | {p['max_ms']} | {wait} | {f'{exclusive} s' if exclusive else 'never'} |")
    t = result["targets"]
    lines.append(f"| target during the imports | | | | | <= {t['p99_ms']} | <= {t['max_ms']} | "
                 f"{'met' if t['met'] else 'NOT met'} | |")
    return "\n".join(lines)


def write_readme(result):
    m, c, ph = result["machine"], result["config"], result["phases"]
    after, again = ph["commit"]["after_commit"], ph["recommit"]["after_commit"]
    busy = m["load_average_1m_before"]
    section = "\n".join([
        MARK_START,
        "## Intake during an import",
        "",
        f"`bench/intake_during_import_bench.py`, {result['finished']}, code at {result['source'].get('commit')}. "
        f"{m['nproc']} cores ({m['cpu']}, {m['ram_gb']} GiB); gunicorn with {c['gunicorn_workers']} sync workers, "
        f"PostgreSQL and the client on the same machine. A client process sends {c['rate_per_s']:g} "
        f"`POST /open311/v2/requests.json` a second (service `{c['service_code']}`: the nearest streetlight within "
        "30 m decides, so every POST reads the facilities), open-loop: latency is from each request's scheduled "
        "time to its answer. The file: import_bench.py's synthetic GeoPackage of "
        f"{c['features']:,} points in Moscow; spec `{c['spec']}` (owner: the authority with jurisdiction over the "
        "covering district), a dataset new to the database. Each row's figures are of the POSTs scheduled while "
        "that load ran. Load average (1 min) before the run: " + f"{busy}"
        + (" — **the machine was shared with other work** (other developers' test suites), which slows every "
           "figure here." if busy > 0.5 else "."),
        "",
        table(result),
        "",
        f"Our import beside ogr2ogr on the same file, both under the same POST load: "
        f"{ph['commit']['wall_s']} s vs {ph['ogr2ogr']['wall_s']} s, **{result['import_vs_ogr2ogr']}x** (ours also "
        "validates every row and finds each one's owner by district). After the commit, "
        f"{after['routed_by_a_new_facility']} of the {after['posts']} POSTs sent more than 1 s after it were "
        "decided by a facility of the new dataset (the rest had no streetlight within 30 m): the new registry is "
        f"used at once; after the next version's commit, {again['routed_by_a_new_facility']} of "
        f"{again['posts']}. The exclusive-lock column is what the sampler (every 50 ms) saw held on "
        "facilities_facility, rounded up to its interval. Counts of the runs: dry run "
        + json.dumps(ph["dry_run"]["counts"]) + ", commit " + json.dumps(ph["commit"]["counts"]) + ", next version "
        + json.dumps(ph["recommit"]["counts"]) + ".",
        MARK_END,
    ])
    text = README.read_text(encoding="utf-8") if README.exists() else "# Benchmarks\n"
    start, end = text.find(MARK_START), text.find(MARK_END)
    if start != -1 and end != -1:
        text = text[:start] + section + text[end + len(MARK_END):]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    README.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
