#!/usr/bin/env python
"""Import benchmark: 1,000,000 synthetic Moscow facilities (a GeoPackage of points) loaded

  (b) by ogr2ogr (COPY, GiST index built), the floor a bulk loader can reach, and then the place search's GIN
      index built on its table (the floor for a generation that can be searched by name as well as routed to);
  (e) by our importer as a dry run, before anything is loaded (validates, stages and compares 1M new rows);
  (a) by our importer, committed (validation, upsert into the registry, indexes), shown twice: to its commit
      (routing uses the generation from then on) and to its end (the search index built after the commit);
  (d) by our importer again, same file, committed: nothing changed, so it must report no_change;
  (c) by Django's LayerMapping, on a 20,000-feature slice (one INSERT per feature; extrapolate with care).

Every run is a separate process so its wall time and peak RSS are its own (os.wait4 gives the child's
rusage). Our importer runs through `importers.core.run_import`, the function `manage.py import_dataset` wraps,
in a worker process of this script that also times the importer's stages (its Progress.step callbacks) and
its slow SQL statements.

Everything goes into a separate database (default geo_ourcity_bench), dropped and created again at the start,
migrated, and loaded with the Moscow authorities, okrugs and districts so the in-city check runs as in
production. The generated file is cached under var/bench/ (fixed seed), so a re-run reuses it.

    .venv/bin/python bench/import_bench.py                 # the full 1M run (a few minutes)
    .venv/bin/python bench/import_bench.py --n 100000      # a quick check
    .venv/bin/python bench/import_bench.py --repeat 3      # three rounds; the table shows the best of each
    .venv/bin/python bench/import_bench.py --profile       # also profile (a): pyinstrument, and where RSS peaks

Results: a table on stdout and bench/results/import.json.
"""
import argparse
import contextlib
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
CACHE_DIR = ROOT / "var" / "bench"
RESULTS_DIR = BENCH_DIR / "results"
README = BENCH_DIR / "README.md"
MARK_START, MARK_END = "<!-- import:start -->", "<!-- import:end -->"
SPEC = BENCH_DIR / "specs" / "bench_facilities.yaml"
PY = sys.executable

SEED = 20261123
# Bump when the generated data changes, so cached files of an older shape are not reused.
DATA_VERSION = 1
LAYER = "facilities"
OGR_TABLE = "bench_ogr2ogr"
LM_TABLE = "bench_layermapping"

# Targets from the issue.
TARGET_RATIO = 1.0  # fresh import wall time / ogr2ogr wall time
TARGET_RSS_MB = 1536  # peak RSS of any of our importer's runs

# The areas the in-city check and routing need, loaded in this order (okrugs name the city as the parent
# authority of their prefectures; districts point at okrugs).
AREA_LOADS = [
    ("data/moscow/city_authorities.csv", "data/specs/moscow_city_authorities.yaml"),
    ("data/moscow/ao.geojson", "data/specs/moscow_okrugs.yaml"),
    ("data/moscow/mo.geojson", "data/specs/moscow_districts.yaml"),
]

# Synthetic attribute values. The kind labels are the keys of the spec's type map.
KINDS = ["Фонарь", "Скамейка", "Урна", "Детская площадка", "Остановка", "Контейнерная площадка"]
KIND_WEIGHTS = [0.40, 0.20, 0.20, 0.08, 0.07, 0.05]
STREETS = [
    "ул. Тверская", "ул. Арбат", "Ленинский просп.", "Профсоюзная ул.", "ул. Вавилова", "Кутузовский просп.",
    "ул. Маросейка", "Садовая-Кудринская ул.", "Варшавское ш.", "Каширское ш.", "ул. Лесная", "ул. Новослободская",
    "Дмитровское ш.", "Ярославское ш.", "ул. Большая Ордынка", "Мичуринский просп.", "ул. Мосфильмовская",
    "Рязанский просп.", "ул. Первомайская", "Щёлковское ш.", "ул. Миклухо-Маклая", "Волгоградский просп.",
    "ул. Генерала Белова", "Зеленоград, корп.", "пос. Коммунарка, ул. Александры Монаховой", "г. Троицк, ул. Сиреневая",
]
N_OWNERS = 2_000


# ------------------------------------------------------------------------------------------------------------
# database settings and connections


def bench_db_config(db_name):
    """The bench database's connection settings: the project's own (embedded cluster or DATABASE_URL), with
    OURCITY_DB_NAME pointing at the bench database, exactly as the child processes will see it."""
    os.environ["OURCITY_DB_NAME"] = db_name
    sys.path.insert(0, str(ROOT))
    from geo_ourcity.env import database_config, libpq_dsn

    db = database_config()
    return db, libpq_dsn(db)


def pg_connect(db, dbname=None):
    """An autocommit psycopg2 connection, as a context manager that closes it (psycopg2's own `with conn`
    would open a transaction block)."""
    import psycopg2

    conn = psycopg2.connect(dbname=dbname or db["NAME"], user=db.get("USER") or None,
                            password=db.get("PASSWORD") or None, host=db.get("HOST") or None,
                            port=db.get("PORT") or None)
    conn.autocommit = True  # DROP/CREATE DATABASE and CHECKPOINT can not run in a transaction block
    return contextlib.closing(conn)


def child_env(db_name):
    env = dict(os.environ)
    env["OURCITY_DB_NAME"] = db_name
    # Import reports are kept per run number: a database of its own needs a folder of its own, or the bench's
    # run #1 would overwrite the main database's var/imports/run-1.
    env["OURCITY_IMPORTS_DIR"] = str(CACHE_DIR / f"imports-{db_name}")
    env.setdefault("DJANGO_SETTINGS_MODULE", "geo_ourcity.settings")
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


# ------------------------------------------------------------------------------------------------------------
# the data


def moscow_union():
    import numpy as np
    import pyogrio
    import shapely

    parts = []
    for name in ("mo.geojson", "ao.geojson"):
        meta, table = pyogrio.read_arrow(str(ROOT / "data" / "moscow" / name))
        wkb = table.column(meta["geometry_name"] or "wkb_geometry").to_numpy(zero_copy_only=False)
        parts.append(shapely.from_wkb(wkb))
    city = shapely.union_all(np.concatenate(parts))
    shapely.prepare(city)
    return city


def sample_points(n, rng):
    """n points uniformly inside Moscow: draw in the bounding box, keep those the city contains (about 36 %)."""
    import numpy as np
    import shapely

    city = moscow_union()
    minx, miny, maxx, maxy = city.bounds
    xs, ys, have = [], [], 0
    while have < n:
        m = int((n - have) / 0.33) + 1000
        # 6 decimals (about 0.1 m), as published data have; rounded before the test so every point is inside.
        x = np.round(rng.uniform(minx, maxx, m), 6)
        y = np.round(rng.uniform(miny, maxy, m), 6)
        keep = shapely.contains_xy(city, x, y)
        xs.append(x[keep])
        ys.append(y[keep])
        have += int(keep.sum())
    return np.concatenate(xs)[:n], np.concatenate(ys)[:n]


def generate(n, path):
    """Write n facilities to a GeoPackage with pyogrio's Arrow writer. Deterministic for a given n."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyogrio
    import shapely

    rng = np.random.default_rng(SEED)
    x, y = sample_points(n, rng)
    ids = np.arange(1, n + 1)
    kind_idx = rng.choice(len(KINDS), size=n, p=KIND_WEIGHTS)
    kinds = pa.array(KINDS).take(pa.array(kind_idx))
    street = pa.array(STREETS).take(pa.array(rng.integers(0, len(STREETS), n)))
    house = pa.array(rng.integers(1, 200, n)).cast(pa.string())
    inns = pa.array([str(7_700_000_000 + 3_571 * k) for k in range(N_OWNERS)])
    owner = inns.take(pa.array(rng.integers(0, N_OWNERS, n)))
    id_text = pa.array(ids).cast(pa.string())
    table = pa.table({
        "fid_key": pc.binary_join_element_wise("bench", pc.utf8_lpad(id_text, 7, "0"), "-"),
        "name": pc.binary_join_element_wise(kinds, id_text, " №"),
        "address": pc.binary_join_element_wise("Москва", street, pc.binary_join_element_wise("д.", house, " "), ", "),
        "kind": kinds,
        "owner_inn": owner,
        "geom": pa.array(shapely.to_wkb(shapely.points(x, y)), type=pa.binary()),
    })
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    tmp.unlink(missing_ok=True)
    pyogrio.write_arrow(table, str(tmp), layer=LAYER, driver=_driver(path), geometry_name="geom",
                        geometry_type="Point", crs="EPSG:4326")
    tmp.rename(path)  # only a complete file is ever found in the cache


def _driver(path):
    return {".gpkg": "GPKG", ".geojson": "GeoJSON"}[path.suffix]


def write_slice(source, count, path):
    """The first `count` features of the GeoPackage as GeoJSON, for LayerMapping (which fails on GPKG ids)."""
    import pyogrio

    meta, table = pyogrio.read_arrow(str(source), max_features=count)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    tmp.unlink(missing_ok=True)
    pyogrio.write_arrow(table, str(tmp), driver="GeoJSON", geometry_name=meta["geometry_name"],
                        geometry_type="Point", crs="EPSG:4326")
    tmp.rename(path)


def dataset_file(n):
    path = CACHE_DIR / f"facilities-{n}-seed{SEED}-v{DATA_VERSION}.gpkg"
    if path.exists():
        log(f"using the cached {path.relative_to(ROOT)}")
    else:
        log(f"generating {n:,} facilities in {path.relative_to(ROOT)} ...")
        t = time.perf_counter()
        # In a child process: a child's peak RSS counts its parent's (see run_timed), so this one stays small.
        subprocess.run([PY, str(Path(__file__)), "_worker_generate", str(n), str(path)], check=True)
        log(f"  done in {time.perf_counter() - t:.1f} s ({path.stat().st_size / 2**20:.0f} MB)")
    return path


def slice_file(source, count):
    path = source.with_name(f"{source.stem}-first{count}.geojson")
    if not path.exists():
        subprocess.run([PY, str(Path(__file__)), "_worker_slice", str(source), str(count), str(path)], check=True)
    return path


def warm_cache(path):
    """Read the file once so that every tool finds it in the page cache, whichever runs first."""
    with open(path, "rb") as fh:
        while fh.read(1 << 24):
            pass


# ------------------------------------------------------------------------------------------------------------
# timed child processes


def run_timed(cmd, env, label):
    """Run a command; return wall seconds, the child's peak RSS, its exit code and output.

    os.wait4 reports the rusage of exactly this child (RUSAGE_CHILDREN would be the maximum over all children
    so far). Linux counts into a child's ru_maxrss the high-water RSS of the process it was forked from, up to
    its exec: so this script never holds much memory itself, and reports its own peak as the floor of the
    column. The peak RSS is the client's: the PostgreSQL server's memory is not in it.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, so Popen must not wait again
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"{label} failed (exit {proc.returncode}):\n{stdout[-3000:]}\n{stderr[-3000:]}")
    return {"wall_s": wall, "peak_rss_mb": usage.ru_maxrss / 1024, "cpu_user_s": usage.ru_utime,
            "cpu_sys_s": usage.ru_stime, "stdout": stdout, "stderr": stderr}


def worker_result(stdout):
    """The JSON a worker prints as its last line."""
    return json.loads(stdout.strip().splitlines()[-1])


def checkpoint(db):
    # Each timed run starts without the previous run's dirty pages and WAL still to be written.
    with pg_connect(db) as conn, conn.cursor() as cur:
        cur.execute("CHECKPOINT")


def cpu_jiffies():
    """(busy, total) CPU time of the whole machine so far, from /proc/stat."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy_cores(seconds=1.0):
    """How many cores the machine kept busy over the next `seconds`."""
    b0, t0 = cpu_jiffies()
    time.sleep(seconds)
    b1, t1 = cpu_jiffies()
    return (b1 - b0) / max(t1 - t0, 1) * os.cpu_count()


def wait_for_idle(max_wait, threshold=0.25):
    """On a shared machine (others' tests, servers) wait until it is quiet before a timed run, at most
    `max_wait` seconds. Returns (seconds waited, busy cores when the run started)."""
    started = time.perf_counter()
    busy = busy_cores()
    while busy > threshold and time.perf_counter() - started < max_wait:
        busy = busy_cores()
    waited = time.perf_counter() - started
    if busy > threshold:
        log(f"  the machine is still busy ({busy:.1f} cores in use by others): timings will be slower")
    return round(waited, 1), round(busy, 2)


# ------------------------------------------------------------------------------------------------------------
# set-up of the bench database


def recreate_database(db, env):
    with pg_connect(db, "postgres") as conn, conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{db["NAME"]}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{db["NAME"]}"')
    with pg_connect(db) as conn, conn.cursor() as cur:
        cur.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    manage(env, "migrate", "--noinput", "-v", "0")
    for data, spec in AREA_LOADS:
        manage(env, "import_dataset", data, "--spec", spec, "--commit", "--quiet")


def manage(env, *args):
    result = subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def server_versions(db):
    with pg_connect(db) as conn, conn.cursor() as cur:
        cur.execute("SHOW server_version")
        pg = cur.fetchone()[0]
        cur.execute("SELECT postgis_lib_version(), postgis_geos_version(), postgis_proj_version()")
        postgis, geos, proj = cur.fetchone()
        settings = {}
        for name in ("shared_buffers", "work_mem", "maintenance_work_mem", "temp_buffers", "max_wal_size",
                     "wal_level", "synchronous_commit"):
            cur.execute(f"SHOW {name}")
            settings[name] = cur.fetchone()[0]
    return {"postgresql": pg, "postgis": postgis, "geos": geos, "proj": proj, "settings": settings}


def source_revision():
    """Which code was measured: BENCH_SOURCE_COMMIT when set (e.g. a commit exported with `git archive` to
    measure it while the checkout moves on), else the checkout's commit and whether the importer's code differs
    from it."""
    if os.environ.get("BENCH_SOURCE_COMMIT"):
        return {"commit": os.environ["BENCH_SOURCE_COMMIT"]}
    git = lambda *a: subprocess.run(["git", "-C", str(ROOT), *a], capture_output=True, text=True)  # noqa: E731
    top = git("rev-parse", "--show-toplevel").stdout.strip()
    if not top or Path(top).resolve() != ROOT:  # not a checkout of its own (maybe inside another one)
        return {"commit": "unknown (not a git checkout; set BENCH_SOURCE_COMMIT)"}
    dirty = git("status", "--porcelain", "--", "importers", "facilities", "geo_ourcity").stdout.split("\n")
    return {"commit": git("rev-parse", "HEAD").stdout.strip(),
            "uncommitted_changes": sorted(line[3:] for line in dirty if line)}


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    gdal = subprocess.run(["ogr2ogr", "--version"], capture_output=True, text=True).stdout.strip()
    return {"nproc": os.cpu_count(), "cpu": cpu, "ram_gb": round(mem_kb / 2**20, 1),
            "python": platform.python_version(), "ogr2ogr": gdal, "kernel": platform.release()}


# ------------------------------------------------------------------------------------------------------------
# the runs


def run_ogr2ogr(path, dsn, env, n):
    cmd = ["ogr2ogr", "--config", "PG_USE_COPY", "YES", "-f", "PostgreSQL", f"PG:{dsn}", str(path), LAYER,
           "-nln", OGR_TABLE, "-lco", "GEOMETRY_NAME=geom", "-lco", "FID=id", "-overwrite"]
    r = run_timed(cmd, env, "ogr2ogr")
    return {"tool": "ogr2ogr", "run": "COPY + GiST index", "features": n, **_public(r)}


def run_ogr2ogr_search_index(db, ogr, n):
    """The floor for a generation the place search can read: ogr2ogr's run, then the same GIN index as ours
    (facilities.search, GENERATION_INDEX_SQL) built on its table, timed here as one statement."""
    with pg_connect(db) as conn, conn.cursor() as cur:
        t = time.perf_counter()
        cur.execute(f"CREATE INDEX {OGR_TABLE}_search ON {OGR_TABLE} "
                    "USING gin (facilities_search_key(name || ' ' || address))")
        gin_s = time.perf_counter() - t
    return {**ogr, "run": "COPY + GiST index, then the search's GIN index", "features": n,
            "wall_s": round(ogr["wall_s"] + gin_s, 2), "gin_index_s": round(gin_s, 2)}


SEARCHABLE_STAGE = "making the new generation searchable"


def committed_part(run):
    """Our import to its commit: the whole run less the stages after it (the search index and vocabulary, and
    the re-route of a database without complaints), so routing's view of the new generation."""
    names = [st["stage"] for st in run["stages"]]
    after = sum(st["s"] for st in run["stages"][names.index(SEARCHABLE_STAGE):]) if SEARCHABLE_STAGE in names else 0
    return {**run, "run": "fresh import --commit, to its commit", "wall_s": round(run["wall_s"] - after, 2),
            "after_commit_s": round(after, 2)}


def run_ours(path, env, n, *, commit, label, profile=None):
    cmd = [PY, str(Path(__file__)), "_worker_ours", str(path), str(SPEC)]
    if commit:
        cmd.append("--commit")
    if profile:
        cmd += ["--profile", str(profile)]
    r = run_timed(cmd, env, f"our importer ({label})")
    detail = worker_result(r["stdout"])
    return {"tool": "ours", "run": label, "features": n, **_public(r), **detail}


def run_layermapping(path, env, n):
    r = run_timed([PY, str(Path(__file__)), "_worker_layermapping", str(path)], env, "LayerMapping")
    detail = worker_result(r["stdout"])
    if detail["rows"] != n:
        raise SystemExit(f"LayerMapping loaded {detail['rows']} rows of {n}")
    return {"tool": "LayerMapping", "run": f"{n:,}-feature slice, one INSERT each", "features": n,
            **_public(r), **detail}


def _public(r):
    return {"wall_s": round(r["wall_s"], 2), "peak_rss_mb": round(r["peak_rss_mb"], 1),
            "cpu_user_s": round(r["cpu_user_s"], 2), "cpu_sys_s": round(r["cpu_sys_s"], 2)}


def check_counts(run, expect_status, **expect):
    """A benchmark of an import that did the wrong thing measures nothing: stop if the counts are off."""
    counts = run["counts"]
    wrong = {k: (counts.get(k), v) for k, v in expect.items() if counts.get(k) != v}
    if run["status"] != expect_status or wrong:
        raise SystemExit(f"our importer ({run['run']}) gave status {run['status']}, counts {counts}; expected "
                         f"{expect_status} with {expect}")


# ------------------------------------------------------------------------------------------------------------
# workers (run as child processes of this script)


def _django_setup():
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "geo_ourcity.settings")
    import django

    django.setup()


def worker_ours(argv):
    """run_import with a Progress that timestamps every stage, and a wrapper that times every SQL statement."""
    parser = argparse.ArgumentParser(prog="import_bench.py _worker_ours")
    parser.add_argument("file")
    parser.add_argument("spec")
    parser.add_argument("--commit", action="store_true")
    parser.add_argument("--profile", help="write a pyinstrument text profile here")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    _django_setup()
    from django.db import connection, transaction

    from importers.core import Progress, run_import

    class StageTimer(Progress):
        """Marks (stage name, time, RSS now) whenever the importer names its next stage."""

        def __init__(self):
            self.marks = []
            self.mark("setup (spec, file sha256, run record)")
            self.hooked = False

        def mark(self, name):
            self.marks.append((name, time.perf_counter(), rss_mb()))

        def step(self, name):
            self.mark(name)
            if name == "staging" and not self.hooked:
                # From "staging" on, the steps run inside the import's transaction: mark when it commits.
                transaction.on_commit(lambda: self.mark("after COMMIT: report files, run record"))
                self.hooked = True

    statements = []  # (start, seconds, sql)

    def time_sql(execute, sql, params, many, context):
        t = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            statements.append((t, time.perf_counter() - t, " ".join(sql.split())[:110]))

    timer = StageTimer()
    profiler = sampler = None
    if args.profile:
        from pyinstrument import Profiler  # a developer tool, deliberately not in requirements.txt

        profiler = Profiler(interval=0.005)
        profiler.start()
        sampler = PeakSampler()
    setup_s = time.perf_counter() - started
    with connection.execute_wrapper(time_sql):
        result = run_import(args.file, args.spec, commit=args.commit, progress=timer)
    timer.mark("end")
    if profiler:
        profiler.stop()
        sampler.stop()
        Path(args.profile).write_text(profiler.output_text(unicode=True, color=False, show_all=False)
                                      + "\n" + sampler.report())
    # A stage lasts from its mark to the next one; "end" only closes the last stage. The stage that runs into
    # the COMMIT includes it; a dry run's last stage includes the rollback and the report.
    # rss_mb_at_end is the process's RSS when the stage ended (the peak inside a stage is not sampled).
    stages = [{"stage": name, "s": round(timer.marks[i + 1][1] - t, 3), "rss_mb_at_end": timer.marks[i + 1][2]}
              for i, (name, t, _) in enumerate(timer.marks[:-1])]
    slow = sorted(statements, key=lambda st: -st[1])[:12]
    # A DETACH PARTITION without CONCURRENTLY holds an ACCESS EXCLUSIVE lock on facilities_facility from that
    # statement to the COMMIT: for this long every query on facilities waits.
    detach = next((t for t, _, sql in statements if "DETACH PARTITION" in sql), None)
    committed = next((t for name, t, _ in timer.marks if name.startswith("after COMMIT")), None)
    print(json.dumps({
        "status": result.run.status, "counts": result.counts, "django_startup_s": round(setup_s, 2),
        "stages": stages, "slow_sql": [{"s": round(d, 3), "sql": sql} for _, d, sql in slow if d >= 0.05],
        "facilities_locked_s": round(committed - detach, 3) if detach and committed else None,
        "vmhwm_mb": vmhwm_mb(),
    }, ensure_ascii=False))


class PeakSampler:
    """Samples the process's RSS every 20 ms in a thread and keeps the main thread's stack at the highest.

    A hint, not a measurement: the allocator keeps freed memory for a while, so the highest sample can come
    a little after the allocation that caused it."""

    def __init__(self):
        import threading
        import traceback

        self._traceback = traceback
        self.main = threading.main_thread().ident
        self.peak, self.stack = 0.0, []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.done.wait(0.02):
            rss = rss_mb()
            if rss > self.peak:
                frame = sys._current_frames().get(self.main)
                self.peak = rss
                # The project's own frames (where in the importer), then the innermost library frame.
                frames = self._traceback.extract_stack(frame) if frame else []
                own = [f for f in frames if f.filename.startswith(str(ROOT)) and "/.venv/" not in f.filename]
                self.stack = self._traceback.format_list(own + frames[-1:])

    def stop(self):
        self.done.set()
        self.thread.join()

    def report(self):
        return (f"Peak RSS sampled: {self.peak:.0f} MB, main thread at (a hint: see PeakSampler):\n"
                + "".join(self.stack))


def worker_layermapping(argv):
    """LayerMapping into a plain table (created here) through an unmanaged model declared after setup."""
    path = argv[0]
    _django_setup()
    from django.contrib.gis.db import models
    from django.contrib.gis.utils import LayerMapping
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(f"DROP TABLE IF EXISTS {LM_TABLE}")
        cur.execute(f"""CREATE TABLE {LM_TABLE} (id bigserial PRIMARY KEY, fid_key varchar(200) NOT NULL,
                        name varchar(500) NOT NULL, address varchar(500) NOT NULL, kind varchar(100) NOT NULL,
                        owner_inn varchar(12) NOT NULL, geom geometry(Point, 4326) NOT NULL)""")
        # The index a GeoDjango PointField gets (spatial_index=True), present while rows go in.
        cur.execute(f"CREATE INDEX {LM_TABLE}_geom ON {LM_TABLE} USING gist (geom)")

    class BenchPoint(models.Model):
        fid_key = models.CharField(max_length=200)
        name = models.CharField(max_length=500)
        address = models.CharField(max_length=500)
        kind = models.CharField(max_length=100)
        owner_inn = models.CharField(max_length=12)
        geom = models.PointField(srid=4326)

        class Meta:
            app_label = "bench"
            managed = False
            db_table = LM_TABLE

    mapping = {"fid_key": "fid_key", "name": "name", "address": "address", "kind": "kind",
               "owner_inn": "owner_inn", "geom": "POINT"}
    started = time.perf_counter()
    # transform=False: the file is already in the model's SRID, as it is for ogr2ogr and our importer.
    LayerMapping(BenchPoint, path, mapping, transform=False).save(strict=True, silent=True)
    seconds = time.perf_counter() - started
    print(json.dumps({"rows": BenchPoint.objects.count(), "in_process_s": round(seconds, 2), "vmhwm_mb": vmhwm_mb()}))


def _proc_status_mb(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


def vmhwm_mb():
    """This process's own peak RSS since its exec (a cross-check of the figure os.wait4 gives the parent)."""
    return _proc_status_mb("VmHWM")


def rss_mb():
    return _proc_status_mb("VmRSS")


# ------------------------------------------------------------------------------------------------------------
# report


def log(text):
    print(text, file=sys.stderr, flush=True)


def add_rates(runs):
    ogr = next(r for r in runs if r["tool"] == "ogr2ogr")
    ogr_per_feature = ogr["wall_s"] / ogr["features"]
    searchable = next((r for r in runs if r["tool"] == "ogr2ogr" and "gin_index_s" in r), None)
    for r in runs:
        if searchable and r["run"] == "fresh import --commit":  # to its end: searchable, as that floor is
            r["ratio_vs_ogr2ogr_searchable"] = round(r["wall_s"] / searchable["wall_s"], 2)
        r["features_per_s"] = round(r["features"] / r["wall_s"])
        # Wall time per feature relative to ogr2ogr's: for the full-size runs this is the plain wall-time ratio.
        r["ratio_vs_ogr2ogr"] = round(r["wall_s"] / r["features"] / ogr_per_feature, 2)
        if "wall_s_median" in r:
            r["ratio_vs_ogr2ogr_medians"] = round(
                r["wall_s_median"] / r["features"] / (ogr["wall_s_median"] / ogr["features"]), 2)


def targets(runs):
    by = {r["run"]: r for r in runs if r["tool"] == "ours"}
    fresh, nochange = by["fresh import --commit"], by["no-change re-import --commit"]
    routable = by["fresh import --commit, to its commit"]
    ours_rss = max(r["peak_rss_mb"] for r in by.values())
    return [
        {"target": f"fresh import to its commit (routable) <= {TARGET_RATIO:g} x ogr2ogr",
         "value": routable["ratio_vs_ogr2ogr"], "met": routable["ratio_vs_ogr2ogr"] <= TARGET_RATIO},
        {"target": f"fresh import to its end (searchable too) <= {TARGET_RATIO:g} x ogr2ogr then the same GIN index",
         "value": fresh["ratio_vs_ogr2ogr_searchable"], "met": fresh["ratio_vs_ogr2ogr_searchable"] <= TARGET_RATIO},
        {"target": "no-change re-import faster than the fresh import",
         "value": f"{nochange['wall_s']:.2f} s vs {fresh['wall_s']:.2f} s", "met": nochange["wall_s"] < fresh["wall_s"]},
        {"target": "no-change re-import faster than ogr2ogr", "value": nochange["ratio_vs_ogr2ogr"],
         "met": nochange["ratio_vs_ogr2ogr"] < 1.0},
        {"target": f"peak RSS of our importer < {TARGET_RSS_MB} MB", "value": f"{ours_rss:.0f} MB",
         "met": ours_rss < TARGET_RSS_MB},
    ]


def table(runs):
    head = ["tool", "run", "features", "wall s", "features/s", "peak RSS MB", "vs ogr2ogr"]
    rows = [[r["tool"], r["run"], f"{r['features']:,}", f"{r['wall_s']:.2f}", f"{r['features_per_s']:,}",
             f"{r['peak_rss_mb']:.0f}", f"{r['ratio_vs_ogr2ogr']:.2f}"] for r in runs]
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(head), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def stage_table(run):
    lines = [f"{run['tool']} / {run['run']}: seconds per stage, RSS (MB) at its end"]
    lines += [f"  {s['s']:8.2f}  {s['rss_mb_at_end']:6.0f}  {s['stage']}" for s in run["stages"]]
    return "\n".join(lines)


def write_readme(result):
    """Replace this benchmark's section of bench/README.md (between its markers), leaving the others alone."""
    m, srv, runs = result["machine"], result["server"], result["runs"]
    by = {r["run"]: r for r in runs if r["tool"] == "ours"}
    fresh = by["fresh import --commit"]
    busy = [r for r in runs if r.get("machine_busy_cores_before", 0) > 0.25]
    stages = ", ".join(f"{s['stage']} {s['s']:.1f}" for s in fresh["stages"])
    section = "\n".join([
        MARK_START,
        f"## Import ({result['n']:,} points)",
        "",
        f"`bench/import_bench.py`, {result['date']}, importer at commit {result['source']['commit']}"
        + (f" with uncommitted changes to {', '.join(result['source']['uncommitted_changes'])}"
           if result["source"].get("uncommitted_changes") else "") + ". "
        f"{m['nproc']} cores ({m['cpu']}), {m['ram_gb']} GiB RAM, Linux {m['kernel']}; PostgreSQL "
        f"{srv['postgresql']}, PostGIS {srv['postgis']} (GEOS {srv['geos']}, PROJ {srv['proj']}) on the same "
        f"machine (shared_buffers {srv['settings']['shared_buffers']}, work_mem {srv['settings']['work_mem']}, "
        f"maintenance_work_mem {srv['settings']['maintenance_work_mem']}, wal_level "
        f"{srv['settings']['wal_level']}); ogr2ogr from {m['ogr2ogr'].split(',')[0]}; Python {m['python']}. "
        f"The file: a GeoPackage of {result['n']:,} random points inside Moscow's districts "
        f"({result['file']['mb']:.0f} MB, seed {result['seed']}), fields fid_key, name, address, kind, owner_inn. "
        f"Each tool runs as a process of its own after a CHECKPOINT; best of {result['repeat']} rounds, each "
        "on a benchmark database created anew (migrated, Moscow authorities, okrugs and districts loaded).",
        "",
        table(runs),
        "",
        "Targets (issue): " + "; ".join(f"{g['target']}: {g['value']} ({'met' if g['met'] else 'NOT met'})"
                                        for g in result["targets"]) + ".",
        "",
        f"Our fresh import, seconds per stage: {stages}.",
        "",
        "Peak RSS is the client process's (the PostgreSQL server's memory is not in it). Our importer's runs go "
        "through `importers.core.run_import` (what `manage.py import_dataset` calls); their wall time includes "
        f"starting Python and Django (about {fresh['django_startup_s']:.1f} s). LayerMapping loads a slice; its "
        "'vs ogr2ogr' compares time per feature. The second ogr2ogr row adds to ogr2ogr's run the place search's "
        "GIN index built on its table (the same expression as ours); our fresh import's row \"to its commit\" is its "
        "run less the stages after the commit (the generation's search index and vocabulary, then the re-route): "
        "routing reads the generation from the commit, the place search from the end. Every round's times are in "
        "bench/results/import.json."
        + (f" The machine was shared: {len(busy)} of the runs shown started while other processes kept "
           "CPUs busy, so their times are pessimistic." if busy else ""),
        MARK_END,
    ])
    text = README.read_text(encoding="utf-8") if README.exists() else "# Benchmarks\n\n`make bench` runs them all.\n"
    start, end = text.find(MARK_START), text.find(MARK_END)
    if start != -1 and end != -1:
        text = text[:start] + section + text[end + len(MARK_END):]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    README.write_text(text, encoding="utf-8")


# ------------------------------------------------------------------------------------------------------------


def one_round(data, lm_file, n, lm_n, db, dsn, env, profile, idle_wait):
    """Every run once, in an order that needs no clean-up between them, on a freshly created database."""
    runs = []
    plan = [
        lambda: run_ogr2ogr(data, dsn, env, n),
        lambda: run_ogr2ogr_search_index(db, runs[-1], n),
        lambda: run_ours(data, env, n, commit=False, label="dry run (nothing loaded yet)"),
        lambda: run_ours(data, env, n, commit=True, label="fresh import --commit", profile=profile),
        lambda: committed_part(runs[-1]),
        lambda: run_ours(data, env, n, commit=True, label="no-change re-import --commit"),
    ]
    if lm_file:
        plan.append(lambda: run_layermapping(lm_file, env, lm_n))
    for fn in plan:
        if fn is plan[4]:  # committed_part: a part of the run before it, not a run of its own
            runs.append(fn())
            continue
        checkpoint(db)
        waited, busy_before = wait_for_idle(idle_wait)
        b0, t0 = cpu_jiffies()
        run = fn()
        b1, t1 = cpu_jiffies()
        # Cores the whole machine kept busy during the run (ours, the server's, and anybody else's).
        run.update(machine_busy_cores_before=busy_before, waited_for_idle_s=waited,
                   machine_busy_cores_during=round((b1 - b0) / max(t1 - t0, 1) * os.cpu_count(), 2))
        log(f"  {run['tool']}, {run['run']}: {run['wall_s']:.2f} s, peak RSS {run['peak_rss_mb']:.0f} MB")
        runs.append(run)
    ours = {r["run"]: r for r in runs if r["tool"] == "ours"}
    check_counts(ours["dry run (nothing loaded yet)"], "dry_run", created=n, rejected=0)
    check_counts(ours["fresh import --commit"], "committed", created=n, rejected=0)
    check_counts(ours["no-change re-import --commit"], "no_change", unchanged=n, created=0, updated=0,
                 retired=0, rejected=0)
    return runs


def summarise(rounds):
    """Per run, its fastest round (with that round's stages): on a machine that others share, interference
    only ever adds time, so the best of N rounds is the estimate least disturbed by it. Every round's wall
    time stays in the results, and the peak RSS is the largest of all rounds."""
    out = []
    for samples in zip(*rounds):
        walls = [r["wall_s"] for r in samples]
        run = dict(min(samples, key=lambda r: r["wall_s"]))
        run["wall_s_rounds"] = walls
        run["wall_s_median"] = sorted(walls)[(len(walls) - 1) // 2]
        run["peak_rss_mb"] = max(r["peak_rss_mb"] for r in samples)
        out.append(run)
    return out


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_worker_ours":
        return worker_ours(argv[1:])
    if argv and argv[0] == "_worker_layermapping":
        return worker_layermapping(argv[1:])
    if argv and argv[0] == "_worker_generate":
        return generate(int(argv[1]), Path(argv[2]))
    if argv and argv[0] == "_worker_slice":
        return write_slice(Path(argv[1]), int(argv[2]), Path(argv[3]))
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1_000_000, help="facilities to generate and import (1,000,000)")
    parser.add_argument("--layermapping-n", type=int, default=20_000, help="size of LayerMapping's slice (20,000)")
    parser.add_argument("--skip-layermapping", action="store_true")
    parser.add_argument("--db", default="geo_ourcity_bench", help="the benchmark database, dropped and created anew")
    parser.add_argument("--profile", action="store_true",
                        help="profile the fresh import with pyinstrument (pip install it into .venv first); "
                             "its wall time then includes the profiler's overhead")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds, each on a database created anew; the table shows each run's fastest round")
    parser.add_argument("--idle-wait", type=float, default=120,
                        help="before each run, wait up to this many seconds for other processes to leave the "
                             "CPUs idle (0: do not wait)")
    parser.add_argument("--out", default=str(RESULTS_DIR / "import.json"))
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--no-readme", action="store_true",
                        help="do not update bench/README.md (it is updated only by full-size, unprofiled runs)")
    args = parser.parse_args(argv)
    if min(args.n, args.layermapping_n, args.repeat) < 1:
        parser.error("--n, --layermapping-n and --repeat must be positive")
    # The bench database is dropped: never let that be the project's own.
    sys.path.insert(0, str(ROOT))
    from geo_ourcity.env import database_config

    if "bench" not in args.db or args.db == database_config()["NAME"]:
        parser.error(f"--db {args.db}: the benchmark drops this database; use a name with 'bench' in it that "
                     "is not the project's database")

    started = datetime.datetime.now().astimezone()
    source = source_revision()
    data = dataset_file(args.n)
    lm_n = min(args.layermapping_n, args.n)
    lm_file = None if args.skip_layermapping else slice_file(data, lm_n)

    warm_cache(data)
    db, dsn = bench_db_config(args.db)
    env = child_env(args.db)
    rounds, setup_s = [], []
    for k in range(args.repeat):
        log(f"round {k + 1} of {args.repeat}: creating the database {args.db} "
            "(migrate, load Moscow authorities, okrugs, districts) ...")
        t = time.perf_counter()
        recreate_database(db, env)
        setup_s.append(round(time.perf_counter() - t, 1))
        profile = CACHE_DIR / f"profile-fresh-{args.n}.txt" if args.profile and k == 0 else None
        rounds.append(one_round(data, lm_file, args.n, lm_n, db, dsn, env, profile, args.idle_wait))
    if source_revision() != source:
        # Someone committed or edited the importer while it was being measured: say so, loudly.
        source["changed_during_the_run"] = source_revision()
        log(f"WARNING: the importer's code changed during the run: {source}")
    runs = summarise(rounds)
    add_rates(runs)
    goals = targets(runs)

    result = {
        "benchmark": "import", "date": started.isoformat(timespec="seconds"), "n": args.n, "seed": SEED,
        "file": {"path": str(data.relative_to(ROOT)), "mb": round(data.stat().st_size / 2**20, 1)},
        "source": source, "machine": machine(), "server": server_versions(db), "database": args.db,
        "setup_s": setup_s, "repeat": args.repeat, "profiled": args.profile, "runs": runs, "targets": goals,
        # The floor of every peak RSS figure (see run_timed).
        "launcher_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")

    print(table(runs))
    print()
    for run in runs:
        if run["tool"] == "ours" and "after_commit_s" not in run:  # not the part "to its commit" again
            print(stage_table(run))
    print()
    for g in goals:
        print(f"{'met ' if g['met'] else 'MISSED'}  {g['target']}  ({g['value']})")
    if args.profile:
        print(f"\nprofile of the fresh import: {CACHE_DIR / f'profile-fresh-{args.n}.txt'}")
    print(f"results: {out}")
    if args.n == 1_000_000 and not args.profile and not args.no_readme:
        write_readme(result)
        print(f"README section: {README}")
    if args.check and not all(g["met"] for g in goals):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
