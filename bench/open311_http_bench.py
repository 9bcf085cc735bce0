#!/usr/bin/env python
"""Open311 HTTP benchmark: POST /open311/v2/requests.json (validation, routing, storage, history) under gunicorn,
measured with wrk beside a floor endpoint in the same server (bench/open311_http/open311_floor.py: parse the
form, one raw routing statement, two inserts).

One run measures four things side by side: the POST and the floor, each straight to PostgreSQL ("direct") and
each through a pgbouncer in transaction mode (scripts/pgbouncer.sh, Debian 12's 1.18: no prepared statements
survive a transaction there, so the floor prepares nothing either). Two gunicorn servers run at once, one per
path, and the four are measured in turn at each client count, so a change of the machine's load hits all four.
Throughput at 32 concurrent clients (requests/s), latency at 4 clients (p50, p99), server CPU per request
(gunicorn workers, their PostgreSQL backends, pgbouncer), and the ratios. Against a database of its own with the
demo city (created and loaded on first use). Targets: direct >= 300 requests/s and p99 <= 30 ms; through
pgbouncer >= 0.8x the floor's throughput through the same pgbouncer. Writes bench/results/open311_http.json and
the "Open311 HTTP" section of bench/README.md.

    .venv/bin/python bench/open311_http_bench.py [--seconds 20] [--workers 4] [--service school-territory]
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

# A benchmark measures speed, not the abuse limits (issue 8): the servers it starts inherit limits it can not
# reach. Each limit can still be set from the environment.
for _limit in ("OURCITY_LIMIT_OPEN311_POSTS", "OURCITY_LIMIT_OPEN311_BAD_KEYS", "OURCITY_LIMIT_OPEN311_TOKEN_LOOKUPS",
               "OURCITY_LIMIT_WEB_REPORTS", "OURCITY_LIMIT_CODE_LOOKUPS"):
    os.environ.setdefault(_limit, "100000000/m")

ROOT = Path(__file__).resolve().parent.parent
HERE = ROOT / "bench" / "open311_http"
RESULTS = ROOT / "bench" / "results" / "open311_http.json"
README = ROOT / "bench" / "README.md"
DB_NAME = os.environ.get("OURCITY_BENCH_OPEN311_DB", "geo_ourcity_bench_open311")
TARGET_RPS, TARGET_P99_MS = 300, 30  # direct (issue 3)
TARGET_POOLED_RATIO = 0.8  # through pgbouncer: the POST's throughput over the floor's through the same pgbouncer
SETUPS = ("direct", "pgbouncer")
ENDPOINTS = (("open311", "/open311/v2/requests.json"), ("floor", "/bench/floor"))

sys.path.insert(0, str(ROOT))
os.environ["OURCITY_DB_NAME"] = DB_NAME
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "geo_ourcity.settings")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--seconds", type=int, default=20, help="length of each measured wrk run")
    parser.add_argument("--warmup", type=int, default=5, help="seconds of load before each measured run")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn sync workers (per server)")
    parser.add_argument("--service", default="school-territory",
                        help="service_code to POST (default: a facility-rule service, the costliest routing)")
    args, _unknown = parser.parse_known_args()  # bench/run.py may pass options meant for other benchmarks

    load_before = os.getloadavg()  # other work on the machine skews every number: keep it with them
    wrk = ensure_wrk()
    ensure_database()
    body = bench_form(args.service)
    bouncer = start_pgbouncer()
    servers = {}
    try:
        servers["direct"] = start_gunicorn(free_port(), args.workers)
        servers["pgbouncer"] = start_gunicorn(free_port(), args.workers, bouncer)
        for server in servers.values():
            check(server.base, body)
        runs = {}
        for clients in (32, 4):
            for setup in SETUPS:
                for name, path in ENDPOINTS:
                    server = servers[setup]
                    run_wrk(wrk, server.base, path, body, clients, args.warmup)  # warm-up, not recorded
                    runs[f"{setup}:{name}_{clients}"] = r = run_wrk(
                        wrk, server.base, path, body, clients, args.seconds, server,
                        bouncer[0] if setup == "pgbouncer" else None)
                    print(f"{setup:9} {name:8} {clients:>2} clients: {r['rps']:7.1f} req/s  p50 {r['p50_ms']:6.2f} ms "
                          f" p99 {r['p99_ms']:6.2f} ms  non-2xx {r['non_2xx']}  errors {r['socket_errors']}  "
                          f"CPU/request: python {r['cpu_python_ms_per_request']} ms, postgres "
                          f"{r['cpu_postgres_ms_per_request']} ms, pgbouncer {r['cpu_pgbouncer_ms_per_request']} ms  "
                          f"load {r['load_average_1m']}", flush=True)
    finally:
        for server in servers.values():
            server.terminate()
            server.wait(timeout=30)
        subprocess.run([str(ROOT / "scripts" / "pgbouncer.sh"), "stop", str(bouncer[0])], check=True)
        shutil.rmtree(bouncer[0], ignore_errors=True)
    stored = stored_counts()
    result = summarise(args, runs, stored)
    result["machine"]["load_average_before"] = [round(v, 2) for v in load_before]
    result["machine"]["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    write_readme(result)
    print(table(result))
    print(f"results: {RESULTS.relative_to(ROOT)}")
    return 0 if all(r["non_2xx"] == 0 and r["socket_errors"] == 0 for r in runs.values()) else 1


def ensure_wrk():
    if not shutil.which("wrk"):
        subprocess.run(["scripts/system-deps.sh"], cwd=ROOT, env={**os.environ, "EXTRA_DEBS": "wrk"}, check=True)
    return shutil.which("wrk")


def ensure_database():
    """The benchmark database: created, migrated and loaded with the demo city once; emptied of complaints."""
    import psycopg2

    from geo_ourcity.env import database_config, libpq_dsn

    admin = psycopg2.connect(libpq_dsn({**database_config(), "NAME": "postgres"}))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME])
        if cur.fetchone() is None:
            print(f"creating database {DB_NAME}", flush=True)
            cur.execute(f'CREATE DATABASE "{DB_NAME}"')
    admin.close()

    import django
    from django.core.management import call_command
    from django.db import connection

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)
    print("loading the demo city (a second load changes nothing)", flush=True)
    call_command("load_demo", stdout=open(os.devnull, "w"))
    sys.path.insert(0, str(HERE))
    from open311_floor import TABLES

    with connection.cursor() as cur:
        cur.execute(TABLES)
        # Every run starts from the same state: no complaints, decisions or floor rows.
        cur.execute("TRUNCATE complaints_complaint, complaints_complaintevent, complaints_answer, complaints_photo, "
                    "routing_routingdecision, bench_floor_complaint, bench_floor_decision CASCADE")
        cur.execute("ANALYZE")


def bench_form(service_code):
    """The fixed part of the POST body: a key, the service, answers to its required attributes."""
    from open311.keys import api_key_issue
    from open311.models import ApiKey
    from routing.models import Category

    category = Category.objects.prefetch_related("attributes").get(code=service_code)
    ApiKey.objects.filter(name="open311-http-bench").delete()
    _key, raw = api_key_issue(name="open311-http-bench")
    fields = {"api_key": raw, "service_code": category.code,
              "description": "Открытый люк у входа, рядом детская площадка", "email": "bench@example.org"}
    for attribute in category.attributes.all():
        if attribute.required and attribute.values:
            suffix = "[]" if attribute.datatype == "multivaluelist" else ""
            fields[f"attribute[{attribute.code}]{suffix}"] = attribute.values[0]["key"]
        elif attribute.required:
            fields[f"attribute[{attribute.code}]"] = {"number": "1", "datetime": "2026-11-20T10:00:00+03:00"}.get(
                attribute.datatype, "bench")
    return urlencode(fields)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_pgbouncer():
    """(its directory, its DATABASE_URL): a pgbouncer of this run's own in front of the embedded cluster."""
    directory = ROOT / "var" / f"bench-pgbouncer-{os.getpid()}"
    port = free_port()  # it names the unix socket only (no TCP)
    subprocess.run([str(ROOT / "scripts" / "pgbouncer.sh"), "start", str(directory), str(port)], check=True)
    return directory, f"postgres://postgres@:{port}/{DB_NAME}?host={directory / 'run'}"


def start_gunicorn(port, workers, bouncer=None):
    app_name = f"open311-bench-{'pgbouncer' if bouncer else 'direct'}-{os.getpid()}"
    # libpq's PGAPPNAME names each server's backends (pgbouncer passes it on), so each run counts its own
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "open311_bench_settings", "PGAPPNAME": app_name,
           "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)]), "OURCITY_DB_NAME": DB_NAME}
    if bouncer:
        env.update(DATABASE_URL=bouncer[1], OURCITY_DB_POOLED="1")
    command = [str(ROOT / ".venv" / "bin" / "gunicorn"), "geo_ourcity.wsgi:application", "--bind",
               f"127.0.0.1:{port}", "--workers", str(workers), "--worker-class", "sync", "--backlog", "2048",
               "--log-level", "warning"]
    server = subprocess.Popen(command, cwd=ROOT, env=env)
    server.base, server.app_name = f"http://127.0.0.1:{port}", app_name
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/open311/v2/discovery.json", timeout=10).read()
            return server
        except OSError:  # not listening yet, or a worker still starting
            if server.poll() is not None:
                raise SystemExit("gunicorn exited") from None
            time.sleep(0.5)
    server.terminate()
    raise SystemExit("gunicorn did not answer within 120 s")


def check(base, body):
    """One POST to each endpoint: both must answer 201 before anything is measured."""
    for path in ("/open311/v2/requests.json", "/bench/floor"):
        request = urllib.request.Request(base + path, data=f"{body}&lat=55.7539&long=37.6208".encode(),
                                         headers={"Content-Type": "application/x-www-form-urlencoded"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 201, (path, response.status)


def cpu_seconds(pids):
    """utime + stime of each process that still exists."""
    result = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        result[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return result


def server_processes(server):
    """gunicorn's workers and the PostgreSQL backends serving the benchmark database (not this process's)."""
    from django.db import connection

    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    with connection.cursor() as cur:
        cur.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name = %s "
                    "AND pid <> pg_backend_pid()", [DB_NAME, server.app_name])
        backends = [row[0] for row in cur.fetchall()]
    return [int(pid) for pid in children], backends


def bouncer_pids(directory):
    try:
        return [int((directory / "pgbouncer.pid").read_text().strip())]
    except (OSError, ValueError):
        return []


def run_wrk(wrk, base, path, body, clients, seconds, server=None, bouncer_dir=None):
    """One wrk run; with `server`, also the CPU the server side spent per request (Python, PostgreSQL and, through
    the pooler, pgbouncer), which other work on the machine changes less than requests/s."""
    pooler = bouncer_pids(bouncer_dir) if bouncer_dir else []
    before = cpu_seconds([p for group in server_processes(server) for p in group] + pooler) if server else {}
    env = {**os.environ, "WRK_PATH": path, "WRK_BODY": body}
    command = [wrk, "-t", "2", "-c", str(clients), "-d", f"{seconds}s", "--timeout", "10s",
               "-s", str(HERE / "post.lua"), base]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    raw = json.loads(next(line for line in out.splitlines() if line.startswith("{")))
    seconds_run = raw["duration_us"] / 1e6
    cpu = {}
    if server:
        workers, backends = server_processes(server)
        after = cpu_seconds(workers + backends + pooler)
        spent = {pid: after[pid] - before.get(pid, 0.0) for pid in after}
        for label, pids in (("python", workers), ("postgres", backends), ("pgbouncer", pooler)):
            cpu[f"cpu_{label}_ms_per_request"] = round(sum(spent.get(p, 0) for p in pids) / raw["requests"] * 1000, 2)
        total = sum(cpu[f"cpu_{label}_ms_per_request"] for label in ("python", "postgres", "pgbouncer"))
        # What the server side alone could do with all the machine's cores (wrk and other work excluded).
        cpu["cpu_bound_ceiling_rps"] = round(os.cpu_count() * 1000 / total) if total else None
    return {**cpu, "load_average_1m": round(os.getloadavg()[0], 2), "clients": clients, "seconds": round(seconds_run, 1), "requests": raw["requests"],
            "rps": round(raw["requests"] / seconds_run, 1), "p50_ms": raw["p50_us"] / 1000,
            "p90_ms": raw["p90_us"] / 1000, "p99_ms": raw["p99_us"] / 1000, "max_ms": raw["max_us"] / 1000,
            "non_2xx": raw["non_2xx"],
            "socket_errors": sum(raw[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts"))}


def stored_counts():
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT (SELECT count(*) FROM complaints_complaint), "
                    "(SELECT count(*) FROM complaints_complaintevent WHERE kind = 'routed'), "
                    "(SELECT count(*) FROM bench_floor_complaint)")
        complaints, routed, floor = cur.fetchone()
    return {"complaints": complaints, "routed_events": routed, "floor_rows": floor}


def machine():
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("[")[0].strip()
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_gib), "os": platform.platform(),
            "python": platform.python_version(), "wrk": wrk_version}


def summarise(args, runs, stored):
    def ratios(setup):
        o32, o4 = runs[f"{setup}:open311_32"], runs[f"{setup}:open311_4"]
        f32, f4 = runs[f"{setup}:floor_32"], runs[f"{setup}:floor_4"]
        return {"rps_ratio": round(o32["rps"] / f32["rps"], 2), "p99_ratio": round(o4["p99_ms"] / f4["p99_ms"], 2),
                "cpu_ratio": round(cpu_total(o32) / cpu_total(f32), 2)}

    direct32, direct4 = runs["direct:open311_32"], runs["direct:open311_4"]
    pooled = ratios("pgbouncer")
    return {
        "benchmark": "open311_http",
        "finished": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine(),
        "config": {"service_code": args.service, "gunicorn_workers": args.workers, "seconds": args.seconds,
                   "warmup_seconds": args.warmup, "database": DB_NAME, "wrk_threads": 2,
                   "pgbouncer": pgbouncer_version(), "pgbouncer_pool_mode": "transaction",
                   "pgbouncer_pool_size": int(os.environ.get("PGBOUNCER_POOL_SIZE", "4"))},
        "runs": runs,
        "stored": stored,
        "targets": {"rps_32_clients": TARGET_RPS, "p99_ms_4_clients": TARGET_P99_MS,
                    "pooled_rps_ratio": TARGET_POOLED_RATIO,
                    "rps_met": direct32["rps"] >= TARGET_RPS, "p99_met": direct4["p99_ms"] <= TARGET_P99_MS,
                    "pooled_ratio_met": pooled["rps_ratio"] >= TARGET_POOLED_RATIO},
        "vs_floor": {"direct": ratios("direct"), "pgbouncer": pooled},
    }


def cpu_total(run):
    return round(run["cpu_python_ms_per_request"] + run["cpu_postgres_ms_per_request"]
                 + run["cpu_pgbouncer_ms_per_request"], 2)


def pgbouncer_version():
    out = subprocess.run(["pgbouncer", "--version"], capture_output=True, text=True).stdout
    return out.splitlines()[0].strip() if out else None


LABELS = {"open311": "`POST /open311/v2/requests.json`", "floor": "floor"}


def table(result):
    runs, t, v = result["runs"], result["targets"], result["vs_floor"]
    lines = ["| path | endpoint | requests/s, 32 clients | p50 ms, 4 clients | p99 ms, 4 clients | server CPU "
             "ms/request (Python + PostgreSQL + pgbouncer) | CPU-bound ceiling, requests/s | load (1 min) |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for setup in SETUPS:
        for name, _path in ENDPOINTS:
            r32, r4 = runs[f"{setup}:{name}_32"], runs[f"{setup}:{name}_4"]
            lines.append(f"| {setup} | {LABELS[name]} | {r32['rps']:.0f} | {r4['p50_ms']:.1f} | {r4['p99_ms']:.1f} | "
                         f"{r32['cpu_python_ms_per_request']} + {r32['cpu_postgres_ms_per_request']} + "
                         f"{r32['cpu_pgbouncer_ms_per_request']} = {cpu_total(r32)} | {r32['cpu_bound_ceiling_rps']} | "
                         f"{r32['load_average_1m']} / {r4['load_average_1m']} |")
        lines.append(f"| {setup} | POST / floor | {v[setup]['rps_ratio']}x | | {v[setup]['p99_ratio']}x | "
                     f"{v[setup]['cpu_ratio']}x | | |")
    lines.append(f"| target | direct POST | >= {t['rps_32_clients']} ({'met' if t['rps_met'] else 'NOT met'}) | | "
                 f"<= {t['p99_ms_4_clients']} ({'met' if t['p99_met'] else 'NOT met'}) | | | |")
    lines.append(f"| target | through pgbouncer, POST / floor | >= {t['pooled_rps_ratio']}x "
                 f"({'met' if t['pooled_ratio_met'] else 'NOT met'}) | | | | | |")
    return "\n".join(lines)


def write_readme(result, marker="open311_http"):
    """Replace this benchmark's section of bench/README.md (between its markers), leaving the others alone."""
    m, c = result["machine"], result["config"]
    loaded = max(m["load_average_before"][0], *(r["load_average_1m"] for r in result["runs"].values())) > 0.5
    section = "\n".join([
        f"<!-- {marker}:start -->",
        "## Open311 HTTP: direct and through pgbouncer (transaction mode)",
        "",
        f"`bench/open311_http_bench.py`, {result['finished']}. Two gunicorn servers, {c['gunicorn_workers']} sync "
        f"workers each, one straight to PostgreSQL and one through {c['pgbouncer']} in transaction mode "
        f"({c['pgbouncer_pool_size']} server connections; no prepared statement survives a transaction there, and "
        f"the floor prepares nothing on that path either), on {m['cores']} cores ({m['cpu']}, {m['memory_gib']} "
        f"GiB), {m['os']}; PostgreSQL, pgbouncer and wrk ({m['wrk']}, 2 threads) on the same machine. "
        f"{c['seconds']} s per run after {c['warmup_seconds']} s of warm-up; at each client count the four runs "
        f"follow each other. Service `{c['service_code']}` (routed to the owner of the nearest facility of its types "
        "within its radius, else by its fallback rule), a random point in Moscow per request, demo city database. "
        f"Load average (1, 5, 15 min) before: {', '.join(map(str, m['load_average_before']))}; after: "
        f"{', '.join(map(str, m['load_average_after']))}"
        + (" (other work shared the cores: compare the ratios and the CPU per request)." if loaded else "."),
        "",
        table(result),
        "",
        "Server CPU per request is measured from /proc over the 32-client run (the server's gunicorn workers, its "
        "PostgreSQL backends, named by application_name, and pgbouncer; wrk excluded); the ceiling is what that CPU "
        "allows on all cores, other work aside. The load column is the 1-minute load average at the end of the "
        "32-client and the 4-client run. Stored after the run: "
        + ", ".join(f"{k} {v}" for k, v in result["stored"].items()) + ".",
        f"<!-- {marker}:end -->",
    ])
    text = (README.read_text(encoding="utf-8") if README.exists()
            else "# Benchmarks\n\n`make bench` runs them all.\n")
    start, end = text.find(f"<!-- {marker}:start -->"), text.find(f"<!-- {marker}:end -->")
    if start != -1 and end != -1:
        text = text[:start] + section + text[end + len(f"<!-- {marker}:end -->"):]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    README.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    # On SIGTERM (a timeout, Ctrl-C from make) still run the `finally` that stops gunicorn.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
