"""Settings from the environment: DATABASE_URL or the embedded cluster."""
import pytest

from geo_ourcity.env import BASE_DIR, database_config, libpq_dsn


def test_without_database_url_the_embedded_cluster_is_used(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("OURCITY_DB_NAME", raising=False)
    monkeypatch.delenv("OURCITY_DB_USER", raising=False)
    db = database_config()
    # The application's own role (scripts/pg.sh), not the superuser.
    assert (db["NAME"], db["USER"], db["HOST"]) == ("geo_ourcity", "geo_ourcity", str(BASE_DIR / "var" / "pg" / "run"))
    assert db["ENGINE"] == "django.contrib.gis.db.backends.postgis"


@pytest.mark.parametrize("url, expected", [
    ("postgres://city:s%40cret@db.example.org:6543/ourcity",
     {"NAME": "ourcity", "USER": "city", "PASSWORD": "s@cret", "HOST": "db.example.org", "PORT": "6543"}),
    ("postgresql://city@/ourcity?host=/run/postgresql",
     {"NAME": "ourcity", "USER": "city", "PASSWORD": "", "HOST": "/run/postgresql", "PORT": ""}),
])
def test_database_url_is_parsed(monkeypatch, url, expected):
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.delenv("OURCITY_DB_NAME", raising=False)
    db = database_config()
    assert {k: db[k] for k in expected} == expected
    assert "dbname=ourcity" in libpq_dsn(db)


def test_a_database_url_of_another_kind_is_refused(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "mysql://x@y/z")
    with pytest.raises(ValueError, match="must be a postgres:// URL"):
        database_config()
