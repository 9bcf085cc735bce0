#!/usr/bin/env python
"""What a route() call spends its time on, at the routing benchmark's 1,000,000 facilities (the database that
`bench/routing_bench.py --keep` leaves): route() itself; the same stored function called on a bare cursor (no
Django, no model instances); and the backend's own CPU time per call (/proc), which separates the server's work
from waiting for a core on a shared machine. Each in its transaction, rolled back, as route_bench does; the three
are interleaved in rounds, so that the machine's load falls on all alike.

    .venv/bin/python bench/routing_route_breakdown.py [--db geo_ourcity_routing_bench] [--points 2000] [--rounds 3]
"""
import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default="geo_ourcity_routing_bench")
    parser.add_argument("--points", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    os.environ["OURCITY_DB_NAME"] = args.db
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "geo_ourcity.settings")
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "bench"))
    import django

    django.setup()
    import numpy as np
    from django.db import connection, transaction

    from routing.engine import ENGINE_VERSION, ROUTE_CALLS, route
    from routing.models import Category
    from routing_bench import CATEGORIES, SEED, percentiles, points_in_city, proc_cpu

    x, y = points_in_city(args.points, np.random.default_rng(SEED + 7))
    points = list(zip(x.tolist(), y.tolist()))
    cats = [Category.objects.get(code=c) for c in CATEGORIES]
    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        pid = cur.fetchone()[0]

    def run_route():
        samples = []
        with transaction.atomic():
            for k, p in enumerate(points):
                t = time.perf_counter()
                route(p, cats[k % len(cats)])
                samples.append(time.perf_counter() - t)
            transaction.set_rollback(True)
        return samples

    def run_raw():
        samples = []
        with transaction.atomic(), connection.cursor() as cur:
            raw = cur.cursor
            for k, (lon, lat) in enumerate(points):
                t = time.perf_counter()
                raw.execute(ROUTE_CALLS[False], [lon, lat, cats[k % len(cats)].pk, None, ENGINE_VERSION])
                raw.fetchone()
                samples.append(time.perf_counter() - t)
            transaction.set_rollback(True)
        return samples

    run_raw()  # warm up
    out = {"route": [], "raw": [], "cpu_route": [], "cpu_raw": []}
    for n in range(args.rounds):
        for key, fn in (("route", run_route), ("raw", run_raw)):
            cpu = proc_cpu(pid)[0]
            out[key].append(percentiles(fn()))
            out[f"cpu_{key}"].append((proc_cpu(pid)[0] - cpu) / len(points) * 1e3)
    print(f"{args.points} points x {args.rounds} rounds, load average {os.getloadavg()}")
    print("| call | round | p50 ms | p99 ms | mean ms | backend CPU ms per call |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for key, label in (("route", "`route()`"), ("raw", "its stored function on a bare cursor")):
        for n, (m, c) in enumerate(zip(out[key], out[f"cpu_{key}"]), 1):
            print(f"| {label} | {n} | {m['p50_ms']:.3f} | {m['p99_ms']:.3f} | {m['mean_ms']:.3f} | {c:.3f} |")


if __name__ == "__main__":
    main()
