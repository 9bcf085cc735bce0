#!/usr/bin/env python
"""What the history's mail trigger (complaints.notify; migration 0010_hearing_back) costs the fast create path:
complaint_create without an address (one INSERT statement for the complaint and its two history lines, which
fire the trigger) timed with the trigger on and, in the same run, with it disabled, in
alternating blocks so that the machine's load hits both alike. The statements sent are counted too: the trigger
runs inside the INSERT, so the counts must be equal. Against the Open311 benchmark's database.
Writes bench/results/event_mail_trigger.json and prints a table.

    .venv/bin/python bench/event_mail_trigger_bench.py [--blocks 10] [--per-block 100]
"""
import argparse
import datetime
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import open311_http_bench as o311  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "event_mail_trigger.json"


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--blocks", type=int, default=10)
    parser.add_argument("--per-block", type=int, default=100)
    args, _unknown = parser.parse_known_args()
    os.environ["OURCITY_CELERY_QUEUE"] = "bench-trigger-unconsumed"  # the tracking mails' tasks go nowhere
    load_before = os.getloadavg()
    o311.ensure_database()
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from complaints.services import complaint_create
    from routing.models import Category

    category = Category.objects.get(code="yard-rubbish")
    times = {"on": [], "off": []}
    statements = {}

    def one(i, email):
        started = time.perf_counter()
        complaint_create(category=category, point=(37.6056 + (i % 50) * 1e-4, 55.7655 + (i // 50 % 50) * 1e-4),
                         description="bench", email=email)
        return (time.perf_counter() - started) * 1000

    def trigger(on):
        with connection.cursor() as cur:
            cur.execute(f"ALTER TABLE complaints_complaintevent {'ENABLE' if on else 'DISABLE'} TRIGGER "
                        "complaints_event_mails")

    try:
        one(0, "")  # warm: the catalogue's and the calendar's memos, the connection
        for mode in ("on", "off"):
            trigger(mode == "on")
            with CaptureQueriesContext(connection) as queries:
                one(0, "")
            statements[mode] = len(queries)
        for block in range(args.blocks * 2):
            mode = "on" if block % 2 == 0 else "off"
            trigger(mode == "on")
            for i in range(args.per_block):
                times[mode].append(one(i, ""))
    finally:
        trigger(True)
        with transaction.atomic():
            pass

    def stats(ms):
        return {"n": len(ms), "p50_ms": round(percentile(ms, 50), 2), "p99_ms": round(percentile(ms, 99), 2)}

    result = {"benchmark": "event_mail_trigger",
              "finished": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
              "load_average_before": [round(x, 2) for x in load_before],
              "load_average_after": [round(x, 2) for x in os.getloadavg()], "cores": os.cpu_count(),
              "trigger_on": stats(times["on"]), "trigger_off": stats(times["off"]), "statements": statements}
    result["ratio_p50"] = round(result["trigger_on"]["p50_ms"] / result["trigger_off"]["p50_ms"], 3)
    result["ratio_p99"] = round(result["trigger_on"]["p99_ms"] / result["trigger_off"]["p99_ms"], 3)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print("| complaint_create | n | p50 ms | p99 ms | statements |\n|---|---:|---:|---:|---:|")
    for mode in ("on", "off"):
        s = result[f"trigger_{mode}"]
        print(f"| trigger {mode} | {s['n']} | {s['p50_ms']} | {s['p99_ms']} | {statements[mode]} |")
    print(f"| ratio on/off | | {result['ratio_p50']}x | {result['ratio_p99']}x | |")
    return 0 if statements["on"] == statements["off"] else 1


if __name__ == "__main__":
    sys.exit(main())
