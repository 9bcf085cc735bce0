"""Two app servers (gunicorn, as scripts/serve.py starts the web tier) on two free ports, against the one test
database and the one Redis, with their files in one bucket of a real S3-compatible server (moto's, over HTTP):
what a load balancer would put in front of. One sync worker each, so that "server A" and "server B" are one
process each and a process-local memo on either would show."""
import html.parser
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests import s3server
from tests.conftest import GENEROUS

ROOT = Path(__file__).resolve().parents[2]
# Small shared limits, so that a count kept per process would show: code lookups and failed logins.
LOOKUPS_PER_MINUTE = 6
LOGIN_FAILURES = 3


class Server:
    def __init__(self, name, env, log_dir):
        self.name, self.port = name, s3server.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log_dir / f"gunicorn-{name}.log", "wb")
        self.proc = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "gunicorn"), "geo_ourcity.wsgi:application", "--bind",
             f"127.0.0.1:{self.port}", "--workers", "1", "--worker-class", "sync", "--timeout", "120",
             "--log-level", "warning"], cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, seconds=120):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server {self.name} exited with {self.proc.returncode}: "
                                     f"{Path(self.log.name).read_text(errors='replace')}")
            try:
                urllib.request.urlopen(f"{self.url}/open311/v2/discovery.json", timeout=10).read()
                return
            except OSError:
                time.sleep(0.3)
        raise AssertionError(f"server {self.name} did not answer within {seconds} s")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def __repr__(self):
        return f"<server {self.name} {self.url}>"


@pytest.fixture(scope="module")
def servers(django_db_setup, shared_cache, task_queue):
    """(A, B, endpoint, bucket): two gunicorn servers sharing the test database, its Redis key prefix, this run's
    task queue and one S3 bucket."""
    from django.db import connection

    from geo_ourcity.celery import app

    log_dir = Path(tempfile.mkdtemp(prefix="test-two-servers-", dir=ROOT / "var"))
    with s3server.s3_server(str(log_dir)) as endpoint:
        bucket = f"ourcity-{uuid.uuid4().hex[:12]}"
        s3server.client(endpoint).create_bucket(Bucket=bucket)
        env = {**{k: v for k, v in os.environ.items() if not k.startswith(("OURCITY_", "DJANGO_SETTINGS"))},
               "OURCITY_DB_NAME": connection.settings_dict["NAME"],
               "OURCITY_CELERY_QUEUE": task_queue, "OURCITY_CELERY_KEY_PREFIX": app.conf["CELERY_KEY_PREFIX"],
               "MEDIA_ROOT": str(log_dir / "media"),
               "OURCITY_IMPORTS_DIR": str(log_dir / "imports"),
               **{f"OURCITY_LIMIT_{name}": GENEROUS for name in ("WEB_REPORTS", "OPEN311_POSTS",
                                                                  "OPEN311_BAD_KEYS", "OPEN311_TOKEN_LOOKUPS")},
               "OURCITY_LIMIT_CODE_LOOKUPS": f"{LOOKUPS_PER_MINUTE}/m",
               "OURCITY_LOGIN_FAILURE_LIMIT": str(LOGIN_FAILURES),
               **s3server.storage_environ(endpoint, bucket)}
        pair = [Server("A", env, log_dir), Server("B", env, log_dir)]
        try:
            for server in pair:
                server.wait_ready()
            yield pair[0], pair[1], endpoint, bucket
        finally:
            for server in pair:
                server.stop()
    shutil.rmtree(log_dir, ignore_errors=True)


class _Forms(html.parser.HTMLParser):
    """The named fields of the forms of a page, with the values a browser would send unchanged."""

    def __init__(self):
        super().__init__()
        self.forms, self._select, self._textarea = [], None, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "fields": []})
        elif not self.forms:
            return
        fields = self.forms[-1]["fields"] if self.forms else None
        if tag == "input" and a.get("name") and a.get("type", "text") not in ("submit", "button", "file", "image"):
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                return
            fields.append((a["name"], a.get("value", "on" if a.get("type") == "checkbox" else "")))
        elif tag == "select" and a.get("name"):
            self._select = a["name"]
        elif tag == "option" and self._select and "selected" in a:
            fields.append((self._select, a.get("value", "")))
        elif tag == "textarea" and a.get("name"):
            self._textarea = [a["name"], ""]

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea[1] += data

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            name, value = self._textarea
            self.forms[-1]["fields"].append((name, value.removeprefix("\n")))
            self._textarea = None


def page_form(page_html, containing):
    """The fields of the page's form that has a field named `containing`, as a list of (name, value)."""
    parser = _Forms()
    parser.feed(page_html)
    for form in parser.forms:
        if any(name == containing for name, _ in form["fields"]):
            return form["fields"]
    raise AssertionError(f"no form with a field {containing!r}")
