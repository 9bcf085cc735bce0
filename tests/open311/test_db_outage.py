"""PostgreSQL unreachable: every request that needs it is answered 503 with Retry-After, Open311 in its own format
(JSON or XML by the URL), web pages as a short page in the visitor's language. Recovery needs no restart and
nothing is half-written.

The database is made really unreachable at the socket: the application's connection settings point at a
directory where a stopped server's socket is gone (clean stop), or where a dead server left its socket file
(crash: connection refused), or at tests/open311/pg_proxy.py, which drops every connection and its socket mid-run.
bench/db_outage_bench.py stops a real cluster under load.
"""
import json
import os
import socket
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client

from complaints.models import Complaint, ComplaintEvent

from .conftest import SERVICE, TVERSKOY, make_service
from .pg_proxy import PostgresProxy

OPEN311 = [
    ("get", "/open311/v2/services.json"), ("get", "/open311/v2/services.xml"),
    ("get", f"/open311/v2/services/{SERVICE}.json"), ("get", "/open311/v2/requests.json?status=open"),
    ("get", "/open311/v2/requests.xml"), ("get", "/open311/v2/requests/1.json"), ("get", "/open311/v2/tokens/x.xml"),
    ("get", "/open311/v2/servicerequestupdates.xml"), ("post", "/open311/v2/requests.json"),
    ("post", "/open311/v2/requests.xml"),
]
WEB = [("get", "/"), ("get", "/stats/"), ("get", "/c/AAAA-BBBB-CCCC/"), ("get", "/map/districts.geojson"),
       ("get", "/tiles/complaints/12/2476/1283.mvt"), ("post", "/report/"), ("post", "/staff/login/"),
       ("post", "/admin/login/"), ("get", "/map/complaints/1/")]
FORM = {"api_key": "some-key", "service_code": SERVICE, "lat": str(TVERSKOY[1]), "long": str(TVERSKOY[0]),
        "username": "someone", "password": "x"}


@pytest.fixture(params=["stopped", "crashed"])
def dead_database(request, django_db_blocker):
    """The application's database settings point where a stopped (no socket) or crashed (a socket nobody listens
    on) PostgreSQL would be; restored afterwards."""
    with tempfile.TemporaryDirectory(prefix="pgdead-") as directory, django_db_blocker.unblock():
        port = str(connection.settings_dict.get("PORT") or "5432")
        if request.param == "crashed":
            stale = socket.socket(socket.AF_UNIX)
            stale.bind(os.path.join(directory, f".s.PGSQL.{port}"))
            stale.close()  # the file stays; connecting to it is refused
        saved = dict(connection.settings_dict)
        connection.close()
        connection.settings_dict.update(HOST=directory, PORT=port)
        try:
            yield
        finally:
            connection.close()
            connection.settings_dict.clear()
            connection.settings_dict.update(saved)


def send(client, method, path):
    if method == "get":
        return client.get(path)
    return client.post(path, FORM)


def open311_errors(response, path):
    if path.split("?")[0].endswith(".xml"):
        assert response["Content-Type"].startswith("text/xml")
        root = ET.fromstring(response.content)
        assert root.tag == "errors"
        return [{"code": int(e.findtext("code")), "description": e.findtext("description")}
                for e in root.findall("error")]
    assert response["Content-Type"].startswith("application/json")
    return json.loads(response.content)


@pytest.mark.parametrize("method,path", OPEN311)
def test_open311_answers_503_in_its_format(dead_database, method, path):
    response = send(Client(raise_request_exception=False), method, path)
    assert response.status_code == 503, response.content[:300]
    assert response["Retry-After"] == str(settings.RETRY_AFTER_SECONDS)
    errors = open311_errors(response, path)
    assert len(errors) == 1 and errors[0]["code"] == 503 and "try again" in errors[0]["description"]
    assert b"Traceback" not in response.content and b"could not connect" not in response.content


@pytest.mark.parametrize("language,title", [("ru", "Сервис временно недоступен"),
                                            ("en", "Service temporarily unavailable")])
@pytest.mark.parametrize("method,path", WEB)
def test_web_pages_answer_503_in_the_visitors_language(dead_database, method, path, language, title):
    client = Client(raise_request_exception=False, HTTP_ACCEPT_LANGUAGE=language)
    response = send(client, method, path)
    assert response.status_code == 503, response.content[:300]
    assert response["Retry-After"] == str(settings.RETRY_AFTER_SECONDS)
    html = response.content.decode()
    assert f'<html lang="{language}">' in html and f"<h1>{title}</h1>" in html, html[:500]


def test_discovery_needs_no_database(dead_database):
    assert Client().get("/open311/v2/discovery.json").status_code == 200


# ---- a running server loses its database and gets it back ----------------------------------------------------


@pytest.fixture
def proxied(demo_city, live_server, django_db_blocker):
    """The live server's database connections go through a PostgresProxy; the server's current connection is ended
    so that its next one is made through the proxy."""
    make_service()
    from open311.keys import api_key_issue
    key = api_key_issue(name="outage-integrator")[1]
    proxy = PostgresProxy(connection.settings_dict)
    proxy.up()
    saved = dict(connection.settings_dict)
    connection.settings_dict.update(HOST=proxy.dir, PORT=proxy.port)  # shared with the server's threads
    with connection.cursor() as cur:  # this (the test's) connection is already open and stays direct
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    try:
        yield live_server.url, key, proxy
    finally:
        proxy.close()
        connection.settings_dict.update(HOST=saved["HOST"], PORT=saved["PORT"])


def post(base, key, fmt, description, **extra):
    body = urllib.parse.urlencode({"api_key": key, "service_code": SERVICE, "lat": TVERSKOY[1], "long": TVERSKOY[0],
                                   "attribute[kind]": "hole", "description": description, **extra}).encode()
    return fetch(f"{base}/open311/v2/requests.{fmt}", body)


def fetch(url, body=None, headers=None):
    request = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_a_server_loses_its_database_answers_503_and_recovers_without_a_restart(proxied):
    base, key, proxy = proxied
    created = []

    status, _headers, body = post(base, key, "json", "до сбоя")
    assert status == 201, body
    created.append(json.loads(body)[0]["service_request_id"])
    assert proxy.accepted >= 1  # it went through the proxy

    proxy.down()  # the server's connection is cut, and no new one can be made
    for fmt in ("json", "xml"):
        status, headers, body = post(base, key, fmt, f"во время сбоя {fmt}")
        assert status == 503, body
        assert headers["Retry-After"] == str(settings.RETRY_AFTER_SECONDS)
        if fmt == "json":
            assert json.loads(body)[0]["code"] == 503
        else:
            assert ET.fromstring(body).findtext("error/code") == "503"
    status, headers, body = fetch(f"{base}/open311/v2/requests.xml")
    assert status == 503 and ET.fromstring(body).tag == "errors"
    status, headers, body = fetch(f"{base}/stats/", headers={"Accept-Language": "en"})
    assert status == 503 and b"Service temporarily unavailable" in body

    proxy.up()  # the database is back: the very next request succeeds, nothing was restarted
    status, _headers, body = post(base, key, "xml", "после сбоя")
    assert status == 201, body
    created.append(ET.fromstring(body).findtext("request/service_request_id"))

    # Cut in the middle of the complaint's INSERT (its transaction is open): 503, and nothing of it is stored.
    proxy.cut_on(b'INSERT INTO "complaints_complaint"')
    status, _headers, body = post(base, key, "json", "оборвано посреди записи")
    assert proxy.cuts == 1
    assert status == 503, body
    status, _headers, body = post(base, key, "json", "после обрыва")
    assert status == 201, body
    created.append(json.loads(body)[0]["service_request_id"])

    stored = Complaint.objects.filter(category__code=SERVICE)
    assert sorted(str(pk) for pk in stored.values_list("pk", flat=True)) == sorted(created)
    assert not stored.filter(description__in=["во время сбоя json", "во время сбоя xml",
                                              "оборвано посреди записи"]).exists()
    for complaint in stored:  # each whole: its two history lines and its routing decision
        assert ComplaintEvent.objects.filter(complaint=complaint).count() == 2
        assert complaint.decision_id is not None
