#!/usr/bin/env python
"""What one Open311 POST costs in the server's CPU, and what the supported way would cost instead of the one kept for
speed: in ONE process (Django's test Client, no HTTP server, no wrk), interleaved rounds, CPU time per request.

Variants, each measured in every round, in turn:
- `shipped`: the code as it is;
- `orm_insert`: the complaint and its first history lines stored with the ORM (`save(force_insert=True)` and
  `bulk_create`) instead of complaint intake's one INSERT statement (complaints.services._insert_with_events);
- `no_mail`: the same POST without an e-mail address, so no tracking mail is written to the outbox: the difference
  is what the mail costs the request;
- `main_limits`: the rate limits counted as main counted them before issue 9's fix, through Django's cache API as
  django-ratelimit did (a look at the wrong-key count, then add-or-incr of the key's count: GET, SET NX, EXISTS,
  INCRBY, each call a new redis client), instead of one pipeline;
- `publish_in_request`: the tracking mail's task published by the request once its transaction commits
  (`transaction.on_commit`, as before the outbox relay), instead of by a worker's relay (complaints.outbox.outbox_relay);
- `floor`: the floor endpoint of bench/open311_http (parse, one raw routing statement, two inserts) in the same
  process.

CPU time is the process's (time.process_time: Python and the driver, not PostgreSQL's); min and median over the
rounds, which the machine's other work disturbs less than wall time. Writes bench/results/open311_post_cost.json
and the "Open311 POST cost" section of bench/README.md.

    .venv/bin/python bench/open311_post_cost_bench.py [--rounds 4] [--posts 150]
"""
import argparse
import datetime
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench" / "open311_http"), str(ROOT / "bench"), str(ROOT)]
import open311_http_bench as http_bench  # noqa: E402 (its database, form and limits; it sets the environment)

os.environ["DJANGO_SETTINGS_MODULE"] = "open311_bench_settings"
RESULTS = ROOT / "bench" / "results" / "open311_post_cost.json"
MARKER = "open311_post_cost"
LABELS = {
    "shipped": "`POST /open311/v2/requests.json` as shipped",
    "orm_insert": "the same, complaint and history stored by the ORM (save + bulk_create)",
    "no_mail": "the same POST without an e-mail address (no outbox row)",
    "main_limits": "the same, rate limits counted as on main (Django cache calls, no pipeline)",
    "publish_in_request": "the same, the mail task published by the request on commit (before the outbox relay)",
    "floor": "floor (parse, raw routing SQL, two inserts)",
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--posts", type=int, default=150, help="POSTs per variant per round")
    parser.add_argument("--service", default="school-territory")
    args, _unknown = parser.parse_known_args()
    load_before = os.getloadavg()
    http_bench.ensure_database()

    from django.test import Client

    import complaints.services as services
    import open311.limits as open311_limits
    from complaints.models import ComplaintEvent
    from complaints.tasks import outbox_deliver
    from django.db import transaction
    from django.conf import settings
    from django.core.cache import caches
    from rest_framework.exceptions import Throttled

    from geo_ourcity.limits import client_key, parse_rate

    pipeline_limits = open311_limits.post_limits_check

    def main_limits(request, key):
        """What main did: django-ratelimit's cache calls (a look, then add-or-incr), on Django's RedisCache."""
        cache = caches[settings.RATELIMIT_USE_CACHE]

        def usage(group, rate, who, count):
            allowed, period = parse_rate(rate)
            name = f"{settings.RATELIMIT_CACHE_PREFIX}{group}:{who}:{int(time.time()) // period}"
            if not count:
                return cache.get(name, 0), allowed
            if cache.add(name, 1, period):
                return 1, allowed
            return cache.incr(name), allowed

        used, allowed = usage(open311_limits.BAD_KEYS, settings.LIMIT_OPEN311_BAD_KEYS, client_key(request), False)
        if used >= allowed:
            raise Throttled(1)
        if key is None:
            usage(open311_limits.BAD_KEYS, settings.LIMIT_OPEN311_BAD_KEYS, client_key(request), True)
            return
        used, allowed = usage(open311_limits.POSTS, key.rate_limit or settings.LIMIT_OPEN311_POSTS, key.pk, True)
        if used > allowed:
            raise Throttled(1)

    one_statement = services._insert_with_events
    relayed = services.tracking_mail_write

    def publish_in_request(complaint):
        """The outbox row as shipped, and its task published after the commit by the request itself."""
        relayed(complaint)
        key = f"tracking:{complaint.pk}"
        transaction.on_commit(lambda: outbox_deliver.delay(key), robust=True)

    def orm_insert(complaint, events):
        complaint.save(force_insert=True)
        ComplaintEvent.objects.bulk_create(events)

    body = http_bench.bench_form(args.service)
    no_mail = urlencode([(k, v) for k, v in parse_qsl(body) if k != "email"])
    client = Client()
    shipped = (one_statement, pipeline_limits, relayed)
    variants = {"shipped": ("/open311/v2/requests.json", body, shipped),
                "orm_insert": ("/open311/v2/requests.json", body, (orm_insert, pipeline_limits, relayed)),
                "no_mail": ("/open311/v2/requests.json", no_mail, shipped),
                "main_limits": ("/open311/v2/requests.json", body, (one_statement, main_limits, relayed)),
                "publish_in_request": ("/open311/v2/requests.json", body,
                                       (one_statement, pipeline_limits, publish_in_request)),
                "floor": ("/bench/floor", body, shipped)}

    def post(path, form):
        lat, lon = 55.70 + random.random() * 0.1, 37.55 + random.random() * 0.15
        response = client.post(path, f"{form}&lat={lat}&long={lon}", content_type="application/x-www-form-urlencoded")
        assert response.status_code == 201, (path, response.status_code, response.content[:300])

    cpu = {name: [] for name in variants}
    for _round in range(args.rounds):
        for name, (path, form, (insert, limits, mail_write)) in variants.items():
            services._insert_with_events = insert
            open311_limits.post_limits_check = limits
            services.tracking_mail_write = mail_write
            for _ in range(20):  # warm-up
                post(path, form)
            start = time.process_time()
            for _ in range(args.posts):
                post(path, form)
            cpu[name].append((time.process_time() - start) / args.posts * 1000)
    services._insert_with_events, open311_limits.post_limits_check = one_statement, pipeline_limits
    services.tracking_mail_write = relayed
    result = {
        "benchmark": MARKER,
        "finished": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {**http_bench.machine(), "load_average_before": [round(v, 2) for v in load_before],
                    "load_average_after": [round(v, 2) for v in os.getloadavg()]},
        "config": {"rounds": args.rounds, "posts_per_round": args.posts, "service_code": args.service},
        "cpu_ms_per_request": {name: {"min": round(min(v), 2), "median": round(statistics.median(v), 2),
                                      "rounds": [round(x, 2) for x in v]} for name, v in cpu.items()},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    write_readme(result)
    print(table(result))
    return 0


def table(result):
    cpu = result["cpu_ms_per_request"]
    shipped, floor = cpu["shipped"]["median"], cpu["floor"]["median"]
    lines = ["| variant | CPU ms per request, min | median | median / shipped | median / floor |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for name, label in LABELS.items():
        lines.append(f"| {label} | {cpu[name]['min']:.2f} | {cpu[name]['median']:.2f} | "
                     f"{cpu[name]['median'] / shipped:.2f}x | {cpu[name]['median'] / floor:.2f}x |")
    return "\n".join(lines)


def write_readme(result):
    m, c = result["machine"], result["config"]
    loaded = m["load_average_before"][0] > 0.5 or m["load_average_after"][0] > 0.5
    section = "\n".join([
        f"<!-- {MARKER}:start -->",
        "## Open311 POST cost: the supported way beside the one kept for speed",
        "",
        f"`bench/open311_post_cost_bench.py`, {result['finished']}, on {m['cores']} cores ({m['cpu']}). One process, "
        f"Django's test Client against the benchmark database, {c['rounds']} interleaved rounds of "
        f"{c['posts_per_round']} requests per variant, service `{c['service_code']}`; CPU time of the process "
        "(Python and the driver; PostgreSQL's own is not in it). Load average (1, 5, 15 min) before: "
        f"{', '.join(map(str, m['load_average_before']))}; after: {', '.join(map(str, m['load_average_after']))}"
        + (" (other work shared the cores: compare the ratios)." if loaded else "."),
        "",
        table(result),
        f"<!-- {MARKER}:end -->",
    ])
    readme = http_bench.README
    text = readme.read_text(encoding="utf-8")
    start, end = text.find(f"<!-- {MARKER}:start -->"), text.find(f"<!-- {MARKER}:end -->")
    if start != -1 and end != -1:
        text = text[:start] + section + text[end + len(f"<!-- {MARKER}:end -->"):]
    else:
        anchor = text.find("<!-- open311_http:end -->")
        at = anchor + len("<!-- open311_http:end -->") if anchor != -1 else len(text)
        text = text[:at] + "\n\n" + section + text[at:]
    readme.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
