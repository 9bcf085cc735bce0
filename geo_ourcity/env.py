"""Settings read from the environment (one place, so every setting has a documented variable)."""
import ipaddress
import os
import re
import sys
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse, urlsplit

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
# The secret key that `make setup` (scripts/secret-key.sh) generates for this checkout, mode 0600.
CHECKOUT_SECRET_KEY_FILE = BASE_DIR / "var" / "secret_key"
# The embedded cluster's role for the application (scripts/pg.sh creates it; it is not a superuser).
EMBEDDED_DB_USER = "geo_ourcity"


# The city's profile: a file of NAME=VALUE lines (blank lines and # comments allowed) whose values stand in for
# variables the environment does not set. OURCITY_PROFILE names it; unset, it is the demo city's (data/demo.env),
# so `make demo`, `make test` and the benchmarks run the demo city; OURCITY_PROFILE="" reads none.
DEFAULT_PROFILE = BASE_DIR / "data" / "demo.env"
PROFILE_LINE = re.compile(r"^([A-Z][A-Z0-9_]*)=(.*)$")


def read_profile(path):
    """{NAME: VALUE} from a profile file; a line of another form stops the start with one line."""
    values = {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        refuse_to_start(f"OURCITY_PROFILE: can not read {path}: {exc.strerror}")
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = PROFILE_LINE.match(line)
        if not match:
            refuse_to_start(f"OURCITY_PROFILE: {path} line {number} is not NAME=VALUE")
        values[match[1]] = match[2].strip()
    return values


def _profile():
    named = os.environ.get("OURCITY_PROFILE")
    if named is None:
        return read_profile(DEFAULT_PROFILE) if DEFAULT_PROFILE.is_file() else {}
    return read_profile(named) if named.strip() else {}


def _get(name):
    """The environment's value of `name`, else the profile's, else None."""
    value = os.environ.get(name)
    return value if value is not None else PROFILE.get(name)


def env_str(name, default=""):
    value = _get(name)
    return default if value is None else value


def env_bool(name, default=False):
    value = _get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name, default=""):
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$")
RATE_RE = re.compile(r"^\d+/\d*[smhd]$")


def env_rate(name, default):
    """A rate limit as geo_ourcity.limits reads it (5/m, 100/h, 10/5m); a bad value stops the start with one line."""
    value = env_str(name, "").strip() or default
    if not RATE_RE.match(value):
        raise ImproperlyConfigured(f"{name} must be a rate like 5/m, 100/h or 10/5m, got {value!r}")
    return value


def env_networks(name):
    """A comma-separated list of IP addresses or networks (10.0.0.0/8); a bad entry stops the start with one line."""
    items = env_list(name)
    for item in items:
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ImproperlyConfigured(f"{name}: {item!r} is not an IP address or network") from None
    return items


def database_config(variable="DATABASE_URL"):
    """DATABASE_URL (postgres://user:pass@host:port/name) or the embedded cluster under var/pg."""
    url = os.environ.get(variable)
    if not url:
        return {
            "ENGINE": "django.contrib.gis.db.backends.postgis",
            "NAME": env_str("OURCITY_DB_NAME", "geo_ourcity"),
            "USER": env_str("OURCITY_DB_USER", EMBEDDED_DB_USER),
            "HOST": str(BASE_DIR / "var" / "pg" / "run"),
            "PORT": "5432",
        }
    parts = urlparse(url)
    if parts.scheme not in {"postgres", "postgresql", "postgis"}:
        raise ValueError(f"{variable} must be a postgres:// URL, got scheme {parts.scheme!r}")
    query = parse_qs(parts.query)
    return {
        "ENGINE": "django.contrib.gis.db.backends.postgis",
        "NAME": env_str("OURCITY_DB_NAME") or unquote(parts.path.lstrip("/")),
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        # A unix socket directory may be given as ?host=/path, as libpq allows.
        "HOST": unquote(parts.hostname or "") or query.get("host", [""])[0],
        "PORT": str(parts.port or ""),
    }


def libpq_dsn(db):
    """A libpq connection string for a Django DATABASES entry (for psql, ogr2ogr, raw psycopg2)."""
    pairs = {"dbname": db["NAME"], "user": db.get("USER"), "password": db.get("PASSWORD"),
             "host": db.get("HOST"), "port": db.get("PORT")}
    return " ".join(f"{k}={v}" for k, v in pairs.items() if v)


def refuse_to_start(message):
    """Stop a process whose settings must not run: one line on stderr, no traceback.

    Exit status 3 is gunicorn's "worker failed to boot", so gunicorn stops too instead of restarting workers
    that can never start; manage.py exits with it as well.
    """
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(3)


def secret_key():
    """SECRET_KEY from the environment, else the file SECRET_KEY_FILE names, else this checkout's
    var/secret_key; "" when there is none. Never a default known to anyone else."""
    key = os.environ.get("SECRET_KEY", "").strip()
    if key:
        return key
    named = os.environ.get("SECRET_KEY_FILE", "").strip()
    path = Path(named) if named else CHECKOUT_SECRET_KEY_FILE
    if not named and not path.exists():
        return ""
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        refuse_to_start(f"can not read the secret key file {path}: {exc.strerror}")


def csp_source_of(url):
    """The Content-Security-Policy source expression of a tile URL template's origin
    ("https://{s}.tile.example.org/{z}/{x}/{y}.png" -> "https://*.tile.example.org"); None for a relative URL."""
    parts = urlsplit(url.replace("{s}", "*"))
    if not parts.scheme or not parts.netloc or "{" in parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def celery_redis_url(redis_url):
    """REDIS_URL in the form kombu (the broker) and Celery's result store read: a unix socket is
    redis+socket:///path (its ?db=N becomes ?virtual_host=N); redis:// and rediss:// are taken as they are."""
    parts = urlsplit(redis_url)
    if parts.scheme != "unix":
        return redis_url
    db = parse_qs(parts.query).get("db", ["0"])[0]
    return f"redis+socket://{parts.path}?virtual_host={db}"


STORAGE_KINDS = ("filesystem", "s3")


def storages_config(environ=None):
    """settings.STORAGES: where photos ("default") and the import pipeline's files ("imports": uploaded datasets,
    uploaded specs, run reports and rejects) live. OURCITY_STORAGE=filesystem (the default: MEDIA_ROOT and
    OURCITY_IMPORTS_DIR on this machine's disk) or s3 (one bucket of an S3-compatible store that every app server
    and worker shares: OURCITY_S3_BUCKET, under the prefixes OURCITY_S3_MEDIA_PREFIX and OURCITY_S3_IMPORTS_PREFIX).

    Both kinds are private: nothing is written with a public ACL, and the application serves every file itself
    (photos through complaints.views with their access rules, import files to data staff only), so neither the
    bucket nor a listing of it is ever handed to a browser. A bad value stops the start with one line.
    """
    environ = os.environ if environ is None else environ

    def get(name, default=""):
        return (environ.get(name) or "").strip() or default

    kind = get("OURCITY_STORAGE", "filesystem").lower()
    static = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    if kind == "filesystem":
        return {
            # at MEDIA_ROOT, read when used
            "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
            # at OURCITY_IMPORTS_DIR (settings.IMPORTS_DIR), read when used
            "imports": {"BACKEND": "importers.storage.ImportsFileSystemStorage"},
            "staticfiles": static,
        }
    if kind != "s3":
        raise ImproperlyConfigured(f"OURCITY_STORAGE must be one of {', '.join(STORAGE_KINDS)}, got {kind!r}")
    bucket = get("OURCITY_S3_BUCKET")
    if not bucket:
        raise ImproperlyConfigured("OURCITY_STORAGE=s3 needs OURCITY_S3_BUCKET (the bucket's name)")
    endpoint = get("OURCITY_S3_ENDPOINT_URL")
    if endpoint and urlsplit(endpoint).scheme not in ("http", "https"):
        raise ImproperlyConfigured(f"OURCITY_S3_ENDPOINT_URL must be an http(s) URL, got {endpoint!r}")
    common = {
        "bucket_name": bucket,
        "endpoint_url": endpoint or None,  # None: Amazon S3 itself
        "region_name": get("OURCITY_S3_REGION") or get("AWS_DEFAULT_REGION") or None,
        # None: boto3's own chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a profile, an instance role)
        "access_key": get("AWS_ACCESS_KEY_ID") or None,
        "secret_key": get("AWS_SECRET_ACCESS_KEY") or None,
        "default_acl": None,  # the bucket's own (private): never public-read
        "querystring_auth": True,  # a URL of a file, if ever made, is signed and expires
        "querystring_expire": 300,
        "file_overwrite": False,  # a new photo never replaces a stored one of the same name
        "addressing_style": get("OURCITY_S3_ADDRESSING_STYLE") or None,  # "path" for most S3-compatible stores
        "signature_version": "s3v4",
    }

    def prefix(name, default):
        value = get(name, default).strip("/")
        if not value or ".." in value.split("/"):
            raise ImproperlyConfigured(f"{name} must be a relative prefix such as {default!r}, got {value!r}")
        return value

    return {
        "default": {"BACKEND": "storages.backends.s3.S3Storage",
                    "OPTIONS": {**common, "location": prefix("OURCITY_S3_MEDIA_PREFIX", "media")}},
        # the import's files are overwritten in place (a run's report is written again when it is committed)
        "imports": {"BACKEND": "storages.backends.s3.S3Storage",
                    "OPTIONS": {**common, "location": prefix("OURCITY_S3_IMPORTS_PREFIX", "imports"),
                                "file_overwrite": True}},
        "staticfiles": static,
    }


# --- The city's profile (issue 12): languages, time zone, working week, the map's first view ------------------

def env_languages():
    """(LANGUAGE_CODE, LANGUAGES) from the environment, in Django's own codes (ru, en, de, pt-br, zh-hans ...).

    LANGUAGE_CODE is the city's default language (default "en"); LANGUAGES a comma list of the languages the site
    offers (default: the default language alone), to which the default is added if it is missing. Each is named
    as Django names it in its own language (Deutsch, Русский). A code Django does not know stops the start with
    one line."""
    from django.conf.locale import LANG_INFO

    def info(variable, code):
        """Django's entry for a code: its own, or its language's for a regional code Django lists not (en-us)."""
        entry = LANG_INFO.get(code) or (LANG_INFO.get(code.split("-")[0]) if LANGUAGE_RE.match(code) else None)
        if entry is None:
            refuse_to_start(f"{variable}: {code!r} is not a language Django knows (codes as Django writes them: "
                            "en, de, pt-br, zh-hans; see django/conf/locale/__init__.py)")
        if "name_local" not in entry:  # an alias, e.g. zh-cn
            refuse_to_start(f"{variable}: {code!r} is an old name: use {entry['fallback'][0]!r}")
        return entry

    default = env_str("LANGUAGE_CODE", "").strip().lower() or "en"
    info("LANGUAGE_CODE", default)
    # In LANGUAGES' order (the language switch's); the default is added at the end if LANGUAGES leaves it out.
    codes = list(dict.fromkeys([*(code.lower() for code in env_list("LANGUAGES", default)), default]))
    return default, [(code, info("LANGUAGES", code)["name_local"]) for code in codes]


def env_time_zone(name="TIME_ZONE", default="UTC"):
    """An IANA time zone (Europe/Berlin, America/Los_Angeles); a name zoneinfo does not know stops the start."""
    import zoneinfo

    value = env_str(name, "").strip() or default
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        refuse_to_start(f"{name}: {value!r} is not a time zone (an IANA name such as Europe/Berlin or UTC)")
    return value


def env_bounds(name):
    """A lon/lat box "west,south,east,north" (WGS 84 degrees), or None when unset; a bad one stops the start."""
    value = env_str(name, "").strip()
    if not value:
        return None
    try:
        west, south, east, north = (float(part) for part in value.split(","))
    except ValueError:
        refuse_to_start(f"{name} must be west,south,east,north in degrees, got {value!r}")
    if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
        refuse_to_start(f"{name}: {value!r} is not a box (west < east within +-180, south < north within +-90)")
    return (west, south, east, north)


PROFILE = _profile()
