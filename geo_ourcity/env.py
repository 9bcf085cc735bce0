"""Settings read from the environment (one place, so every setting has a documented variable)."""
import os
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name, default=""):
    return os.environ.get(name, default)


def env_bool(name, default=False):
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name, default=""):
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def database_config(variable="DATABASE_URL"):
    """DATABASE_URL (postgres://user:pass@host:port/name) or the embedded cluster under var/pg."""
    url = os.environ.get(variable)
    if not url:
        return {
            "ENGINE": "django.contrib.gis.db.backends.postgis",
            "NAME": env_str("OURCITY_DB_NAME", "geo_ourcity"),
            "USER": "postgres",
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
