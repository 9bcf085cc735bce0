"""Secure by default when deployed: the secret key, HTTPS from the environment, `check --deploy` clean.

Settings are read once per process, so each case runs Django in a process of its own with the environment under
test. The production environment is the one README's "Deploying" section documents, read from README itself.
"""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from geo_ourcity import env

BASE = Path(settings.BASE_DIR)
KEY = "k" * 20 + "x7Qp2Lm9Zr4Tv8Wc1Yb6Nd3Hf5Jg0Ks" + "Ae" * 10  # 72 characters, not a real one
REFUSAL = "error: SECRET_KEY is not set"


def documented_production_environment(secret_file):
    """The `KEY=value` lines of README's Deploying block, the secret key file put at `secret_file`."""
    readme = (BASE / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Deploying", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
    pairs = dict(re.findall(r"^(?:export )?([A-Z][A-Z0-9_]*)=(\S*)", block, re.M))
    assert {"OURCITY_HTTPS", "ALLOWED_HOSTS", "SECRET_KEY_FILE"} <= set(pairs), pairs
    return {**pairs, "SECRET_KEY_FILE": str(secret_file)}


def clean_environment(**values):
    """The test process's environment without any of the settings under test, plus `values`."""
    names = {"SECRET_KEY", "SECRET_KEY_FILE", "DEBUG", "ALLOWED_HOSTS"} | {
        n for n in os.environ if n.startswith(("OURCITY_HTTPS", "OURCITY_HSTS", "OURCITY_SSL", "OURCITY_BEHIND",
                                               "OURCITY_CSRF"))}
    environment = {k: v for k, v in os.environ.items() if k not in names}
    environment["PYTHONPATH"] = str(BASE)
    return {**environment, **values}


def django(code, environment, cwd=BASE):
    """Run `code` after django.setup() in a new process; its stdout parsed as JSON."""
    program = "import json, django; django.setup()\nfrom django.conf import settings\n" + code
    done = subprocess.run([sys.executable, "-c", program], cwd=cwd, env=environment, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / "secret_key"
    path.write_text(KEY + "\n")
    path.chmod(0o600)
    return path


def check_deploy(environment):
    return subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=BASE,
                          env=environment, capture_output=True, text=True, timeout=300)


def test_check_deploy_is_clean_with_the_documented_production_settings(key_file):
    done = check_deploy(clean_environment(**documented_production_environment(key_file)))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout
    assert "WARNINGS" not in done.stdout + done.stderr


def test_check_deploy_warns_without_https(key_file):
    environment = documented_production_environment(key_file)
    environment.pop("OURCITY_HTTPS")
    done = check_deploy(clean_environment(**environment))
    assert done.returncode != 0
    assert set(re.findall(r"security\.W\d+", done.stdout + done.stderr)) == {
        "security.W004", "security.W008", "security.W012", "security.W016"}  # HSTS, redirect, both cookies


def test_each_part_of_https_can_be_switched_off_and_check_deploy_says_so(key_file):
    parts = {"OURCITY_HSTS_INCLUDE_SUBDOMAINS": "0", "OURCITY_HSTS_PRELOAD": "0", "OURCITY_SSL_REDIRECT": "0"}
    done = check_deploy(clean_environment(**documented_production_environment(key_file), **parts))
    assert set(re.findall(r"security\.W\d+", done.stdout + done.stderr)) == {
        "security.W005", "security.W021", "security.W008"}


# --- no default key --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fresh_checkout(tmp_path_factory):
    """The project package in a directory of its own, as a fresh clone has it: no var/secret_key. The apps are
    imported from this checkout (PYTHONPATH), the settings from the copy."""
    root = tmp_path_factory.mktemp("fresh-clone")
    shutil.copytree(BASE / "geo_ourcity", root / "geo_ourcity", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(BASE / "manage.py", root / "manage.py")
    assert not (root / "var").exists()
    return root


def fresh_environment(fresh_checkout, **values):
    return {**clean_environment(**values), "PYTHONPATH": f"{fresh_checkout}:{BASE}"}


STARTS = {
    "manage.py check": lambda: [sys.executable, "manage.py", "check"],
    "manage.py migrate": lambda: [sys.executable, "manage.py", "migrate", "--plan"],
    "the WSGI application": lambda: [sys.executable, "-c", "import geo_ourcity.wsgi"],
    # One worker: gunicorn 27 itself fails on a traceback when several fail to boot at once (each stops it).
    # No control socket: its default path is shared by every gunicorn of the user.
    "gunicorn": lambda: [str(Path(sys.executable).parent / "gunicorn"), "geo_ourcity.wsgi", "--bind",
                         "127.0.0.1:0", "--workers", "1", "--no-control-socket"],
    "gunicorn --preload": lambda: [str(Path(sys.executable).parent / "gunicorn"), "geo_ourcity.wsgi", "--bind",
                                   "127.0.0.1:0", "--workers", "3", "--preload", "--no-control-socket"],
}


GIVEN = {
    "nothing": {},
    "empty": {"SECRET_KEY": ""},
    "blank": {"SECRET_KEY": "   "},
    "old-default": {"SECRET_KEY": "dev-only-insecure-key-change-me"},  # this project's old default
    "django-insecure": {"SECRET_KEY": "django-insecure-" + "a" * 50},  # startproject's mark of a throw-away key
    "DEBUG=0": {"DEBUG": "0"},
    "DEBUG=false": {"DEBUG": "false"},
}
# Every way of starting with no key at all, and every kind of missing key with manage.py.
CASES = [(start, "nothing") for start in STARTS] + [("manage.py check", given) for given in GIVEN if given != "nothing"]


@pytest.mark.parametrize("start, given", CASES, ids=[f"{s}, {g}" for s, g in CASES])
def test_without_a_secret_key_nothing_starts_and_says_why_in_one_line(fresh_checkout, start, given):
    done = subprocess.run(STARTS[start](), cwd=fresh_checkout, env=fresh_environment(fresh_checkout, **GIVEN[given]),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr
    ours = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(ours) >= 1 and all(line.startswith(REFUSAL) for line in ours), done.stderr
    assert "Traceback" not in done.stderr
    if not start.startswith("gunicorn"):  # gunicorn adds its own log lines around ours
        assert done.stderr.strip().splitlines() == [ours[0]]


def test_an_unreadable_key_file_is_refused_in_one_line(fresh_checkout, tmp_path):
    missing = tmp_path / "no-such-key"
    done = subprocess.run([sys.executable, "manage.py", "check"], cwd=fresh_checkout, capture_output=True,
                          text=True, env=fresh_environment(fresh_checkout, SECRET_KEY_FILE=str(missing)), timeout=120)
    assert done.returncode == 3
    assert done.stderr.strip() == f"error: can not read the secret key file {missing}: No such file or directory"


def test_with_debug_on_and_no_key_each_process_gets_a_random_one(fresh_checkout):
    keys = [subprocess.run([sys.executable, "-c", "from geo_ourcity import settings; print(settings.SECRET_KEY)"],
                           cwd=fresh_checkout, env=fresh_environment(fresh_checkout, DEBUG="1"), capture_output=True,
                           text=True, check=True, timeout=60).stdout.strip() for _ in range(2)]
    assert keys[0] != keys[1] and min(len(k) for k in keys) >= 50


def test_the_key_comes_from_the_environment_then_the_named_file_then_the_checkouts_file(monkeypatch, tmp_path):
    checkout_file, named_file = tmp_path / "checkout_key", tmp_path / "named_key"
    checkout_file.write_text("from-the-checkout\n")
    named_file.write_text("from-the-named-file\n")
    monkeypatch.setattr(env, "CHECKOUT_SECRET_KEY_FILE", checkout_file)
    monkeypatch.setenv("SECRET_KEY", "from-the-environment")
    monkeypatch.setenv("SECRET_KEY_FILE", str(named_file))
    assert env.secret_key() == "from-the-environment"
    monkeypatch.delenv("SECRET_KEY")
    assert env.secret_key() == "from-the-named-file"
    monkeypatch.delenv("SECRET_KEY_FILE")
    assert env.secret_key() == "from-the-checkout"
    checkout_file.unlink()
    assert env.secret_key() == ""


def test_secret_key_script_makes_one_private_key_per_checkout_once(tmp_path):
    (tmp_path / "scripts").mkdir()
    script = tmp_path / "scripts" / "secret-key.sh"
    shutil.copy(BASE / "scripts" / "secret-key.sh", script)
    subprocess.run(["bash", str(script)], check=True, capture_output=True)
    key_path = tmp_path / "var" / "secret_key"
    key = key_path.read_text().strip()
    assert key_path.stat().st_mode & 0o777 == 0o600
    assert len(key) >= 50 and len(set(key)) >= 5
    again = subprocess.run(["bash", str(script), "--print"], check=True, capture_output=True, text=True)
    assert again.stdout.strip() == key_path.read_text().strip() == key
    other = tmp_path / "other"
    shutil.copytree(tmp_path / "scripts", other / "scripts")
    subprocess.run(["bash", str(other / "scripts" / "secret-key.sh")], check=True, capture_output=True)
    assert (other / "var" / "secret_key").read_text().strip() != key


# --- HTTPS from the environment ---------------------------------------------------------------------------------

HTTPS_PROBE = """
from django.test import Client
client = Client()
plain = client.get("/staff/login/")
forwarded = client.get("/staff/login/", HTTP_X_FORWARDED_PROTO="https")
secure = client.get("/staff/login/", secure=True)
cookie = secure.cookies.get(settings.CSRF_COOKIE_NAME)
print(json.dumps({
    "plain": [plain.status_code, plain.get("Location")],
    "forwarded": forwarded.status_code,
    "hsts": secure.get("Strict-Transport-Security"),
    "csrf_cookie_secure": bool(cookie and cookie["secure"]),
    "session_cookie": [settings.SESSION_COOKIE_SECURE, settings.SESSION_COOKIE_HTTPONLY],
    "headers": [secure.get("X-Frame-Options"), secure.get("X-Content-Type-Options"), secure.get("Referrer-Policy"),
                secure.get("Cross-Origin-Opener-Policy")],
    "upgrade": "upgrade-insecure-requests" in secure.get("Content-Security-Policy", ""),
}))
"""


def test_over_https_cookies_are_secure_http_is_redirected_and_hsts_is_sent():
    seen = django(HTTPS_PROBE, clean_environment(SECRET_KEY=KEY, OURCITY_HTTPS="1"))
    assert seen["plain"] == [301, "https://testserver/staff/login/"]
    assert seen["forwarded"] == 301  # X-Forwarded-Proto is not believed unless OURCITY_BEHIND_PROXY says so
    assert seen["hsts"] == "max-age=31536000; includeSubDomains; preload"
    assert seen["csrf_cookie_secure"] is True
    assert seen["session_cookie"] == [True, True]
    assert seen["headers"] == ["DENY", "nosniff", "same-origin", "same-origin"]
    assert seen["upgrade"] is True


def test_behind_a_trusted_proxy_its_forwarded_https_is_believed():
    seen = django(HTTPS_PROBE, clean_environment(SECRET_KEY=KEY, OURCITY_HTTPS="1", OURCITY_BEHIND_PROXY="1"))
    assert seen["forwarded"] == 200
    assert seen["plain"][0] == 301


def test_over_plain_http_as_in_the_demo_nothing_insists_on_https():
    seen = django(HTTPS_PROBE, clean_environment(SECRET_KEY=KEY))
    assert seen["plain"] == [200, None]
    assert seen["hsts"] is None and seen["csrf_cookie_secure"] is False
    assert seen["session_cookie"] == [False, True]
    assert seen["headers"] == ["DENY", "nosniff", "same-origin", "same-origin"]
    assert seen["upgrade"] is False
