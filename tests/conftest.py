"""Tests run against the real PostGIS started by the project (make test), never SQLite or a mocked database.

The Moscow demo city is loaded once per session into the test database, through the import pipeline. Tests
that use `db` see it and roll back their own changes. Transactional tests run last (pytest-django's order) and
the database is emptied after each; those that need the city ask for `demo_city`, which reloads it.
"""
import json
import os

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection
from django.test.utils import override_settings

from facilities.models import AdminArea


def load_city():
    """The session's city: the demo, or the test city of tests/second_city when OURCITY_TEST_CITY=second (its
    checks run so, in a pytest of their own, with its profile and a database of its own)."""
    if os.environ.get("OURCITY_TEST_CITY") == "second":
        from tests.second_city.city import load_city as load_second_city

        load_second_city()
    else:
        call_command("load_demo", stdout=open("/dev/null", "w"))


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    # pytest-django creates test databases only for the aliases the collected tests use: a run of tests that use
    # none (tests/second_city's runner) has none, and its connection still names the development database.
    if not connection.settings_dict["NAME"].startswith("test_"):
        return
    with django_db_blocker.unblock():
        load_city()


# Rate limits that the tests not about limits never reach (tests/abuse sets real ones); the cache is the real
# Redis (make test starts it), its keys prefixed with the test database's name and emptied after every test.
GENEROUS = "100000/m"


@pytest.fixture(scope="session", autouse=True)
def shared_cache(django_db_setup):
    prefix = connection.settings_dict["NAME"]  # the test database's name (test_<name>)
    with override_settings(CACHES={"default": {**settings_caches(), "KEY_PREFIX": prefix}},
                           LIMIT_WEB_REPORTS=GENEROUS, LIMIT_OPEN311_POSTS=GENEROUS, LIMIT_CODE_LOOKUPS=GENEROUS,
                           LIMIT_OPEN311_BAD_KEYS=GENEROUS, LIMIT_OPEN311_TOKEN_LOOKUPS=GENEROUS,
                           LIMIT_API_SUGGESTIONS=GENEROUS, LIMIT_API_PLACES=GENEROUS, LIMIT_API_NEARBY=GENEROUS):
        yield prefix


@pytest.fixture(scope="session", autouse=True)
def task_queue():
    """This run's own queue on the real broker: tasks that tests enqueue (a complaint with an address enqueues its
    mail on commit) never reach a demo's worker or another run's; tests/queue's worker consumes it. Emptied at the
    end. Returns its name."""
    import uuid

    from geo_ourcity.celery import app

    queue = f"test-{uuid.uuid4().hex[:12]}"
    prefix = f"{queue}:celery:"  # its keys too (the unacknowledged tasks' hash is shared by every queue)
    conf = app.conf  # the settings' own names: they win over task_default_queue and the like
    conf["CELERY_TASK_DEFAULT_QUEUE"] = queue
    conf["CELERY_KEY_PREFIX"] = prefix
    conf["CELERY_BROKER_TRANSPORT_OPTIONS"] = {**conf.broker_transport_options, "global_keyprefix": prefix}
    conf["CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS"] = {**conf.result_backend_transport_options,
                                                       "global_keyprefix": prefix}
    app.__dict__.pop("amqp", None)  # the senders' routing is built once, from the conf: build it again
    yield queue
    try:
        client = cache._cache.get_client(write=True)  # the same Redis
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    except Exception:  # noqa: BLE001 - a broker gone at the end leaves nothing to empty
        pass


def settings_caches():
    from django.conf import settings

    return dict(settings.CACHES["default"])


@pytest.fixture(autouse=True)
def _empty_cache(shared_cache):
    yield
    flush_cache_prefix(shared_cache)


def flush_cache_prefix(prefix):
    """Delete this test run's keys only (another run, or the demo, may share the Redis)."""
    client = cache._cache.get_client(write=True)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture
def demo_city(transactional_db):
    if not AdminArea.objects.exists():
        load_city()


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
