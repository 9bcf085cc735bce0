#!/usr/bin/env python3
"""The web tier that `make demo` starts: nginx in front, gunicorn behind it, as an unprivileged user.

    .venv/bin/python scripts/serve.py [--host 127.0.0.1] [--port 8000] [--process NAME=COMMAND ...]
    .venv/bin/python scripts/serve.py --no-front --bind unix:/run/ourcity/app.sock   # behind a front of your own

nginx (Debian's) listens on HOST:PORT and reads every request whole, headers and body, before it hands it to
gunicorn's sync workers over a unix socket that only the service user can reach; it reads each answer whole
before it sends it on. A slow client costs nginx a connection, never a worker. nginx cuts off clients that
stall (client_header_timeout, client_body_timeout, send_timeout) and refuses a body past the limit of its path
(413) before any of it reaches Django. docs/deployment.md describes every setting and its variable.

Started as root, it creates the system user OURCITY_SERVE_USER (`ourcity`) the first time, gives it the
directories it writes (the serve directory, MEDIA_ROOT, OURCITY_IMPORTS_DIR, the mail directory), drops its own
privileges to it, and only then starts anything: no process of the web tier runs as root, and the code and
.venv stay read-only to that user. Started as another user, it runs everything as that user.

Ctrl-C, SIGTERM or SIGHUP stop every process gracefully (a second one kills them); when one process exits on
its own, the others are stopped and the launcher exits 1. Further long-running processes (the task queue's
workers, the scheduler) run the same way, as the same user, stopped together: --process NAME=COMMAND.
"""
import argparse
import ctypes
import fcntl
import grp
import html
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "scripts" / "nginx.conf.template"
MIB = 1024 * 1024

# Every setting of the web tier, its variable and default (docs/deployment.md has the same table).
SETTINGS = {
    "web_workers": ("OURCITY_WEB_WORKERS", 3),               # gunicorn sync workers
    "web_timeout": ("OURCITY_WEB_TIMEOUT", 60),              # s a worker may spend on one request
    "web_graceful_timeout": ("OURCITY_WEB_GRACEFUL_TIMEOUT", 10),  # s to finish requests on stop
    "header_timeout": ("OURCITY_FRONT_HEADER_TIMEOUT", 10),  # s for the whole request line and headers
    "body_timeout": ("OURCITY_FRONT_BODY_TIMEOUT", 20),      # s between two reads of the body
    "send_timeout": ("OURCITY_FRONT_SEND_TIMEOUT", 20),      # s between two writes of the answer
    "keepalive_timeout": ("OURCITY_FRONT_KEEPALIVE_TIMEOUT", 15),  # s an idle kept-alive connection stays
    "conn_per_client": ("OURCITY_FRONT_CONN_PER_CLIENT", 64),  # connections with a request, per address
    "front_workers": ("OURCITY_FRONT_WORKERS", 1),           # nginx worker processes
    "front_worker_connections": ("OURCITY_FRONT_WORKER_CONNECTIONS", 1024),
}
SAFE_WORD = re.compile(r"^[A-Za-z0-9_./+@:\[\]-]+$")  # what goes into nginx.conf unquoted (paths, numbers)
QUOTED_SAFE = re.compile(r"^[^'\\$\n]*$")  # what goes into a '...' string of it


# mount(2) and unshare(2) flags (linux/mount.h, linux/sched.h), for expose_runtime.
CLONE_NEWNS, MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = (
    0x00020000, 1, 2, 4, 32, 4096, 16384, 1 << 18)
PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER = 1, 36  # prctl(2)


class Refusal(Exception):
    """A one-line reason not to start (printed as `error: ...`, exit 2)."""


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--host", default="127.0.0.1", help="address the front listens on")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--no-front", action="store_true",
                        help="no nginx: gunicorn alone on --bind, for a deployment with a front of its own")
    parser.add_argument("--bind", help="gunicorn's address with --no-front (unix:/path or host:port)")
    parser.add_argument("--process", action="append", default=[], metavar="NAME=COMMAND",
                        help="one more process to run as the same user and stop together (may be repeated)")
    parser.add_argument("--facts", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.facts:
        print(json.dumps(app_facts()))
        return 0
    try:
        return serve(args)
    except Refusal as refusal:
        print(f"error: {refusal}", file=sys.stderr)
        return 2


def read_settings():
    values = {}
    for key, (name, default) in SETTINGS.items():
        raw = os.environ.get(name, "")
        if raw == "":
            values[key] = default
            continue
        if not raw.isdigit() or int(raw) < 1:
            raise Refusal(f"{name} must be a whole number of 1 or more, got {raw!r}")
        values[key] = int(raw)
    return values


def serve(args):
    config = read_settings()
    extras = [parse_process(spec) for spec in args.process]
    if args.no_front and not args.bind:
        raise Refusal("--no-front needs --bind (unix:/path or host:port)")
    serve_dir = Path(os.environ.get("OURCITY_SERVE_DIR", ROOT / "var" / "serve")).resolve()
    run_dir, tmp_dir, log_dir = serve_dir / "run", serve_dir / "tmp", serve_dir / "log"
    nginx = None if args.no_front else (shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin"))
    if not args.no_front and not nginx:
        raise Refusal("nginx is not installed (make setup installs it: scripts/system-deps.sh)")

    account = service_account()
    if account is not None:
        expose_runtime(account)
        share_secret_key(account)
    facts = facts_as(account)
    writable = [serve_dir, run_dir, tmp_dir, log_dir] + [Path(p) for p in facts["writable"]]
    prepare_dirs(writable, account)
    if account is not None:
        drop_privileges(account)
    lock = take_lock(run_dir / "serve.lock")

    env = child_env(account)
    if not args.no_front and not env.get("OURCITY_SITE_URL", "").strip():
        # The links in mails (written by the worker, which has no request to go by) point at where this serves.
        env["OURCITY_SITE_URL"] = site_url(args.host, args.port)
    if not args.no_front:
        # Behind this front every request comes over the unix socket, where REMOTE_ADDR is empty (0.0.0.0 to the
        # client-address detection), with X-Forwarded-For set by nginx alone: that detection may trust it.
        env.setdefault("OURCITY_TRUSTED_PROXIES", "0.0.0.0")
    socket_path = run_dir / "gunicorn.sock"
    bind = args.bind if args.no_front else f"unix:{socket_path}"
    if not args.no_front:
        conf = serve_dir / "nginx.conf"
        conf.write_text(front_config(args.host, args.port, config, facts, run_dir, tmp_dir, log_dir, socket_path),
                        encoding="utf-8")
        if socket_path.exists() or socket_path.is_symlink():
            socket_path.unlink()  # left by a launcher that was killed; the lock says none runs now

    user = pwd.getpwuid(os.getuid()).pw_name
    if not args.no_front:
        check_port_free(args.host, args.port)
    # Orphans of our children (a worker whose master was killed) come to the launcher, which reaps them.
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1)
    processes = []

    def interrupted(_signum, _frame):
        raise KeyboardInterrupt

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # while starting: stop what has started
        signal.signal(signum, interrupted)
    try:
        gunicorn = start("gunicorn", gunicorn_command(bind, config, env), env, processes)
        if not args.no_front:
            wait_for(lambda: socket_path.exists(), gunicorn, "gunicorn did not open its socket", 60)
            pid_file = run_dir / "nginx.pid"
            pid_file.unlink(missing_ok=True)
            front = start("nginx", [nginx, "-p", str(serve_dir), "-c", str(conf), "-e", "stderr"], env, processes)
            # nginx writes its pid file once it listens (another server on the port would answer a probe)
            wait_for(lambda: read_pid(pid_file) == front.pid, front, f"nginx did not listen on {args.port}", 20)
            print(f"serving http://{args.host}:{args.port}/ (nginx front, gunicorn {config['web_workers']} sync "
                  f"workers on {socket_path}) as user {user}", flush=True)
        else:
            wait_for(lambda: listening(bind), gunicorn, f"gunicorn did not listen on {bind}", 60)
            print(f"serving on {bind} (gunicorn {config['web_workers']} sync workers, no front) as user {user}",
                  flush=True)
        for name, command in extras:
            start(name, command, env, processes)
        return supervise(processes, config["web_graceful_timeout"] + 5)
    except (Refusal, KeyboardInterrupt) as reason:
        stop(processes, config["web_graceful_timeout"] + 5)
        if isinstance(reason, KeyboardInterrupt):
            print("stopped while starting", file=sys.stderr)
            return 1
        raise
    finally:
        lock.close()


def parse_process(spec):
    name, sep, command = spec.partition("=")
    if not sep or not name.strip() or not command.strip():
        raise Refusal(f"--process takes NAME=COMMAND, got {spec!r}")
    return name.strip(), shlex.split(command)


# --- the facts the front takes from Django's settings (each limit is the app's own) ---

def app_facts():
    """Run in a child process (`--facts`): Django's settings and URLs, so the launcher itself stays small."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "geo_ourcity.settings")
    import django
    from django.conf import settings
    from django.urls import reverse

    django.setup()
    writable = [settings.MEDIA_ROOT, settings.IMPORTS_DIR]
    if getattr(settings, "EMAIL_FILE_PATH", None):
        writable.append(settings.EMAIL_FILE_PATH)
    paths = {"open311": reverse("open311:discovery", kwargs={"fmt": "json"}).rsplit("/", 1)[0] + "/",
             "upload": reverse("admin:importers_importrun_upload"), "report": reverse("web:report"), "default": "/"}
    limits = {name: body_limit(settings, path, name) for name, path in paths.items()}
    # Whom the upload page's large cap is for is the app's rule: the front asks this URL before reading a body.
    paths["upload_allowed"] = reverse("admin:importers_importrun_upload_allowed")
    return {"static_root": str(settings.STATIC_ROOT), "writable": [str(p) for p in writable], "paths": paths,
            "limits": limits, "language": settings.LANGUAGE_CODE, "pages": front_pages(settings.LANGUAGE_CODE)}


# The front's own short pages (nginx answers these before Django sees the request), in English; each is shown in
# the city's default language (locale/) above the English text, or in English alone where it has no translation.
FRONT_PAGES = {
    "413": ("Request too large", "The server does not take requests this large: make the files smaller or send "
                                 "them one by one."),
    "429": ("Too many connections", "Too many connections from your address at once. Try again in a moment."),
    "503": ("Service unavailable for a moment", "Try again shortly."),
}


def front_pages(language):
    """{status: [(lang, title, text), ...]}: the default language's first, English's last (once)."""
    from django.utils import translation

    with translation.override(language):
        local = {status: (translation.gettext(title), translation.gettext(text))
                 for status, (title, text) in FRONT_PAGES.items()}
    out = {}
    for status, (title, text) in FRONT_PAGES.items():
        own = [(language, *local[status])] if local[status] != (title, text) else []
        out[status] = [*own, ("en", title, text)]
    return out


def body_limit(settings, path, name):
    """The largest body the app takes on this path: its per-path caps (REQUEST_BODY_LIMITS: the first pattern
    that matches names the setting, whatever condition the entry has: the front asks the app about those) where
    the settings have them, else the limits of the forms behind it."""
    import re as regex

    for pattern, setting, *_responder in getattr(settings, "REQUEST_BODY_LIMITS", ()):
        if regex.search(pattern, path):
            return getattr(settings, setting)
    if name == "upload":  # a dataset and its mapping spec, with room for the form's other fields
        from importers.uploads import SPEC_MAX_BYTES

        return settings.IMPORT_UPLOAD_MAX_BYTES + SPEC_MAX_BYTES + MIB
    return settings.OPEN311_MAX_BODY_BYTES  # a report with its photos: the web form's and Open311's largest


def facts_as(account):
    """The facts, read by a child process (as the service user when one is used: it also proves it can read
    the code and .venv)."""
    kwargs = {}
    if account is not None:
        kwargs = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": service_groups(account)}
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--facts"], cwd=ROOT,
                          env=child_env(account), capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        who = f"user {account.pw_name}" if account else "this user"
        if "Permission denied" in done.stderr:
            raise Refusal(f"{who} can not read the project in {ROOT} ({last}); put the checkout where it can "
                          f"be read (e.g. under /srv) or give it read access")
        raise Refusal(f"the project's settings could not be read as {who}: {last}")
    return json.loads(done.stdout)


def front_config(host, port, config, facts, run_dir, tmp_dir, log_dir, socket_path):
    limits = facts["limits"]
    values = {
        "HOST": f"[{host}]" if ":" in host else host, "PORT": str(port),
        "RUN_DIR": str(run_dir), "TMP_DIR": str(tmp_dir), "LOG_DIR": str(log_dir), "APP_SOCKET": str(socket_path),
        "FRONT_WORKERS": str(config["front_workers"]),
        "FRONT_WORKER_CONNECTIONS": str(config["front_worker_connections"]),
        "FRONT_HEADER_TIMEOUT": str(config["header_timeout"]),
        "FRONT_BODY_TIMEOUT": str(config["body_timeout"]),
        "FRONT_SEND_TIMEOUT": str(config["send_timeout"]),
        "FRONT_KEEPALIVE_TIMEOUT": str(config["keepalive_timeout"]),
        "FRONT_CONN_PER_CLIENT": str(config["conn_per_client"]),
        # gunicorn replaces a worker at its timeout; nginx gives up 5 s later (503 to the client).
        "PROXY_TIMEOUT": str(config["web_timeout"] + 5),
        "MAX_BODY_DEFAULT": str(limits["default"]),
        "MAX_BODY_OPEN311": str(limits["open311"]),
        "MAX_BODY_UPLOAD": str(limits["upload"]),
        "MAX_BODY_REPORT": str(limits["report"]),
        "OPEN311_PREFIX": facts["paths"]["open311"],
        "UPLOAD_PATH": facts["paths"]["upload"],
        "UPLOAD_ALLOWED_PATH": facts["paths"]["upload_allowed"],
        "REPORT_PATH": facts["paths"]["report"],
        "OPEN311_413": f"The request is larger than {limits['open311'] / MIB:.1f} MB.",
        "OPEN311_429": "Too many connections from this address at once; try again in a moment.",
        "OPEN311_503": "The service is unavailable for a moment; try again shortly.",
        **{f"PAGE_{status}": page(versions) for status, versions in facts["pages"].items()},
    }
    for name, value in values.items():
        quoted = name.startswith(("PAGE_", "OPEN311_4", "OPEN311_5"))  # inside '...' in the template
        if not (QUOTED_SAFE if quoted else SAFE_WORD).match(value):
            raise Refusal(f"{name}={value!r} can not go into nginx.conf (spaces or special characters)")
    text = TEMPLATE.read_text(encoding="utf-8")
    text = re.sub(r"@([A-Z0-9_]+)@", lambda m: values[m.group(1)], text)
    return text


def page(versions):
    """A short HTML page from [(lang, title, text), ...] (app_facts' pages): the first language is the page's."""
    versions = [[html.escape(str(part)) for part in version] for version in versions]
    first = versions[0][0]
    parts = []
    for lang, title, text in versions:
        attr = "" if lang == first else f' lang="{lang}"'
        parts.append(f"<h1{attr}>{title}</h1><p{attr}>{text}</p>")
    titles = " / ".join(title for _, title, _ in versions)
    return (f'<!doctype html><html lang="{first}"><head><meta charset="utf-8"><title>{titles}</title></head>'
            f'<body>{"".join(parts)}</body></html>')


# gunicorn's access log, with the client's address as the front gave it (REMOTE_ADDR is empty on a unix socket).
ACCESS_FORMAT = '%({x-forwarded-for}i)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s" %(M)sms'


def gunicorn_command(bind, config, env):
    return [str(ROOT / ".venv" / "bin" / "gunicorn"), "geo_ourcity.wsgi:application",
            "--bind", bind, "--workers", str(config["web_workers"]), "--worker-class", "sync",
            "--timeout", str(config["web_timeout"]), "--graceful-timeout", str(config["web_graceful_timeout"]),
            "--access-logfile", env.get("OURCITY_WEB_ACCESS_LOG") or "-", "--access-logformat", ACCESS_FORMAT,
            "--error-logfile", "-",
            "--no-control-socket", "--chdir", str(ROOT)]


# --- the service user ---

def service_account():
    """None when not root (everything runs as the invoking user); else the service user, created if missing."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get("OURCITY_SERVE_USER", "ourcity")
    if not re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", name) or name == "root":
        raise Refusal(f"OURCITY_SERVE_USER={name!r} is not an unprivileged user name")
    try:
        account = pwd.getpwnam(name)
    except KeyError:
        print(f"creating the system user {name} (runs the web tier; owns only what it writes under var/)",
              flush=True)
        # Its group: a group of its name if there is one already (scripts/pg.sh makes `ourcity`, the group that
        # may reach the database's socket), else a new one.
        group = ["--gid", name] if group_id(name) is not None else ["--user-group"]
        done = subprocess.run(["useradd", "--system", *group, "--no-create-home", "--home-dir", "/nonexistent",
                               "--shell", "/usr/sbin/nologin", "--comment", "geo_ourcity web tier", name],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise Refusal(f"could not create the user {name}: {done.stderr.strip()}")
        account = pwd.getpwnam(name)
    if account.pw_uid == 0 or account.pw_gid == 0:
        raise Refusal(f"user {name} has uid or gid 0")
    return account


def group_id(name):
    try:
        return grp.getgrnam(name).gr_gid
    except KeyError:
        return None


def service_groups(account):
    """Supplementary groups of the service user: the group that may reach the embedded database's socket
    (OURCITY_DB_GROUP of scripts/pg.sh, default `ourcity`) when that is not its own group already."""
    gid = group_id(os.environ.get("OURCITY_DB_GROUP", "ourcity"))
    return [gid] if gid not in (None, 0, account.pw_gid) else []


def can_pass(path, account):
    """Whether the service user may search (pass through) this directory, from its mode bits."""
    st = os.stat(path)
    if st.st_uid == account.pw_uid:
        return bool(st.st_mode & stat.S_IXUSR)
    if st.st_gid in {account.pw_gid, *service_groups(account)}:
        return bool(st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IXOTH)


def blocked_ancestor(path, account):
    """The first directory on the way to `path` that the service user may not pass, or None."""
    current = Path("/")
    for part in Path(path).parts[1:]:
        if not can_pass(current, account):
            return current
        current = current / part
    return None


def expose_runtime(account):
    """The service user must run the interpreter and read the code. Where one of them lies under a directory it
    can not pass (Python built by pyenv under root's home, mode 0700, on this kind of machine), the launcher takes
    a mount namespace of its own, for itself and its children only: it covers that directory with an empty
    tmpfs and mounts back into it just the interpreter's prefix (read-only) and the checkout. Nothing else of
    that directory is visible to the web tier, and nothing changes outside the namespace."""
    needed = [Path(os.path.realpath(sys.base_prefix)), ROOT]
    blocked = {}
    for path in needed:
        ancestor = blocked_ancestor(path, account)
        if ancestor is not None:
            blocked.setdefault(ancestor, []).append(path)
    if not blocked:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]

    def check(result, what):
        if result != 0:
            error = ctypes.get_errno()
            where = ", ".join(str(p) for p in needed if blocked_ancestor(p, account))
            raise Refusal(f"user {account.pw_name} can not reach {where}, and {what} failed "
                          f"({os.strerror(error)}): put Python and the checkout where that user can read them")

    check(libc.unshare(CLONE_NEWNS), "a mount namespace")
    check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "making mounts private")
    for ancestor, paths in sorted(blocked.items(), key=lambda item: len(item[0].parts), reverse=True):
        handles = {path: os.open(path, os.O_PATH | os.O_DIRECTORY) for path in paths}  # before it is covered
        check(libc.mount(b"tmpfs", str(ancestor).encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"mode=0755,size=64k"),
              f"covering {ancestor}")
        for path, handle in handles.items():
            path.mkdir(parents=True, exist_ok=True)
            check(libc.mount(f"/proc/self/fd/{handle}".encode(), str(path).encode(), None, MS_BIND | MS_REC, None),
                  f"mounting {path}")
            if path != ROOT:  # the interpreter: read-only whatever its modes say
                check(libc.mount(None, str(path).encode(), None, MS_BIND | MS_REMOUNT | MS_RDONLY, None),
                      f"making {path} read-only")
            os.close(handle)
    print(f"user {account.pw_name} sees only {', '.join(str(p) for ps in blocked.values() for p in ps)} of "
          f"{', '.join(str(a) for a in blocked)} (a mount namespace of the launcher's)", flush=True)


def share_secret_key(account):
    """This checkout's var/secret_key (scripts/secret-key.sh: root's, 0600) becomes readable by the service user's
    group (0640, still root's, so the web tier can read it but not replace it). A key given by SECRET_KEY or by a
    SECRET_KEY_FILE outside var/ is left as it is."""
    if os.environ.get("SECRET_KEY", "").strip():
        return
    var = (ROOT / "var").resolve()
    path = Path(os.environ.get("SECRET_KEY_FILE", "").strip() or var / "secret_key").resolve()
    if var not in path.parents or not path.is_file() or path.is_symlink():
        return
    os.chown(path, 0, account.pw_gid)
    os.chmod(path, 0o640)


def prepare_dirs(paths, account):
    """Create the directories the web tier writes; as root, give them (and what is in them) to the service user.
    Outside the checkout's var/ nothing is changed: such a directory must already be the service user's."""
    var = (ROOT / "var").resolve()
    for path in paths:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        if account is None:
            continue
        real = path.resolve()
        if real == var or var not in real.parents:
            if real.stat().st_uid != account.pw_uid:
                raise Refusal(f"{path} is outside {var} and not owned by {account.pw_name}: chown it to that user "
                              "(nothing outside var/ is changed by this launcher)")
            continue
        os.lchown(real, account.pw_uid, account.pw_gid)
        for parent, dirs, files in os.walk(real):  # symlinks are not followed: lchown changes the link only
            for name in dirs + files:
                os.lchown(os.path.join(parent, name), account.pw_uid, account.pw_gid)


def take_lock(path):
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise Refusal(f"another scripts/serve.py runs on {path.parent.parent}; stop it first (or set "
                      "OURCITY_SERVE_DIR)") from None
    return handle


def drop_privileges(account):
    os.setgroups(service_groups(account))
    os.setgid(account.pw_gid)
    os.setuid(account.pw_uid)
    if os.getuid() == 0 or os.geteuid() == 0:
        raise Refusal("could not drop root privileges")


def site_url(host, port):
    """The address the front serves on, for the links in mails: an unspecified address (0.0.0.0, ::) as the loopback
    one, an IPv6 address in brackets."""
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"


def child_env(account):
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "geo_ourcity.settings")
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # the code is read-only to the service user
    if account is not None:
        env.update(HOME=str(ROOT / "var" / "serve"), USER=account.pw_name, LOGNAME=account.pw_name)
    return env


# --- the processes ---

def _in_child():
    # If the launcher dies without stopping its children (SIGKILL), the kernel sends them SIGTERM.
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def start(name, command, env, processes):
    try:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, process_group=0, preexec_fn=_in_child)
    except OSError as e:
        raise Refusal(f"{name} could not start: {e}") from None
    proc.name = name
    processes.append(proc)
    return proc


def read_pid(path):
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def listening(bind):
    """Whether something listens on a gunicorn --bind address (unix:/path or host:port)."""
    if bind.startswith("unix:"):
        return Path(bind[5:]).exists()
    host, _, port = bind.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]") or "127.0.0.1", int(port)), timeout=1):
            return True
    except (OSError, ValueError):
        return False


def check_port_free(host, port):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as nginx does: TIME_WAIT is no obstacle
        try:
            probe.bind((host, port))
        except OSError as e:
            raise Refusal(f"can not listen on {host}:{port}: {e.strerror} (set PORT to a free port)") from None


def wait_for(ready, proc, message, seconds):
    deadline = time.monotonic() + seconds
    while not ready():
        if proc.poll() is not None:
            raise Refusal(f"{proc.name} exited with code {proc.returncode} while starting (its output is above)")
        if time.monotonic() > deadline:
            raise Refusal(message)
        time.sleep(0.1)


STOP_SIGNALS = {"nginx": signal.SIGQUIT}  # nginx: graceful on QUIT (TERM is its fast stop); the others: TERM


def supervise(processes, grace):
    stopping = []

    def on_signal(signum, _frame):
        stopping.append(signum)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    while not stopping:
        gone = [p for p in processes if p.poll() is not None]
        if gone:
            for proc in gone:
                print(f"{proc.name} exited with code {proc.returncode}; stopping the others", file=sys.stderr,
                      flush=True)
            stop(processes, grace, stopping)
            return 1
        time.sleep(0.2)
    stop(processes, grace, stopping)
    return 0


def stop(processes, grace, signals_seen=None):
    signals_seen = signals_seen if signals_seen is not None else []
    seen_before = len(signals_seen)
    for proc in processes:
        if proc.poll() is None:
            signal_group(proc, STOP_SIGNALS.get(proc.name, signal.SIGTERM))
    deadline = time.monotonic() + grace
    while any(p.poll() is None for p in processes):
        if time.monotonic() > deadline or len(signals_seen) > seen_before:  # a second Ctrl-C: no more waiting
            for proc in processes:
                signal_group(proc, signal.SIGKILL)
            break
        time.sleep(0.1)
    for proc in processes:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    # Whatever is left in their process groups (a worker that outlived its master) goes too, and every child
    # the launcher inherited is reaped: nothing of the web tier outlives it, not even as a zombie.
    for proc in processes:
        signal_group(proc, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            time.sleep(0.05)


def signal_group(proc, signum):
    """Signal the process group the launcher made for this child (the child and its own children only)."""
    try:
        os.killpg(proc.pid, signum)
    except ProcessLookupError:
        pass


if __name__ == "__main__":
    sys.exit(main())
