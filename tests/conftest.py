"""Tests run against the real PostGIS started by the project (make test), never SQLite or a mocked database.

The Moscow demo city is loaded once per session into the test database, through the import pipeline. Tests
that use `db` see it and roll back their own changes. Transactional tests run last (pytest-django's order) and
the database is emptied after each; those that need the city ask for `demo_city`, which reloads it.
"""
import json

import pytest
from django.core.management import call_command

from facilities.models import AdminArea


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        call_command("load_demo", stdout=open("/dev/null", "w"))


@pytest.fixture
def demo_city(transactional_db):
    if not AdminArea.objects.filter(level="district").exists():
        call_command("load_demo", stdout=open("/dev/null", "w"))


def write_geojson(path, features, crs=None):
    """A FeatureCollection file from (properties, geometry-mapping-or-None) pairs."""
    doc = {"type": "FeatureCollection",
           "features": [{"type": "Feature", "properties": p, "geometry": g} for p, g in features]}
    if crs:
        doc["crs"] = {"type": "name", "properties": {"name": crs}}
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def point(lon, lat):
    return {"type": "Point", "coordinates": [lon, lat]}
