#!/usr/bin/env python
"""Mail latency benchmark (issue 10 §1): from a state change to the mail accepted by the SMTP server, p50 and p99,
under 32 concurrent POSTs.

32 client threads each POST state changes over HTTP to gunicorn (a resident's "not fixed" on the complaint's page,
/c/<code>/deny/: answered -> reopened, a public change that is mailed to the reporter), 32 at a time. The mail goes
the whole real way: the history trigger writes its outbox row in the POST's transaction, the commit asks the queue
(Redis), a real `celery worker` (prefork) renders it and sends it over SMTP to a local aiosmtpd server, which
notes when it accepted the message (250 to DATA). Latency = accepted - POST sent (the POST's own time included),
and accepted - POST answered. Beside it, in the same run, the floor: 32 threads handing the same number of mails of
the same size straight to the same SMTP server (smtplib, one connection per thread): the least any mail path can
take. Against the Open311 benchmark's database (demo city; bench/open311_http_bench.py creates it). Writes
bench/results/mail_latency.json and the "Mail latency" section of bench/README.md.

    .venv/bin/python bench/mail_latency_bench.py [--per-client 8] [--clients 32] [--web-workers 4]
        [--mail-workers 4]
"""
import argparse
import datetime
import json
import os
import re
import signal
import smtplib
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from email import message_from_bytes
from email.policy import default as default_policy
from http.cookiejar import CookieJar
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
for _limit in ("OURCITY_LIMIT_CODE_LOOKUPS", "OURCITY_LIMIT_WEB_REPORTS", "OURCITY_LIMIT_OPEN311_POSTS"):
    os.environ.setdefault(_limit, "100000000/m")

import open311_http_bench as o311  # noqa: E402 - its database, gunicorn and README helpers

RESULTS = ROOT / "bench" / "results" / "mail_latency.json"
QUEUE = f"bench-mail-{uuid.uuid4().hex[:8]}"


class Mailbox:
    def __init__(self):
        self.accepted, self.lock = {}, threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        now = time.time()
        message = message_from_bytes(envelope.content, policy=default_policy)
        subject = str(message["Subject"] or "")
        found = re.search(r"(\d+)", subject)
        key = message["X-Bench-Floor"] or (f"c{found.group(1)}" if found else "?")  # the complaint's number
        with self.lock:
            self.accepted.setdefault(key, []).append((now, subject))
        return "250 OK"


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))]


def stats(ms):
    return {"n": len(ms), "p50_ms": round(percentile(ms, 50), 1), "p99_ms": round(percentile(ms, 99), 1),
            "max_ms": round(max(ms), 1), "mean_ms": round(statistics.fmean(ms), 1)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--per-client", type=int, default=8, help="state changes each client POSTs")
    parser.add_argument("--web-workers", type=int, default=4)
    parser.add_argument("--mail-workers", type=int, default=4, help="the celery worker's prefork processes (make demo's WORKER_CONCURRENCY)")
    args, _unknown = parser.parse_known_args()
    load_before = os.getloadavg()

    from aiosmtpd.controller import Controller

    box = Mailbox()
    smtp_port = o311.free_port()
    controller = Controller(box, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    os.environ.update({"OURCITY_EMAIL_HOST": "127.0.0.1", "OURCITY_EMAIL_PORT": str(smtp_port),
                       "OURCITY_EMAIL_TLS": "false", "OURCITY_CELERY_QUEUE": QUEUE,
                       "OURCITY_CELERY_KEY_PREFIX": f"{QUEUE}:celery:"})
    o311.ensure_database()  # django.setup() with the settings above
    from django.contrib.auth import get_user_model
    from django.db import connection

    from complaints.models import Complaint, Outbox
    from complaints.services import complaint_answer, complaint_create
    from routing.models import Category

    servers, worker = [], None
    try:
        worker_log = open(ROOT / "var" / "bench-mail-worker.log", "wb")
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "geo_ourcity.settings"}
        worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "geo_ourcity", "worker", "--pool", "prefork",
                                   "--concurrency", str(args.mail_workers), "--without-gossip", "--without-mingle",
                                   "-l", "warning", "-n", f"{QUEUE}@%h"], cwd=ROOT, env=env, stdout=worker_log,
                                  stderr=subprocess.STDOUT, process_group=0)
        server = o311.start_gunicorn(o311.free_port(), args.web_workers)
        servers.append(server)

        # The complaints: answered, each with its reporter's address (their filing's and answer's mails are sent
        # and forgotten before anything is measured).
        n = args.clients * args.per_client
        category = Category.objects.get(code="yard-rubbish")
        user, _ = get_user_model().objects.get_or_create(username="bench-mail-staff", defaults={"is_staff": True})
        items = []
        for i in range(n):
            c = complaint_create(category=category, point=(37.6056 + (i % 50) * 1e-4, 55.7655 + (i // 50) * 1e-4),
                                 description="bench", email=f"bench{i}@example.org")
            c.department.staff.add(user)
            complaint_answer(complaint=c, user=user, text="Сделано")
            items.append((c.pk, c.tracking_code, c.confirmation_key))
        deadline = time.monotonic() + 600
        while Outbox.objects.filter(state="pending").exists():
            if time.monotonic() > deadline:
                raise SystemExit("the preparation's mails were not sent within 10 minutes")
            time.sleep(0.5)
        with box.lock:
            box.accepted.clear()

        sent, answered, failures = {}, {}, []
        chunks = [items[i::args.clients] for i in range(args.clients)]
        start_barrier = threading.Barrier(args.clients)

        def client(chunk):
            jar = CookieJar()
            # The POST's answer is its 302: the page it redirects to is not followed (its GET is no part of the change).
            opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect())
            start_barrier.wait()
            for pk, code, key in chunk:
                page = opener.open(f"{server.base}/c/{code}/", timeout=60).read().decode()
                token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
                body = urllib.parse.urlencode({"csrfmiddlewaretoken": token, "key": key, "reason": "bench"}).encode()
                request = urllib.request.Request(f"{server.base}/c/{code}/deny/", data=body,
                                                 headers={"Referer": f"{server.base}/c/{code}/"})
                sent[pk] = time.time()
                try:
                    with opener.open(request, timeout=60) as response:
                        response.read()
                except urllib.error.HTTPError as exc:
                    if exc.code != 302:
                        raise
                answered[pk] = time.time()

        def guarded(chunk):
            try:
                client(chunk)
            except Exception as exc:  # noqa: BLE001 - reported, the run fails
                failures.append(repr(exc))

        threads = [threading.Thread(target=guarded, args=(chunk,)) for chunk in chunks]
        began = time.time()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if failures:
            raise SystemExit(f"{len(failures)} clients failed: {failures[0]}")
        deadline = time.monotonic() + 300
        while True:
            with box.lock:
                got = {pk for pk in sent if f"c{pk}" in box.accepted}
            if len(got) == len(sent) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        posts_seconds = max(answered.values()) - began
        reopened = Complaint.objects.filter(pk__in=list(sent), state="reopened").count()
        lat_sent = [(box.accepted[f"c{pk}"][0][0] - sent[pk]) * 1000 for pk in got]
        lat_answered = [(box.accepted[f"c{pk}"][0][0] - answered[pk]) * 1000 for pk in got]
        post_ms = [(answered[pk] - sent[pk]) * 1000 for pk in sent]
        # The state change itself: its transaction (the outbox row the history trigger wrote in it has its
        # start, now()); the POST's own wait for a web worker before it is not the mail's.
        changed = dict(Outbox.objects.filter(kind="event", complaint_id__in=list(sent), context__reporter=True,
                                             created_at__gte=datetime.datetime.fromtimestamp(began - 1, datetime.UTC))
                       .order_by("created_at").values_list("complaint_id", "created_at"))
        lat_change = [(box.accepted[f"c{pk}"][0][0] - changed[pk].timestamp()) * 1000 for pk in got if pk in changed]

        floor = run_floor(box, smtp_port, args.clients, args.per_client)
        with connection.cursor() as cur:
            cur.execute("SELECT count(*) FROM complaints_outbox WHERE kind = 'event' AND state <> 'sent'")
            unsent = cur.fetchone()[0]
    finally:
        for s in servers:
            s.terminate()
            s.wait(30)
        if worker is not None and worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
        controller.stop()

    result = {
        "benchmark": "mail_latency",
        "finished": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "config": {"clients": args.clients, "per_client": args.per_client, "web_workers": args.web_workers,
                   "mail_workers": args.mail_workers},
        "machine": {**machine(), "load_average_before": [round(x, 2) for x in load_before],
                    "load_average_after": [round(x, 2) for x in os.getloadavg()]},
        "state_changes": len(sent), "reopened": reopened, "mails_accepted": len(got), "event_mails_unsent": unsent,
        "posts_seconds": round(posts_seconds, 2),
        "change_to_mail": stats(lat_change), "change_to_mail_from_post_sent": stats(lat_sent), "change_to_mail_from_post_answered": stats(lat_answered),
        "post": stats(post_ms), "floor_direct_smtp": floor,
    }
    result["ratio_p50"] = round(result["change_to_mail"]["p50_ms"] / floor["p50_ms"], 1)
    result["ratio_p99"] = round(result["change_to_mail"]["p99_ms"] / floor["p99_ms"], 1)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(table(result))
    write_readme(result)
    return 0 if len(got) == len(sent) == reopened else 1


def run_floor(box, port, clients, per_client):
    """The same number of mails, of the same size, from 32 threads straight to the SMTP server."""
    from email.message import EmailMessage

    ms, lock = [], threading.Lock()
    body = "x" * 900

    def one(i):
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as conn:
            for j in range(per_client):
                message = EmailMessage()
                message["From"], message["To"] = "no-reply@example.org", f"floor{i}@example.org"
                message["Subject"], message["X-Bench-Floor"] = f"floor {i}-{j}", f"f{i}-{j}"
                message.set_content(body)
                t0 = time.time()
                conn.send_message(message)
                with lock:
                    ms.append((time.time() - t0) * 1000)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return stats(ms)


def machine():
    import platform

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"cpu": cpu, "cores": os.cpu_count(), "os": platform.platform(), "python": platform.python_version()}


def table(r):
    rows = [("state change (its transaction) -> mail accepted", r["change_to_mail"]),
            ("state change -> mail accepted (from the POST sent)", r["change_to_mail_from_post_sent"]),
            ("state change -> mail accepted (from the POST answered)", r["change_to_mail_from_post_answered"]),
            ("the POST itself", r["post"]),
            ("floor: a mail handed straight to the SMTP server", r["floor_direct_smtp"])]
    lines = ["| path | n | p50 ms | p99 ms | max ms |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {name} | {s['n']} | {s['p50_ms']} | {s['p99_ms']} | {s['max_ms']} |" for name, s in rows]
    lines.append(f"| ratio to the floor (state change -> mail accepted) | | {r['ratio_p50']}x | {r['ratio_p99']}x | |")
    return "\n".join(lines)


def write_readme(result, marker="mail_latency"):
    m, c = result["machine"], result["config"]
    section = "\n".join([
        f"<!-- {marker}:start -->",
        "## Mail latency: from a state change to the mail accepted by the SMTP server",
        "",
        f"`bench/mail_latency_bench.py`, {result['finished']}, on {m['cores']} cores ({m['cpu']}), {m['os']}. "
        f"{c['clients']} clients at once, {c['per_client']} state changes each ({result['state_changes']} in "
        f"{result['posts_seconds']} s): a resident's \"not fixed\" POSTed to gunicorn ({c['web_workers']} sync "
        f"workers), mailed to the reporter through the history trigger's outbox row, Redis, a `celery worker` "
        f"({c['mail_workers']} prefork processes) and SMTP to a local aiosmtpd server; the floor hands as many "
        "mails of the same size straight to that server from as many threads. "
        f"Load average (1, 5, 15 min) before: {', '.join(map(str, m['load_average_before']))}; after: "
        f"{', '.join(map(str, m['load_average_after']))} "
        + ("(an idle machine before the run; the load after is the bench's own web, worker and clients)."
           if m['load_average_before'][0] < 0.5 else
           "(a shared, loaded machine: other work ran on the same cores, so compare the ratio)."),
        "",
        table(result),
        "",
        f"Mails accepted: {result['mails_accepted']} of {result['state_changes']}; complaints reopened: "
        f"{result['reopened']}; event mails left unsent: {result['event_mails_unsent']}.",
        f"<!-- {marker}:end -->",
    ])
    readme = o311.README
    text = readme.read_text(encoding="utf-8") if readme.exists() else "# Benchmarks\n"
    start, end = text.find(f"<!-- {marker}:start -->"), text.find(f"<!-- {marker}:end -->")
    if start != -1 and end != -1:
        text = text[:start] + section + text[end + len(f"<!-- {marker}:end -->"):]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    readme.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
