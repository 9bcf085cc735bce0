"""The shared cache (Redis) is an optimisation: with it unreachable, every public page, tile, Open311 read and
POST, the staff and admin login pages still answer, and none of them with a server error. The cache's users
(web's district outlines, the rate limits) log and go on without it."""
import pytest
from django.test import Client

from tests.open311.conftest import make_service
from tests.open311.conftest import form as open311_form

from .conftest import TVERSKAYA

REPORT = {"lon": TVERSKAYA[0], "lat": TVERSKAYA[1], "category": "yard-rubbish", "description": "Мусор во дворе"}


@pytest.fixture(params=["missing socket", "not a redis"])
def dead_cache(request, settings, tmp_path):
    """CACHES pointed at a socket nobody listens on, or at a file that is no socket at all."""
    path = tmp_path / "redis.sock"
    if request.param == "not a redis":
        path.write_text("")
    settings.CACHES = {"default": {**settings.CACHES["default"], "LOCATION": f"unix://{path}"}}
    settings.RATELIMIT_FAIL_OPEN = True  # the default: the limits serve on


def paths(complaint):
    code, token = complaint.tracking_code, complaint.token
    return [
        "/", "/map/districts.geojson", "/tiles/complaints/10/619/320.mvt", "/tiles/complaints/14/9904/5122.mvt",
        f"/map/point/?lon={TVERSKAYA[0]}&lat={TVERSKAYA[1]}", f"/map/complaints/{complaint.pk}/",
        f"/c/{code}/", f"/c/?code={code}", "/c/AAAA-BBBB-CCCC/", "/stats/", "/report/",
        "/open311/v2/discovery.json", "/open311/v2/services.xml", "/open311/v2/services/yard-rubbish.json",
        "/open311/v2/requests.json", f"/open311/v2/requests/{complaint.pk}.xml", f"/open311/v2/tokens/{token}.json",
        "/open311/v2/servicerequestupdates.json", "/open311/v2/nothing.json",
        "/staff/login/", "/admin/login/", "/api/schema/",
    ]


def test_every_read_answers_without_the_cache(db, dead_cache, complaint, caplog):
    client = Client(raise_request_exception=False)
    answers = {path: client.get(path).status_code for path in paths(complaint)}
    assert all(status < 500 for status in answers.values()), answers
    assert answers["/map/districts.geojson"] == 200 and answers["/"] == 200
    assert any("cache" in r.getMessage() and "unreachable" in r.getMessage() for r in caplog.records)


def test_writes_answer_without_the_cache(db, dead_cache, complaint, key_pair):
    make_service()
    client = Client(raise_request_exception=False)
    _key, raw = key_pair
    assert client.post("/open311/v2/requests.json", open311_form(raw)).status_code == 201
    assert client.post("/open311/v2/requests.xml", open311_form("wrong")).status_code == 403
    assert client.post("/report/", REPORT, HTTP_ACCEPT="application/json").status_code == 200
    assert client.post(f"/c/{complaint.tracking_code}/confirm/").status_code < 500
    assert client.post("/staff/login/", {"username": "nobody", "password": "x"}).status_code < 500
