#!/usr/bin/env python
"""Registry-correction benchmark (issue 11 §4): the re-route after an accepted correction, beside the targeted
re-route after a facilities import and a full re-decision, in one run, on the demo city in a database of its own.

  accepted correction   staff.corrections.correction_apply of a queued RegistryCorrection (a school building's
                        owner becomes the neighbouring school): the one-row GeoPackage, the partial import through
                        importers.core.run_import (the dataset's next generation) and the re-route around that
                        facility (complaints.services.complaints_reroute); wall time and the re-route's own time;
  facilities import     the same kind of change as a plain partial import of the same dataset (another building,
                        the file written the same way, run_import called directly): the peer;
  area, category        an accepted correction of an area's jurisdiction (Tverskoy's) and of a category's fixed
                        department (road-pothole's), each round back and forth between two authorities: the one-row
                        partial areas / catalogue import and the re-route around what it changed;
  full re-decision      complaints_reroute over every open complaint (dry run): what the targeted pass avoids.
Complaints/s is open complaints considered over the re-route's seconds (bench/routing_bench.py's measure). Each row
is the median of --rounds rounds (a different building each; the correction and the import take turns going
first). Results: a table on stdout, bench/results/correction.json and the "Registry correction" section of
bench/README.md.

    .venv/bin/python bench/correction_bench.py                 # 50,000 open complaints, 3 rounds
    .venv/bin/python bench/correction_bench.py --complaints 5000 --rounds 2
"""
import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import routing_bench as rb  # noqa: E402 (the bench database helpers, shared)

ROOT = rb.ROOT
RESULTS = ROOT / "bench" / "results" / "correction.json"
README = ROOT / "bench" / "README.md"
DB = "geo_ourcity_bench_correction"
AT_EACH = 40  # open complaints at each corrected building


def build(n, rounds, rng):
    """Migrate, load the demo city, and make n open complaints over the city plus AT_EACH at each of the
    2 x rounds school buildings the rounds change (set-based, with the engine's own decision SQL)."""
    with rb.pg_connect("postgres") as conn, conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{DB}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{DB}"')
    with rb.pg_connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    rb.log("migrating and loading the demo city ...")
    rb.manage("migrate", "--noinput", "-v", "0")
    rb.manage("load_demo")
    import django

    django.setup()
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("""SELECT f.id, n.owner_id FROM (
                           SELECT f.* FROM facilities_facility f JOIN facilities_facilitytype t ON t.id = f.type_id
                           WHERE t.code = 'school' AND f.valid_to IS NULL
                             AND GeometryType(f.geom) IN ('POLYGON', 'MULTIPOLYGON')
                           ORDER BY f.source_key LIMIT 200) f
                       CROSS JOIN LATERAL (SELECT g.owner_id FROM facilities_facility g
                                           WHERE g.type_id = f.type_id AND g.valid_to IS NULL AND g.owner_id <> f.owner_id
                                           ORDER BY g.geom <-> f.geom LIMIT 1) n
                       ORDER BY f.source_key""")
        pairs = cur.fetchall()[:2 * rounds]
        cur.execute("SELECT id, ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM facilities_facility "
                    "WHERE id = ANY(%s)", [[p[0] for p in pairs]])
        inside = {pk: (x, y) for pk, x, y in cur.fetchall()}
    x, y = rb.points_in_city(n, rng)
    codes = ["yard-pothole", "school-territory", "school-building", "hospital-territory", "illegal-trade",
             "road-pothole", "kindergarten-territory"]
    rows = [(float(a), float(b), str(c)) for a, b, c in zip(x, y, rng.choice(codes, size=n))]
    for pk, _owner in pairs:
        rows += [(*inside[pk], "school-territory")] * AT_EACH
    made = insert_open_complaints(rows)
    return made, pairs


def insert_open_complaints(rows):
    """Open complaints at (lon, lat, category code), each with the engine's decision (routing.engine.decide_sql)."""
    import io

    from django.db import connection, transaction

    from routing.engine import ENGINE_VERSION, decide_sql

    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("CREATE TEMP TABLE bench_points (key bigint, lon float8, lat float8, code text) ON COMMIT DROP")
        cur.copy_expert("COPY bench_points FROM STDIN", io.StringIO(
            "".join(f"{i}\t{a}\t{b}\t{c}\n" for i, (a, b, c) in enumerate(rows))))
        decide = decide_sql("""SELECT p.key, ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326) AS g, c.id AS category_id,
                                      NULL::bigint AS picked_id, NULL::bigint[] AS known_facilities,
                                      NULL::bigint AS known_area_id
                               FROM bench_points p JOIN routing_category c ON c.code = p.code""")
        cur.execute(f"""CREATE TEMP TABLE bench_decided ON COMMIT DROP AS
                        SELECT nextval(pg_get_serial_sequence('routing_routingdecision', 'id')) AS decision_id, d.*
                        FROM ({decide}) d""")
        cur.execute("""
            INSERT INTO routing_routingdecision (id, department_id, authority_id, facility_id, area_id, rule,
                distance_m, candidates, engine_version, explanation_ru, explanation_en, created_at)
            SELECT decision_id, department_id, authority_id, facility_id, area_id, rule, distance_m, candidates,
                   %s, explanation_ru, explanation_en, now() FROM bench_decided""", [ENGINE_VERSION])
        cur.execute("""
            INSERT INTO complaints_complaint (tracking_code, token, category_id, location, address_string,
                description, attributes, email, phone, first_name, last_name, device_id, account_id, state,
                decision_id, department_id, area_id, facility_id, submitted_at, updated_at, deadline, reopen_count,
                source, media_url, language)
            SELECT 'C' || d.key, md5('c' || d.key::text), c.id, ST_SetSRID(ST_MakePoint(p.lon, p.lat), 4326), '',
                   '', '{}', '', '', '', '', '', '', 'assigned', d.decision_id, d.department_id, d.area_id,
                   d.facility_id, now(), now(), now() + interval '8 days', 0, 'bench', '', ''
            FROM bench_decided d JOIN bench_points p ON p.key = d.key JOIN routing_category c ON c.code = p.code""")
        cur.execute("SELECT count(*) FROM complaints_complaint WHERE source = 'bench'")
        made = cur.fetchone()[0]
    with connection.cursor() as cur:
        cur.execute("VACUUM ANALYZE complaints_complaint")
        cur.execute("VACUUM ANALYZE routing_routingdecision")
    return made


def measure(pairs, rounds, max_wait):
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from complaints.services import complaints_reroute
    from importers.core import run_import, runs_dir
    from staff.corrections import correction_import, facility_correction_file
    from staff.models import RegistryCorrection

    from facilities.models import AdminArea
    from routing.models import Category

    user = get_user_model().objects.get(username="datastaff")
    out = {"correction": [], "import": [], "full": [], "area": [], "category": []}
    # An area's jurisdiction and a category's department, corrected each round back and forth between two
    # authorities (each round a real change): Tverskoy's council <-> its okrug's prefecture; road-pothole's
    # department's authority <-> Tverskoy's council.
    tverskoy = AdminArea.objects.select_related("authority", "parent__authority").get(level="district", name="Тверской")
    area_sides = [tverskoy.parent.authority_id, tverskoy.authority_id]
    road = Category.objects.select_related("department").get(code="road-pothole")
    category_sides = [tverskoy.authority_id, road.department.authority_id]

    def row(wall, result):
        r = result.reroute
        return {"wall_s": round(wall, 3), "reroute_s": r.seconds, "considered": r.considered, "moved": r.moved,
                "searched": r.searched, "per_s": round(r.considered / r.seconds), "updated": result.counts["updated"],
                "loadavg": os.getloadavg()}

    for i in range(rounds):
        order = [("correction", pairs[2 * i]), ("import", pairs[2 * i + 1])]
        for kind, (facility_id, owner_id) in (order if i % 2 == 0 else order[::-1]):  # neither always goes first
            item = RegistryCorrection.objects.create(
                kind="facility", subject_id=facility_id, subject_label=f"bench {facility_id}", authority_id=owner_id,
                complaints=3, state="queued", decided_by=user, decided_at=timezone.now())
            rb.wait_for_idle(max_wait)
            started = time.perf_counter()
            if kind == "correction":
                result = correction_import(item)
            else:  # the peer: the same one-row partial file, imported as data staff import any file
                folder = runs_dir() / "bench"
                folder.mkdir(parents=True, exist_ok=True)
                path, spec = facility_correction_file(item, folder)
                result = run_import(path, spec, commit=True, user=user)
            out[kind].append(row(time.perf_counter() - started, result))
            rb.log(f"  round {i + 1} {kind}: {out[kind][-1]}")
        for kind, subject, sides in (("area", tverskoy.pk, area_sides), ("category", road.pk, category_sides)):
            item = RegistryCorrection.objects.create(
                kind=kind, subject_id=subject, subject_label=f"bench {kind}", authority_id=sides[i % 2],
                complaints=3, state="queued", decided_by=user, decided_at=timezone.now())
            rb.wait_for_idle(max_wait)
            started = time.perf_counter()
            result = correction_import(item)
            out[kind].append(row(time.perf_counter() - started, result))
            rb.log(f"  round {i + 1} {kind}: {out[kind][-1]}")
        rb.wait_for_idle(max_wait)
        r = complaints_reroute(dry_run=True, reason="bench")
        out["full"].append({"reroute_s": r.seconds, "considered": r.considered, "per_s": round(r.considered / r.seconds),
                            "moved": r.moved, "loadavg": os.getloadavg()})
        rb.log(f"  round {i + 1} full: {out['full'][-1]}")
    return out


def spread(rows):
    values = sorted(r["reroute_s"] for r in rows)
    return f"{values[0]} to {values[-1]}"


def median(rows, key):
    return round(statistics.median(r[key] for r in rows), 3)


def table(result):
    m = result["measured"]
    c, i, f = m["correction"], m["import"], m["full"]
    rows = [f"| re-route, {result['open_complaints']:,} open complaints ({AT_EACH} at the changed building), median of "
            f"{len(c)} | wall s | re-route s | complaints/s | searched again | moved |",
            "| --- | ---: | ---: | ---: | ---: | ---: |",
            f"| **an accepted correction** (a building's owner: file, partial import, re-route) | {median(c, 'wall_s')} | "
            f"{median(c, 'reroute_s')} | {median(c, 'per_s'):,.0f} | {median(c, 'searched'):,.0f} | {median(c, 'moved'):,.0f} |",
            f"| peer: the same change as a plain partial facilities import (targeted re-route) | {median(i, 'wall_s')} | "
            f"{median(i, 'reroute_s')} | {median(i, 'per_s'):,.0f} | {median(i, 'searched'):,.0f} | {median(i, 'moved'):,.0f} |",
            *([f"| an accepted area correction (Tverskoy's jurisdiction: file, partial areas import, re-route) | "
               f"{median(m['area'], 'wall_s')} | {median(m['area'], 'reroute_s')} | {median(m['area'], 'per_s'):,.0f} | "
               f"{median(m['area'], 'searched'):,.0f} | {median(m['area'], 'moved'):,.0f} |"] if m.get("area") else []),
            *([f"| an accepted category correction (road-pothole's department: file, partial catalogue import, "
               f"re-route) | {median(m['category'], 'wall_s')} | {median(m['category'], 'reroute_s')} | "
               f"{median(m['category'], 'per_s'):,.0f} | {median(m['category'], 'searched'):,.0f} | "
               f"{median(m['category'], 'moved'):,.0f} |"] if m.get("category") else []),
            f"| full re-decision of every open complaint (dry run) | | {median(f, 'reroute_s')} | {median(f, 'per_s'):,.0f} | all | |",
            f"| ratio: correction / import (complaints/s) | | | {median(c, 'per_s') / median(i, 'per_s'):.2f}x | | |",
            f"| ratio: correction / full re-decision (complaints/s) | | | {median(c, 'per_s') / median(f, 'per_s'):.1f}x | | |"]
    return "\n".join(rows)


def write_readme(result):
    text = README.read_text(encoding="utf-8")
    start, end = "<!-- correction:start -->", "<!-- correction:end -->"
    mach, m = result["machine"], result["measured"]
    section = (f"{start}\n## Registry correction: the re-route after an accepted correction\n\n"
               f"`bench/correction_bench.py`, {mach['date']}: the demo city in a database of its own; "
               f"{mach['nproc']} cores ({mach['cpu']}), PostgreSQL {mach['postgresql']}, PostGIS {mach['postgis']}. "
               f"**Taken on a loaded, shared machine** (other helpers' test suites; this run under `nice -n 19`): "
               f"the load average (1, 5, 15 min) was {', '.join(f'{x:.1f}' for x in result['loadavg_start'])} at "
               f"the start and {', '.join(f'{x:.1f}' for x in result['loadavg_end'])} at the end, so the absolute "
               f"times are several times an idle machine's; the ratios are from the same run.\n\n"
               f"{table(result)}\n\n"
               "An accepted correction is a one-row `mode: partial` import of the building's dataset (the dataset's "
               "next generation is built from the current one, with that row's owner changed, and switched in), then "
               "the re-route around what it changed. Its geometry did not move, so no complaint searches again (the "
               "\"searched again\" column): every open complaint goes the quick way (who answers for the facilities "
               "its decision found), and those whose decision named the building move to its new owner. "
               "So it costs what the targeted re-route after any facilities import costs; the wall time "
               "beyond the re-route is the import's (the generation's copy and index builds). The correction and "
               "the plain import are one code path (staff.corrections only writes the file and calls "
               "importers.core.run_import): the gap between their medians is this machine's noise; per round, "
               f"the correction's re-route took {spread(m['correction'])} s and the import's {spread(m['import'])} s "
               "(all rounds: bench/results/correction.json). The routing benchmark's row \"a facilities import\" "
               "(bench/routing_bench.py, 100,000 complaints beside 1,000,000 facilities, 109,351 of them changed) "
               "is the same targeted pass at a much larger change. An area's or a category's correction is the same path "
               "for those targets (a one-row partial import of the areas or the catalogue dataset, then the re-route "
               "of the open complaints that area or category can concern); the category's moves every open "
               "road-pothole complaint, a seventh of them.\n"
               f"{end}")
    if start in text:
        text = text[:text.index(start)] + section + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    README.write_text(text, encoding="utf-8")


def main(argv=None):
    import numpy as np

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--complaints", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-wait", type=float, default=10.0, help="seconds to wait for a quiet machine")
    parser.add_argument("--no-readme", action="store_true")
    parser.add_argument("--readme-only", action="store_true", help="write the README section from the last results")
    args = parser.parse_args(argv)
    if args.readme_only:
        write_readme(json.loads(RESULTS.read_text(encoding="utf-8")))
        return
    rb.setup_env(DB)
    load_start = os.getloadavg()
    made, pairs = build(args.complaints, args.rounds, np.random.default_rng(rb.SEED))
    rb.log(f"{made:,} open complaints; measuring ...")
    measured = measure(pairs, args.rounds, args.max_wait)
    result = {"open_complaints": made, "measured": measured, "machine": rb.machine(), "loadavg_start": load_start,
              "loadavg_end": os.getloadavg()}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(table(result))
    if not args.no_readme:
        write_readme(result)


if __name__ == "__main__":
    main()
