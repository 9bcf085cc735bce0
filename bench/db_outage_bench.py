#!/usr/bin/env python
"""PostgreSQL stopped for 5 s under a bounded POST load: what the clients were answered, and what was stored.

The benchmark starts a PostgreSQL + PostGIS cluster of its own (under var/bench-outage, never the tests' or the
demo's), loads the demo city into it, serves the project with gunicorn against it, and runs CLIENTS threads that
POST /open311/v2/requests.json back to back. After WARMUP seconds it stops the cluster (`pg_ctl stop -m fast`:
every connection is closed and the socket removed), keeps it stopped for OUTAGE seconds, starts it again, and goes
on for AFTER seconds. Nothing else is restarted.

Reported: the answers by status; how many 503s were in Open311's form (a JSON list of {code: 503, description})
with Retry-After; lost (answered 201, not in the database: must be 0); phantoms (answered anything else, yet
stored); half-written (a complaint without both history lines or its decision); seconds from the restart (the
cluster accepting connections again) to the first 201. Writes bench/results/db_outage.json and the "Database
outage" section of bench/README.md.

    .venv/bin/python bench/db_outage_bench.py [--clients 4] [--outage 5] [--mode fast|immediate]
"""
import argparse
import datetime
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from urllib.parse import urlencode

# A benchmark measures speed, not the abuse limits (issue 8): the servers it starts inherit limits it can not
# reach. Each limit can still be set from the environment.
for _limit in ("OURCITY_LIMIT_OPEN311_POSTS", "OURCITY_LIMIT_OPEN311_BAD_KEYS", "OURCITY_LIMIT_OPEN311_TOKEN_LOOKUPS",
               "OURCITY_LIMIT_WEB_REPORTS", "OURCITY_LIMIT_CODE_LOOKUPS"):
    os.environ.setdefault(_limit, "100000000/m")

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "db_outage.json"
README = ROOT / "bench" / "README.md"
CLUSTER = ROOT / "var" / "bench-outage"
PGBIN = Path("/usr/lib/postgresql/15/bin")
DB_NAME = "geo_ourcity_outage"
SERVICE = "yard-rubbish"
POINT = (37.6056, 55.7655)  # Tverskoy district

sys.path.insert(0, str(ROOT))


def as_owner(*command):
    """initdb/pg_ctl refuse root: as root, run them as the `postgres` user (as scripts/pg.sh does)."""
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run([*prefix, *map(str, command)], check=True, capture_output=True, text=True)


class Cluster:
    def __init__(self, path):
        self.path, self.data, self.run = path, path / "data", path / "run"
        self.log = path / "postgres.log"

    @property
    def url(self):
        return f"postgres://postgres@/{DB_NAME}?host={self.run}"

    def create(self):
        if (self.data / "PG_VERSION").exists():
            return
        self.path.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.path, "postgres", "postgres")
        as_owner("mkdir", "-p", self.run)
        print("initialising the benchmark's own PostgreSQL cluster in var/bench-outage", flush=True)
        as_owner(PGBIN / "initdb", "-D", self.data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                 "--locale=C.UTF-8")
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(f"listen_addresses = ''\nunix_socket_directories = '{self.run}'\nunix_socket_permissions = "
                       "0700\nport = 5432\nmax_connections = 50\nfsync = on\n")

    def start(self):
        as_owner(PGBIN / "pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60", "start")

    def stop(self, mode="fast"):
        as_owner(PGBIN / "pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "60", "stop")

    def running(self):
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return subprocess.run([*prefix, str(PGBIN / "pg_ctl"), "-D", str(self.data), "status"],
                              capture_output=True).returncode == 0

    def psql(self, sql, db="postgres"):
        return subprocess.run([str(PGBIN / "psql"), "-h", str(self.run), "-U", "postgres", "-d", db, "-qAt",
                               "-v", "ON_ERROR_STOP=1", "-c", sql], check=True, capture_output=True,
                              text=True).stdout.strip()


def prepare(cluster):
    cluster.create()
    if not cluster.running():
        cluster.start()
    if cluster.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}'") != "1":
        cluster.psql(f'CREATE DATABASE "{DB_NAME}"')
    cluster.psql("CREATE EXTENSION IF NOT EXISTS postgis", db=DB_NAME)
    env = {**os.environ, "DATABASE_URL": cluster.url}
    python = str(ROOT / ".venv" / "bin" / "python")
    subprocess.run([python, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    print("loading the demo city (a second load changes nothing)", flush=True)
    subprocess.run([python, "manage.py", "load_demo"], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    cluster.psql("TRUNCATE complaints_complaint, complaints_complaintevent, complaints_answer, complaints_photo, "
                 "routing_routingdecision CASCADE; DELETE FROM open311_apikey WHERE name = 'db-outage-bench'",
                 db=DB_NAME)
    key = subprocess.run([python, "manage.py", "create_api_key", "db-outage-bench"], cwd=ROOT, env=env,
                         check=True, capture_output=True, text=True).stdout.strip()
    return key


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(port, workers, cluster):
    env = {**os.environ, "DATABASE_URL": cluster.url, "DJANGO_SETTINGS_MODULE": "geo_ourcity.settings"}
    command = [str(ROOT / ".venv" / "bin" / "gunicorn"), "geo_ourcity.wsgi:application", "--bind",
               f"127.0.0.1:{port}", "--workers", str(workers), "--log-level", "error"]
    server = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/open311/v2/services.json", timeout=10).read()
            return server
        except OSError:
            if server.poll() is not None:
                raise SystemExit("gunicorn exited")
            time.sleep(0.5)
    server.terminate()
    raise SystemExit("gunicorn did not answer within 120 s")


def send(url, body=None, headers=None):
    request = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()
    except OSError as error:
        return None, {}, str(error).encode()


def open311_form(status, headers, body):
    """A 503 in Open311's form: JSON list of one {code: 503, description}, with Retry-After."""
    try:
        data = json.loads(body)
    except ValueError:
        return False
    return (status == 503 and headers.get("Retry-After", "").isdigit() and isinstance(data, list) and len(data) == 1
            and data[0].get("code") == 503 and bool(data[0].get("description")))


def load(base, key, stop, answers, lock, worker):
    seq = 0
    while not stop.is_set():
        seq += 1
        description = f"outage-bench {worker}-{seq}"
        body = urlencode({"api_key": key, "service_code": SERVICE, "lat": POINT[1], "long": POINT[0],
                          "description": description}).encode()
        sent = time.monotonic()
        status, headers, content = send(f"{base}/open311/v2/requests.json", body)
        done = time.monotonic()
        row = {"description": description, "sent": sent, "done": done, "status": status,
               "form": open311_form(status, headers, content) if status == 503 else None, "id": None,
               "html": content.lstrip()[:15].lower().startswith(b"<!doctype") if status and status >= 500 else None}
        if status == 201:
            row["id"] = json.loads(content)[0]["service_request_id"]
        with lock:
            answers.append(row)
        if status != 201:
            time.sleep(0.05)  # a client that backs off a little, as Retry-After asks


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--outage", type=float, default=5, help="seconds PostgreSQL stays stopped")
    parser.add_argument("--after", type=float, default=10)
    parser.add_argument("--mode", choices=["fast", "immediate"], default="fast", help="pg_ctl stop mode")
    args, _unknown = parser.parse_known_args()

    load_before = os.getloadavg()[0]
    cluster = Cluster(CLUSTER)
    key = prepare(cluster)
    port = free_port()
    server = start_gunicorn(port, args.workers, cluster)
    base = f"http://127.0.0.1:{port}"
    answers, lock, stop = [], threading.Lock(), threading.Event()
    threads = [threading.Thread(target=load, args=(base, key, stop, answers, lock, i), daemon=True)
               for i in range(args.clients)]
    probes = {}
    try:
        for thread in threads:
            thread.start()
        time.sleep(args.warmup)
        stop_began = time.monotonic()
        cluster.stop(args.mode)
        stopped_at = time.monotonic()
        print(f"PostgreSQL stopped ({args.mode}) in {stopped_at - stop_began:.2f} s", flush=True)
        time.sleep(0.5)
        # One of each other kind of answer while it is down: Open311 XML, a web page in English.
        status, headers, body = send(f"{base}/open311/v2/requests.xml")
        probes["open311_xml"] = {"status": status, "retry_after": headers.get("Retry-After"),
                                 "errors_root": body.startswith(b"<?xml") and b"<errors>" in body}
        status, headers, body = send(f"{base}/stats/", headers={"Accept-Language": "en"})
        probes["web_page_en"] = {"status": status, "retry_after": headers.get("Retry-After"),
                                 "english": b"Service temporarily unavailable" in body}
        time.sleep(max(0.0, args.outage - (time.monotonic() - stopped_at)))
        cluster.start()
        restarted_at = time.monotonic()
        print(f"PostgreSQL started again after {restarted_at - stopped_at:.2f} s stopped", flush=True)
        time.sleep(args.after)
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
        server.terminate()
        server.wait(timeout=30)
        if not cluster.running():
            cluster.start()

    result = summarise(args, cluster, answers, probes, stop_began, stopped_at, restarted_at, load_before)
    cluster.stop("fast")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    write_readme(result)
    print(table(result))
    print(f"results: {RESULTS.relative_to(ROOT)}")
    ok = result["lost"] == 0 and result["phantoms"] == 0 and result["half_written"] == 0 and \
        result["answers"]["503_not_in_open311_form"] == 0 and result["answers"]["5xx_html"] == 0
    return 0 if ok else 1


def summarise(args, cluster, answers, probes, stop_began, stopped_at, restarted_at, load_before):
    stored = {}
    rows = cluster.psql("SELECT c.id, c.description, (SELECT count(*) FROM complaints_complaintevent e "
                        "WHERE e.complaint_id = c.id), c.decision_id IS NOT NULL FROM complaints_complaint c "
                        "WHERE c.description LIKE 'outage-bench %'", db=DB_NAME)
    for line in filter(None, rows.splitlines()):
        pk, description, events, decided = line.split("|")
        stored[description] = (pk, int(events), decided == "t")
    answered = {a["description"]: a for a in answers}
    created = [a for a in answers if a["status"] == 201]
    statuses = Counter(str(a["status"]) for a in answers)
    during = [a for a in answers if a["done"] >= stop_began and a["sent"] <= restarted_at]
    first_success = min((a["done"] for a in created if a["sent"] >= restarted_at), default=None)
    return {
        "benchmark": "db_outage",
        "finished": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "load_average_1m_before": round(load_before, 2)},
        "config": {"clients": args.clients, "gunicorn_workers": args.workers, "warmup_s": args.warmup,
                   "outage_s": args.outage, "after_s": args.after, "stop_mode": args.mode,
                   "retry_after_backoff_s": 0.05},
        "stopped_for_s": round(restarted_at - stopped_at, 2),
        "answers": {"total": len(answers), "by_status": dict(statuses),
                    "during_outage": len(during),
                    "503": statuses.get("503", 0),
                    "503_in_open311_form": sum(1 for a in answers if a["status"] == 503 and a["form"]),
                    "503_not_in_open311_form": sum(1 for a in answers if a["status"] == 503 and not a["form"]),
                    "5xx_html": sum(1 for a in answers if a["html"]),
                    "no_answer": statuses.get("None", 0)},
        "lost": sum(1 for a in created if a["description"] not in stored),
        "phantoms": sum(1 for d in stored if answered.get(d, {}).get("status") != 201),
        "half_written": sum(1 for _pk, events, decided in stored.values() if events != 2 or not decided),
        "stored": len(stored),
        "seconds_to_first_success_after_restart": round(first_success - restarted_at, 3) if first_success else None,
        "probes_during_outage": probes,
    }


def table(result):
    a = result["answers"]
    probes = result["probes_during_outage"]
    return "\n".join([
        "| POSTs answered | 201 | 503 in Open311's form (+ Retry-After) | 503 not in it | HTML 5xx | no answer | "
        "lost (201, not stored) | stored but not 201 | half-written | s to first 201 after restart |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| {a['total']} | {a['by_status'].get('201', 0)} | {a['503_in_open311_form']} | "
        f"{a['503_not_in_open311_form']} | {a['5xx_html']} | {a['no_answer']} | {result['lost']} | "
        f"{result['phantoms']} | {result['half_written']} | {result['seconds_to_first_success_after_restart']} |",
        "",
        f"While it was down: `GET requests.xml` answered {probes['open311_xml']['status']} (errors list: "
        f"{probes['open311_xml']['errors_root']}, Retry-After {probes['open311_xml']['retry_after']}); `GET /stats/` "
        f"with Accept-Language en answered {probes['web_page_en']['status']} (English page: "
        f"{probes['web_page_en']['english']}, Retry-After {probes['web_page_en']['retry_after']}).",
    ])


def write_readme(result):
    c = result["config"]
    section = "\n".join([
        "<!-- db_outage:start -->",
        "## Database outage",
        "",
        f"`bench/db_outage_bench.py`, {result['finished']}, {result['machine']['cores']} cores, load average (1 min) "
        f"before the run {result['machine']['load_average_1m_before']}"
        + (" (other work shared the cores)" if result['machine']['load_average_1m_before'] > 0.5 else "") + ". "
        f"{c['clients']} clients POST `/open311/v2/requests.json` back to back through gunicorn "
        f"({c['gunicorn_workers']} sync workers) against a PostgreSQL cluster the benchmark runs itself; after "
        f"{c['warmup_s']:g} s it is stopped (`pg_ctl stop -m {c['stop_mode']}`) for {result['stopped_for_s']} s and "
        f"started again; {c['after_s']:g} s more of load. Nothing else is restarted. A client waits 0.05 s after "
        "an answer other than 201. (Issue 8 reported HTML 500 pages for such an outage before; not re-measured "
        "here.)",
        "",
        table(result),
        "<!-- db_outage:end -->",
    ])
    text = README.read_text(encoding="utf-8") if README.exists() else "# Benchmarks\n"
    start, end = text.find("<!-- db_outage:start -->"), text.find("<!-- db_outage:end -->")
    if start != -1 and end != -1:
        text = text[:start] + section + text[end + len("<!-- db_outage:end -->"):]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    README.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
