#!/usr/bin/env python
"""Slow clients benchmark: latency of ordinary requests with no slow clients and beside ten slow clients that
hold connections open by sending a POST body byte by byte, for each way of serving the app, in one run:

- before: gunicorn, 3 sync workers, straight on the port (what `make demo` ran until issue 8);
- gthread: gunicorn, 3 workers x 4 threads, straight on the port (a worker class that needs no new package);
- now: scripts/serve.py, what `make demo` runs: nginx buffering in front, gunicorn's 3 sync workers behind it.

The ordinary requests: `GET /open311/v2/services.json` and map tiles (`/tiles/complaints/12/x/y.mvt` around the
centre), from 2 client threads, a new connection per request, each request given up after --give-up seconds
(counted as unanswered; percentiles then count it at the give-up time). Target (issue 8): with ten slow
clients, p99 <= 2x the quiet p99. Writes bench/results/slow_clients.json and its section of bench/README.md.

    .venv/bin/python bench/slow_clients_bench.py [--seconds 15] [--give-up 10]
"""
import argparse
import datetime
import json
import math
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

# A benchmark measures speed, not the abuse limits (issue 8): the servers it starts inherit limits it can not
# reach. Each limit can still be set from the environment.
for _limit in ("OURCITY_LIMIT_OPEN311_POSTS", "OURCITY_LIMIT_OPEN311_BAD_KEYS", "OURCITY_LIMIT_OPEN311_TOKEN_LOOKUPS",
               "OURCITY_LIMIT_WEB_REPORTS", "OURCITY_LIMIT_CODE_LOOKUPS"):
    os.environ.setdefault(_limit, "100000000/m")

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "slow_clients.json"
README = ROOT / "bench" / "README.md"
DB_NAME = os.environ.get("OURCITY_BENCH_SERVING_DB", "geo_ourcity_bench_serving")
SLOW_CLIENTS, CLIENT_THREADS, TARGET_RATIO = 10, 2, 2.0

sys.path.insert(0, str(ROOT))
os.environ["OURCITY_DB_NAME"] = DB_NAME
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "geo_ourcity.settings")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--seconds", type=int, default=15, help="length of each measured phase")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of requests before the first phase")
    parser.add_argument("--give-up", type=float, default=10.0, help="seconds after which a request is unanswered")
    args, _unknown = parser.parse_known_args()  # bench/run.py may pass options meant for other benchmarks

    load_before = os.getloadavg()[0]
    ensure_database()
    paths = request_paths()
    setups = []
    for name, label, starter in SETUPS:
        print(f"== {name}: {label}", flush=True)
        server = starter()
        try:
            for _ in range(2):  # every worker's first request loads the URLs, views and a database connection
                measure(server.port, paths, args.warmup, args.give_up)
            quiet = measure(server.port, paths, args.seconds, args.give_up)
            slow = SlowClients(server.port)
            slow.start()
            time.sleep(1)
            try:
                loaded = measure(server.port, paths, args.seconds, args.give_up)
            finally:
                slow.stop()
            row = {"name": name, "label": label, "quiet": quiet, "slow": loaded,
                   "slow_clients_held": slow.held_at_end, "slow_clients_reconnects": slow.reconnects,
                   "p99_ratio": ratio(loaded["p99_ms"], quiet["p99_ms"])}
            setups.append(row)
            print(f"   quiet: p50 {quiet['p50_ms']} ms, p99 {quiet['p99_ms']} ms, {quiet['answered']} answered; "
                  f"ten slow clients: p50 {loaded['p50_ms']} ms, p99 {loaded['p99_ms']} ms, {loaded['answered']} "
                  f"answered, {loaded['unanswered']} unanswered; p99 ratio {row['p99_ratio']}", flush=True)
        finally:
            server.stop()
    result = {
        "benchmark": "slow_clients",
        "finished": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "config": {"seconds": args.seconds, "give_up_seconds": args.give_up, "slow_clients": SLOW_CLIENTS,
                   "client_threads": CLIENT_THREADS, "paths": paths[:3] + ["..."], "database": DB_NAME},
        "machine": machine(load_before),
        "setups": setups,
        "target": {"p99_ratio_max": TARGET_RATIO,
                   "met": next(s for s in setups if s["name"] == "now")["p99_ratio"] <= TARGET_RATIO},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    write_readme(result)
    print(table(result))
    print(f"results: {RESULTS.relative_to(ROOT)}")
    return 0


# --- the database: the demo city and its complaints, in a database of its own ---

def ensure_database():
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

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)
    from complaints.models import Complaint

    if not Complaint.objects.exists():
        print("loading the demo city and its complaints (once)", flush=True)
        call_command("load_demo", stdout=open(os.devnull, "w"))
        call_command("load_demo_complaints", stdout=open(os.devnull, "w"))
    from django.db import connections

    connections.close_all()


def request_paths():
    """Open311 services and the tiles of a 1280 x 800 view of the centre at zoom 12, alternating."""
    z, lon, lat = 12, 37.6176, 55.7558
    n = 2 ** z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    tiles = [f"/tiles/complaints/{z}/{x + dx}/{y + dy}.mvt" for dx in range(-2, 3) for dy in range(-1, 3)]
    paths = []
    for tile in tiles:
        paths += ["/open311/v2/services.json", tile]
    return paths


# --- the ways of serving ---

class Server:
    def __init__(self, command, env, port, ready_text=None):
        self.port = port
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise SystemExit(f"the server exited: {self.log.read().decode(errors='replace')[-2000:]}")
            if answers(port, "/open311/v2/discovery.json"):
                return
            time.sleep(0.5)
        self.stop()
        raise SystemExit("the server did not answer within 120 s")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def server_env():
    env = {**os.environ, "OURCITY_DB_NAME": DB_NAME, "LOG_LEVEL": "ERROR"}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return env


def gunicorn_direct(*worker_args):
    def start():
        port = free_port()
        return Server([str(ROOT / ".venv" / "bin" / "gunicorn"), "geo_ourcity.wsgi", "--bind", f"127.0.0.1:{port}",
                       "--workers", "3", *worker_args, "--log-level", "warning", "--no-control-socket"],
                      server_env(), port)
    return start


def launcher():
    port = free_port()
    serve_dir = ROOT / "var" / "bench-serve"
    shutil.rmtree(serve_dir, ignore_errors=True)
    env = {**server_env(), "OURCITY_SERVE_DIR": str(serve_dir), "OURCITY_WEB_ACCESS_LOG": str(os.devnull)}
    return Server([sys.executable, str(ROOT / "scripts" / "serve.py"), "--port", str(port)], env, port)


SETUPS = [
    ("before", "gunicorn, 3 sync workers, on the port (the old `make demo`)", gunicorn_direct()),
    ("gthread", "gunicorn, 3 gthread workers x 4 threads, on the port", gunicorn_direct("--worker-class", "gthread",
                                                                                         "--threads", "4")),
    ("now", "`scripts/serve.py` (`make demo`): nginx front, gunicorn 3 sync workers behind it", launcher),
]


# --- the clients ---

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(port, path, timeout=5):
    try:
        return request(port, path, timeout) == 200
    except OSError:
        return False


def request(port, path, timeout):
    """One GET on a new connection; its status once the whole answer is in."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
        raw = b""
        while chunk := s.recv(65536):
            raw += chunk
    return int(raw.split(b" ", 2)[1])


def measure(port, paths, seconds, give_up):
    latencies, unanswered, errors = [], [0], [0]
    deadline = time.monotonic() + seconds

    def client(offset):
        i = offset
        while time.monotonic() < deadline:
            path = paths[i % len(paths)]
            i += 1
            started = time.perf_counter()
            try:
                status = request(port, path, give_up)
            except (socket.timeout, TimeoutError):
                unanswered[0] += 1
                latencies.append(give_up)
                continue
            except OSError:
                errors[0] += 1
                continue
            if status != 200:
                errors[0] += 1
            latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=client, args=(n * 7,)) for n in range(CLIENT_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies.sort()
    return {"answered": len(latencies) - unanswered[0], "unanswered": unanswered[0], "errors": errors[0],
            "p50_ms": percentile(latencies, 50), "p99_ms": percentile(latencies, 99),
            "max_ms": round(latencies[-1] * 1000, 1) if latencies else None}


def percentile(values, q):
    if not values:
        return None
    k = max(0, math.ceil(q / 100 * len(values)) - 1)
    return round(values[k] * 1000, 1)


def ratio(a, b):
    return round(a / b, 2) if a is not None and b else None


class SlowClients:
    """Ten clients, each sending a 1,000-byte POST body to /open311/v2/requests.json one byte every 0.5 s; a
    connection that the server closes is opened again at once, so that ten are held all the time."""

    def __init__(self, port):
        self.port = port
        self.stopping = threading.Event()
        self.reconnects = 0
        self.open = 0
        self.held_at_end = 0
        self.threads = [threading.Thread(target=self.client, daemon=True) for _ in range(SLOW_CLIENTS)]

    def start(self):
        for thread in self.threads:
            thread.start()

    def stop(self):
        self.held_at_end = self.open
        self.stopping.set()
        for thread in self.threads:
            thread.join(5)

    def client(self):
        head = (f"POST /open311/v2/requests.json HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n").encode()
        first = True
        while not self.stopping.is_set():
            if not first:
                self.reconnects += 1
            first = False
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=30) as s:
                    self.open += 1
                    try:
                        s.sendall(head)
                        for _ in range(1000):
                            if self.stopping.wait(0.5):
                                break
                            s.sendall(b"x")
                    finally:
                        self.open -= 1
            except OSError:
                time.sleep(0.1)


# --- the report ---

def machine(load_before):
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    nginx = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip() if shutil.which(
        "nginx") else "absent"
    return {"cores": os.cpu_count(), "cpu": cpu, "os": platform.platform(), "python": platform.python_version(),
            "nginx": nginx.replace("nginx version: ", ""), "load_average_1m_before": round(load_before, 2)}


def fmt(value, unanswered=0, give_up=None):
    if value is None:
        return "-"
    if unanswered and give_up and value >= give_up * 1000:
        return f"> {give_up:g} s"
    return f"{value:g}"


def table(result):
    give_up = result["config"]["give_up_seconds"]
    lines = ["| serving | quiet p50 ms | quiet p99 ms | ten slow clients: p50 ms | p99 ms | answered / unanswered "
             f"(> {give_up:g} s) | p99 ratio | target |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for s in result["setups"]:
        q, l = s["quiet"], s["slow"]
        target = ("<= 2 " + ("(met)" if s["p99_ratio"] is not None and s["p99_ratio"] <= TARGET_RATIO
                             else "(not met)")) if s["name"] == "now" else ""
        ratio_text = "-" if s["p99_ratio"] is None else (f"> {s['p99_ratio']:g}" if l["unanswered"] else
                                                         f"{s['p99_ratio']:g}")
        lines.append(f"| {s['label']} | {fmt(q['p50_ms'])} | {fmt(q['p99_ms'])} | "
                     f"{fmt(l['p50_ms'], l['unanswered'], give_up)} | {fmt(l['p99_ms'], l['unanswered'], give_up)} | "
                     f"{l['answered']} / {l['unanswered']} | {ratio_text} | {target} |")
    return "\n".join(lines)


def write_readme(result):
    """Replace this benchmark's section of bench/README.md (between its markers), leaving the others alone."""
    m, c = result["machine"], result["config"]
    section = "\n".join([
        "<!-- slow_clients:start -->",
        "## Slow clients",
        "",
        f"`bench/slow_clients_bench.py`, {result['finished']}: {m['cores']} cores ({m['cpu']}), {m['os']}, Python "
        f"{m['python']}, nginx {m['nginx']}; PostgreSQL and the clients on the same machine; the demo city with its "
        f"complaints in a database of its own. Ordinary requests: `GET /open311/v2/services.json` and complaint "
        f"tiles at zoom 12 in turn, {c['client_threads']} client threads, a new connection each, {c['seconds']} s "
        f"per phase; a request not answered within {c['give_up_seconds']:g} s is unanswered (and counted at that "
        f"time). Slow clients: {c['slow_clients']} connections each sending a 1,000-byte POST body one byte every "
        "0.5 s, held throughout the phase. Load average (1 min) before the run: "
        f"{m['load_average_1m_before']}" + (" (other work shared the cores: absolute figures are high and noisy; "
                                            "compare the rows of one run)." if m["load_average_1m_before"] > 0.5
                                            else "."),
        "",
        table(result),
        "",
        "The sync workers read a request themselves: three slow bodies hold the three workers and nothing else is "
        "answered. gthread waits for a connection's first bytes without a thread, then reads the rest of the "
        "request in one, and a worker whose threads are all held still accepts connections and queues them: ten "
        "slow bodies stopped it too. nginx reads every request whole before gunicorn sees it, so the "
        "slow clients hold nginx connections and no worker (docs/deployment.md).",
        "<!-- slow_clients:end -->",
    ])
    text = (README.read_text(encoding="utf-8") if README.exists()
            else "# Benchmarks\n\n`make bench` runs them all.\n")
    start, end = text.find("<!-- slow_clients:start -->"), text.find("<!-- slow_clients:end -->")
    if start != -1 and end != -1:
        text = text[:start] + section + text[end + len("<!-- slow_clients:end -->"):]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    README.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
