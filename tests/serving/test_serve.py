"""The web tier that `make demo` runs (scripts/serve.py): nginx buffering in front of gunicorn's sync workers.

One launcher is started for the module, as `make demo` starts it (as root when the suite runs as root), on a
free port, against the test database, with short front timeouts and small body limits from the environment.
Slow clients must not stop other requests from being answered, stalled clients are cut off by the front, a body
past its path's limit is refused by the front before Django sees any of it, and no process runs as root.
"""
import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from xml.etree import ElementTree

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = ROOT / "scripts" / "serve.py"
MIB = 1024 * 1024
TIMEOUT = 3  # the front's header, body, send and keep-alive timeouts in this module (seconds)
PROMPT = 5   # a correctness bound for "answered promptly", not a benchmark
# Small limits, so that a body past them is quick to send: photos of 1 MB, one per report, datasets of 2 MB.
SMALL_LIMITS = {"OURCITY_PHOTO_MAX_MB": "1", "OURCITY_PHOTO_MAX_PER_COMPLAINT": "1",
                "OURCITY_IMPORT_UPLOAD_MAX_MB": "2"}
# The launcher's gunicorn uses the test database (migrated, the demo city loaded): the tests ask for it.
pytestmark = pytest.mark.django_db
FAST = ["/open311/v2/services.json", "/open311/v2/discovery.xml", "/tiles/complaints/10/619/320.mvt",
        "/map/districts.geojson"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Launcher:
    def __init__(self, db_name, *extra_args, port=None, **extra_env):
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="test-serve-", dir=ROOT / "var"))
        self.app_log = self.dir / "log" / "app-access.log"
        self.output = self.dir / "launcher.out"
        env = {**os.environ, "OURCITY_DB_NAME": db_name, "OURCITY_SERVE_DIR": str(self.dir),
               "OURCITY_WEB_ACCESS_LOG": str(self.app_log), "OURCITY_WEB_GRACEFUL_TIMEOUT": "3",
               "OURCITY_FRONT_HEADER_TIMEOUT": str(TIMEOUT), "OURCITY_FRONT_BODY_TIMEOUT": str(TIMEOUT),
               "OURCITY_FRONT_SEND_TIMEOUT": str(TIMEOUT), "OURCITY_FRONT_KEEPALIVE_TIMEOUT": str(TIMEOUT),
               "OURCITY_FRONT_CONN_PER_CLIENT": "40", **SMALL_LIMITS, **extra_env}
        env.pop("DJANGO_SETTINGS_MODULE", None)
        with open(self.output, "wb") as out:
            self.proc = subprocess.Popen([sys.executable, str(LAUNCHER), "--port", str(self.port), *extra_args],
                                         cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)

    def text(self):
        return self.output.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self, seconds=90):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the launcher exited with {self.proc.returncode}:\n{self.text()}")
            if "serving http://" in self.text():
                return self
            time.sleep(0.2)
        raise AssertionError(f"the launcher did not start within {seconds} s:\n{self.text()}")

    def descendants(self):
        return descendants(self.proc.pid)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def descendants(pid):
    """{pid: (name, uids, gids, groups)} of every process under `pid`, from /proc."""
    parents, info = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        parents[int(entry.name)] = int(fields["PPid"])
        info[int(entry.name)] = (fields["Name"].strip(), fields["Uid"].split(), fields["Gid"].split(),
                                 fields["Groups"].split())
    found, frontier = {}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in found:
                found[child] = info[child]
                frontier.append(child)
    return found


@pytest.fixture(scope="module")
def db_name(django_db_setup):
    from django.db import connection

    return connection.settings_dict["NAME"]


@pytest.fixture(scope="module")
def front(db_name):
    launcher = Launcher(db_name, "--process", f"sleeper={sys.executable} -c 'import time; time.sleep(3600)'")
    try:
        launcher.wait_ready()
        warm_up(launcher.port)
        yield launcher
    finally:
        launcher.cleanup()


def warm_up(port):
    """A worker's first request loads the URLs, views and a database connection (seconds on a busy machine):
    every worker answers each kind of request once before anything is asserted."""
    answers = []

    def each(path):
        answers.extend(get(port, path, timeout=120)[0] for _ in range(3))

    threads = [threading.Thread(target=each, args=(path,)) for path in FAST for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [200] * len(threads) * 3, answers


@pytest.fixture(scope="module")
def app_limits():
    """The largest body the app itself takes on each kind of path, under SMALL_LIMITS: the front must refuse
    just past these and let through just below them."""
    done = subprocess.run([sys.executable, str(LAUNCHER), "--facts"], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **SMALL_LIMITS}, check=True)
    limits = json.loads(done.stdout)["limits"]
    assert all(MIB <= limits[k] <= 8 * MIB for k in ("open311", "report", "upload")), limits
    return limits


def get(port, path, headers=(), timeout=PROMPT):
    """One HTTP/1.1 request on a connection of its own; (status, headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}Connection: close\r\n\r\n".encode())
        return parse_response(read_all(s))


def read_all(s):
    """One response: until its Content-Length is in, or the server closes (a front that refused a body keeps
    the connection a while to discard what the client still sends)."""
    raw = b""
    while chunk := s.recv(65536):
        raw += chunk
        head, sep, body = raw.partition(b"\r\n\r\n")
        length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
        if sep and length and len(body) >= int(length.group(1)):
            break
    return raw


def parse_response(raw):
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)}
    if headers.get("transfer-encoding") == "chunked":
        body = dechunk(body)
    return int(lines[0].split()[1]), headers, body


def dechunk(body):
    out = b""
    while body:
        size, _, rest = body.partition(b"\r\n")
        size = int(size.split(b";")[0], 16)
        if size == 0:
            break
        out, body = out + rest[:size], rest[size + 2:]
    return out


def wait_for_log(path, marker, seconds=3):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists() and marker in path.read_text(encoding="utf-8", errors="replace"):
            return True
        time.sleep(0.1)
    return False


class Trickler(threading.Thread):
    """A client that opens a connection, sends `prefix` at once and then `trickle` one byte per `interval`
    (for longer than any test when it is long), and notes when the server closed the connection."""

    def __init__(self, port, prefix, trickle, interval=0.3):
        super().__init__(daemon=True)
        self.port, self.prefix, self.trickle, self.interval = port, prefix, trickle, interval
        self.connected_at = self.closed_at = None
        self.received = b""
        self.stop_event = threading.Event()

    def run(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        self.connected_at = time.monotonic()
        try:
            if self.prefix:
                s.sendall(self.prefix)
            s.setblocking(False)
            for i in range(len(self.trickle)):
                if self.stop_event.wait(self.interval) or self._closed(s):
                    return
                s.setblocking(True)
                s.sendall(self.trickle[i:i + 1])
                s.setblocking(False)
            while not self.stop_event.wait(0.05) and not self._closed(s):
                pass
        except OSError:  # reset by the server while sending
            self.closed_at = self.closed_at or time.monotonic()
        finally:
            s.close()

    def _closed(self, s):
        """True once the server has closed the connection (an answer such as 408 may come before that)."""
        try:
            data = s.recv(65536)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        self.received += data
        if data:
            return False
        self.closed_at = time.monotonic()
        return True

    @property
    def held(self):
        return (self.closed_at or time.monotonic()) - self.connected_at


def slow_body(port, path="/open311/v2/requests.json"):
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: 1000\r\n\r\n").encode()
    return Trickler(port, head, b"x" * 1000)


def slow_headers(port):
    return Trickler(port, b"GET /open311/v2/services.json HTTP/1.1\r\n",
                    f"Host: 127.0.0.1:{port}\r\nX-Slow: {'y' * 2000}\r\n\r\n".encode())


def test_slow_clients_do_not_hold_the_workers(front):
    """Ten clients sending a body byte by byte and ten sending their headers byte by byte, against 3 sync
    workers: every other request is still answered promptly, while the slow clients are still sending."""
    slow = [slow_body(front.port) for _ in range(10)] + [slow_headers(front.port) for _ in range(10)]
    for client in slow:
        client.start()
    try:
        time.sleep(1)  # all of them connected and several bytes into their requests
        assert all(c.connected_at and c.closed_at is None for c in slow)
        started = time.monotonic()
        answers = [get(front.port, path) for _round in range(3) for path in FAST]
        took = time.monotonic() - started
        assert [status for status, _h, _b in answers] == [200] * len(answers)
        assert took < PROMPT, f"{len(answers)} requests took {took:.1f} s beside 20 slow clients"
        body_clients = slow[:10]
        assert all(c.closed_at is None for c in body_clients), "the slow bodies were cut off before the requests"
    finally:
        for client in slow:
            client.stop_event.set()


def test_stalled_clients_are_cut_off_by_the_front(front):
    """A client that sends nothing, one that trickles its headers (the header timeout bounds all of them), one
    that stops in the middle of its body and one that stays idle after an answer are closed by the front after
    its timeouts (3 s here), and the half-sent request never reached Django."""
    marker = f"stalled-{time.monotonic_ns()}"
    idle_after_answer = Trickler(front.port, f"GET /open311/v2/discovery.json?{marker}-keepalive HTTP/1.1\r\n"
                                             f"Host: x\r\n\r\n".encode(), b"")
    clients = {
        "connects and sends nothing": Trickler(front.port, b"", b""),
        "trickles its headers": slow_headers(front.port),
        "stops in the middle of its body": Trickler(
            front.port, (f"POST /open311/v2/requests.json?{marker} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n"
                         f"Content-Type: application/x-www-form-urlencoded\r\n\r\nservice_code=").encode(), b""),
    }
    for client in clients.values():
        client.start()
    idle_after_answer.start()
    for client in [*clients.values(), idle_after_answer]:
        client.join(TIMEOUT + 8)
    for kind, client in clients.items():
        assert client.closed_at is not None, f"a client that {kind} was not cut off"
        assert TIMEOUT - 0.5 <= client.held <= TIMEOUT + 3, f"a client that {kind} was held {client.held:.1f} s"
    # The kept-alive connection got its answer at once, then was closed after the keep-alive timeout.
    assert idle_after_answer.closed_at is not None
    assert wait_for_log(front.app_log, f"{marker}-keepalive")
    assert not wait_for_log(front.app_log, f"requests.json?{marker} ", seconds=1), "a half-sent body reached Django"


def upload_targets():
    return [("/open311/v2/requests.json", "open311", "json"), ("/open311/v2/requests.xml", "open311", "xml"),
            ("/report/", "report", "html"), ("/admin/importers/importrun/upload/", "upload", "html"),
            ("/staff/", "default", "html")]


@pytest.mark.parametrize("path, limit, kind", upload_targets())
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_body_past_the_limit_is_refused_before_django(front, app_limits, path, limit, kind, framing):
    marker = f"big-{framing}-{time.monotonic_ns()}"
    size = app_limits[limit] + 64 * 1024
    with socket.create_connection(("127.0.0.1", front.port), timeout=PROMPT) as s:
        head = f"POST {path}?{marker} HTTP/1.1\r\nHost: 127.0.0.1:{front.port}\r\nContent-Type: " \
               f"multipart/form-data; boundary=b\r\nConnection: close\r\n"
        if framing == "content-length":
            s.sendall(f"{head}Content-Length: {size}\r\n\r\n".encode())  # refused on the header, body unsent
        else:
            s.sendall(f"{head}Transfer-Encoding: chunked\r\n\r\n".encode())
            chunk = b"%x\r\n%s\r\n" % (64 * 1024, b"z" * 64 * 1024)
            try:
                for _ in range(size // (64 * 1024) + 1):
                    s.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the front answered and closed mid-body: what the test expects
        status, headers, body = parse_response(read_all(s))
    assert status == 413
    if kind == "json":
        assert headers["content-type"].startswith("application/json")
        [error] = json.loads(body)
        assert error["code"] == 413 and f"larger than {app_limits[limit] / MIB:.1f} MB" in error["description"]
    elif kind == "xml":
        assert headers["content-type"].startswith("text/xml")
        root = ElementTree.fromstring(body)
        assert root.tag == "errors" and root.find("error/code").text == "413"
    else:
        assert headers["content-type"].startswith("text/html")
        text = body.decode()
        assert "Запрос слишком велик" in text and "Request too large" in text
    assert not wait_for_log(front.app_log, marker, seconds=1), "the refused request reached Django"


@pytest.mark.parametrize("path, limit, kind", upload_targets())
def test_a_body_within_the_limit_reaches_django(front, app_limits, sessions, path, limit, kind):
    """The other side of the limit: the front's limits are the app's own, not tighter (the upload page's, for a
    user who may upload)."""
    marker = f"fits-{time.monotonic_ns()}"
    size = app_limits[limit] - 64 * 1024
    status = post_body(front.port, f"{path}?{marker}", size, cookie=sessions["importer"] if limit == "upload" else None)
    assert status != 413
    assert wait_for_log(front.app_log, marker)


def post_body(port, path, size, *, cookie=None, chunked=False):
    """POST `size` bytes (declared, or chunked) and read the answer's status."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        extra = f"Cookie: sessionid={cookie}\r\n" if cookie else ""
        framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/octet-stream\r\n"
                  f"{extra}{framing}\r\nConnection: close\r\n\r\n".encode())
        try:
            if chunked:
                for offset in range(0, size, 64 * 1024):
                    n = min(64 * 1024, size - offset)
                    s.sendall(b"%x\r\n%s\r\n" % (n, b"z" * n))
                s.sendall(b"0\r\n\r\n")
            else:
                s.sendall(b"z" * size)
        except (BrokenPipeError, ConnectionResetError):
            pass
        return parse_response(read_all(s))[0]


@pytest.fixture(scope="module")
def sessions(django_db_setup, django_db_blocker):
    """Session cookies the launcher's app accepts (committed: its gunicorn reads the test database itself): a
    user who may upload datasets, and a staff user who may not."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission
    from django.test import Client

    User = get_user_model()
    cookies = {}
    with django_db_blocker.unblock():
        importer = User.objects.create_user("serve-importer", password="x", is_staff=True)
        importer.user_permissions.add(Permission.objects.get(content_type__app_label="importers",
                                                             codename="add_importrun"))
        staff = User.objects.create_user("serve-staff", password="x", is_staff=True)
        for name, user in (("importer", importer), ("staff", staff)):
            client = Client()
            client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
            cookies[name] = client.cookies["sessionid"].value
    yield cookies
    with django_db_blocker.unblock():
        from django.contrib.sessions.models import Session

        Session.objects.filter(session_key__in=cookies.values()).delete()
        User.objects.filter(username__in=["serve-importer", "serve-staff"]).delete()


UPLOAD = "/admin/importers/importrun/upload/"


def body_files(front):
    body_dir = front.dir / "tmp" / "body"
    return [p for p in body_dir.rglob("*") if p.is_file()] if body_dir.exists() else []


@pytest.mark.parametrize("who", ["anonymous", "staff", "forged"])
@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_an_upload_past_the_ordinary_cap_is_refused_unread_unless_the_user_may_upload(
        front, app_limits, sessions, who, framing):
    """Anyone who may not upload gets the ordinary cap on the upload page: a larger body is refused at once, before
    the front reads it (nothing spooled to its temp directory, nothing reaches Django), though it is within the
    upload cap."""
    marker = f"upload-{who}-{framing}-{time.monotonic_ns()}"
    cookie = {"anonymous": None, "staff": sessions["staff"], "forged": "x" * 32}[who]
    size = app_limits["default"] + 256 * 1024
    assert size < app_limits["upload"] - 256 * 1024
    with socket.create_connection(("127.0.0.1", front.port), timeout=PROMPT) as s:
        extra = f"Cookie: sessionid={cookie}\r\n" if cookie else ""
        framing_header = "Transfer-Encoding: chunked" if framing == "chunked" else f"Content-Length: {size}"
        s.sendall(f"POST {UPLOAD}?{marker} HTTP/1.1\r\nHost: 127.0.0.1:{front.port}\r\nContent-Type: "
                  f"multipart/form-data; boundary=b\r\n{extra}{framing_header}\r\nConnection: close\r\n\r\n".encode())
        sent = 0
        try:  # 1.5 MB of it: past the front's 1 MB memory buffer, where a body it reads goes to a temp file
            for _ in range(24):
                s.sendall(b"%x\r\n%s\r\n" % (65536, b"z" * 65536) if framing == "chunked" else b"z" * 65536)
                sent += 1
        except (BrokenPipeError, ConnectionResetError):
            pass
        time.sleep(0.3)
        spooled = body_files(front)
        status, headers, body = parse_response(read_all(s))  # answered with most of the body unsent
    assert status == 413 and headers["content-type"].startswith("text/html")
    assert "Запрос слишком велик" in body.decode() and "Request too large" in body.decode()
    assert spooled == []
    assert not wait_for_log(front.app_log, marker, seconds=1), "the refused body reached Django"


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_user_who_may_upload_sends_a_body_past_the_ordinary_cap(front, app_limits, sessions, framing):
    marker = f"upload-importer-{framing}-{time.monotonic_ns()}"
    size = app_limits["default"] + 256 * 1024
    status = post_body(front.port, f"{UPLOAD}?{marker}", size, cookie=sessions["importer"],
                       chunked=framing == "chunked")
    assert status != 413  # (the front's refusal; Django's own answer here is CSRF's 403)
    assert wait_for_log(front.app_log, marker)


@pytest.mark.parametrize("who", ["anonymous", "staff"])
def test_within_the_ordinary_cap_the_upload_page_answers_as_before(front, app_limits, sessions, who):
    """Below the ordinary cap the front asks nothing of anyone: Django answers (the admin's login redirect, the
    page's 403 for a user without the permission)."""
    cookie = sessions["staff"] if who == "staff" else None
    marker = f"small-{who}-{time.monotonic_ns()}"
    status = post_body(front.port, f"{UPLOAD}?{marker}", app_limits["default"] - 256 * 1024, cookie=cookie)
    # Not the front's refusal: Django's answer (CSRF's 403, no token; or 503 when gunicorn closes the connection
    # after answering, before the front has sent it the whole unread body, as on any path).
    assert status != 413
    assert wait_for_log(front.app_log, marker)
    headers = [("Cookie", f"sessionid={cookie}")] if cookie else []
    assert get(front.port, UPLOAD, headers=headers)[0] == (403 if who == "staff" else 302)
    assert get(front.port, UPLOAD, headers=[("Cookie", f"sessionid={sessions['importer']}")])[0] == 200


def test_the_question_to_the_app_is_not_reachable_from_outside(front):
    assert get(front.port, "/admin/importers/importrun/upload/allowed")[0] == 404


def test_the_front_replaces_forwarding_headers(front):
    """What a client claims in X-Forwarded-For never reaches the app: the front sets the address it saw."""
    marker = f"xff-{time.monotonic_ns()}"
    status, _h, _b = get(front.port, f"/open311/v2/discovery.json?{marker}",
                         headers=[("X-Forwarded-For", "203.0.113.9"), ("Forwarded", "for=203.0.113.9"),
                                  ("X-Real-IP", "203.0.113.9")])
    assert status == 200
    assert wait_for_log(front.app_log, marker)
    [line] = [line for line in front.app_log.read_text().splitlines() if marker in line]
    assert line.startswith("127.0.0.1 ") and "203.0.113.9" not in line


def test_the_service_user_reaches_the_shared_cache(front):
    """The rate limits count in the shared Redis: as the service user, the app must reach its socket (it fails
    open, so an unreachable cache would show only as a limit that never answers 429)."""
    answers = [get(front.port, "/c/AAAA-BBBB-CCCC/") for _ in range(30)]
    statuses = [status for status, _, _ in answers]
    assert 429 in statuses, statuses
    limited = next(headers for status, headers, _ in answers if status == 429)
    assert int(limited["retry-after"]) > 0
    assert set(statuses[:20]) == {404}  # the first 20 a minute (the default) are looked up


def test_no_process_runs_as_root(front):
    processes = front.descendants()
    names = sorted(name for name, *_ in processes.values())
    # nginx (master, worker), gunicorn (master, 3 workers) and the extra process (the sleeper)
    assert names.count("nginx") == 2 and names.count("gunicorn") == 4 and len(processes) == 7, names
    uid = pwd.getpwnam("ourcity").pw_uid if os.geteuid() == 0 else os.geteuid()
    launcher = Path(f"/proc/{front.proc.pid}/status").read_text()
    processes[front.proc.pid] = ("launcher", re.search(r"^Uid:(.*)$", launcher, re.M).group(1).split(),
                                 re.search(r"^Gid:(.*)$", launcher, re.M).group(1).split(),
                                 re.search(r"^Groups:(.*)$", launcher, re.M).group(1).split())
    for pid, (name, uids, gids, groups) in processes.items():
        assert uids == [str(uid)] * 4, (pid, name, uids)
        assert "0" not in gids and "0" not in groups, (pid, name, gids, groups)
    if os.geteuid() == 0:
        user = "ourcity"
        for path in ("geo_ourcity/settings.py", "scripts/serve.py", ".venv/bin", "manage.py"):
            assert subprocess.run(["runuser", "-u", user, "--", "test", "-w", str(ROOT / path)]).returncode != 0, \
                f"{user} may write {path}"
        assert subprocess.run(["runuser", "-u", user, "--", "test", "-w", str(front.dir / "run")]).returncode == 0


def test_when_one_process_exits_the_others_are_stopped(db_name):
    launcher = Launcher(db_name, "--process", "quitter=sleep 2")
    try:
        launcher.wait_ready()
        running = launcher.descendants()
        assert len(running) >= 6
        launcher.proc.wait(timeout=40)
        assert launcher.proc.returncode == 1
        assert "quitter exited with code 0; stopping the others" in launcher.text()
        assert not [pid for pid in running if Path(f"/proc/{pid}").exists()]
    finally:
        launcher.cleanup()


def test_a_port_in_use_is_refused_in_one_line(front, db_name):
    """A second launcher on the same port says so in one line and leaves nothing running."""
    launcher = Launcher(db_name, port=front.port)
    try:
        assert launcher.proc.wait(timeout=60) == 2
        assert launcher.text().strip().splitlines()[-1] == \
            f"error: can not listen on 127.0.0.1:{front.port}: Address already in use (set PORT to a free port)"
        assert "Traceback" not in launcher.text() and "gunicorn" not in launcher.text()
        assert not launcher.descendants()
    finally:
        launcher.cleanup()


def test_ctrl_c_or_term_stops_everything(front):
    """Last in the module: the launcher of `make demo` stops nginx, gunicorn and the extra process together."""
    running = front.descendants()
    assert running
    front.proc.send_signal(signal.SIGINT)
    assert front.proc.wait(timeout=30) == 0
    time.sleep(0.5)
    assert not [pid for pid in running if Path(f"/proc/{pid}").exists()]


@pytest.mark.parametrize("env, args, message", [
    ({"OURCITY_WEB_WORKERS": "three"}, [], "OURCITY_WEB_WORKERS must be a whole number"),
    ({"OURCITY_FRONT_BODY_TIMEOUT": "0"}, [], "OURCITY_FRONT_BODY_TIMEOUT must be a whole number"),
    ({"OURCITY_FRONT_HEADER_TIMEOUT": "-5"}, [], "OURCITY_FRONT_HEADER_TIMEOUT must be a whole number"),
    ({"OURCITY_SERVE_USER": "root"}, [], "not an unprivileged user name") if os.geteuid() == 0 else
    ({"OURCITY_WEB_TIMEOUT": "1e3"}, [], "OURCITY_WEB_TIMEOUT must be a whole number"),
    ({}, ["--process", "no-equals-sign"], "--process takes NAME=COMMAND"),
    ({}, ["--no-front"], "--no-front needs --bind"),
])
def test_bad_settings_are_refused_in_one_line(env, args, message):
    done = subprocess.run([sys.executable, str(LAUNCHER), "--port", str(free_port()), *args], cwd=ROOT,
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]
    assert re.match(r"error: ", done.stderr) and message in done.stderr


@pytest.mark.parametrize("host, port, url", [
    ("127.0.0.1", 8123, "http://127.0.0.1:8123"), ("0.0.0.0", 80, "http://127.0.0.1:80"),
    ("::", 8000, "http://127.0.0.1:8000"), ("::1", 9000, "http://[::1]:9000"),
    ("city.example.org", 8080, "http://city.example.org:8080")])
def test_the_mails_links_point_at_where_the_launcher_serves(host, port, url):
    import importlib.util

    spec = importlib.util.spec_from_file_location("serve_launcher", LAUNCHER)
    launcher = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(launcher)
    assert launcher.site_url(host, port) == url
