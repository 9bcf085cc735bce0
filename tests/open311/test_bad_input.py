"""Input that used to crash Open311 or be misread, by class: every date parameter with an offset no time zone has
or a date outside the calendar, one-sided windows at the calendar's edges, repeated parameters, `media_url`, and
errors that must not echo kilobytes of input. Each is answered in the spec's error list, in JSON and XML.
"""
import json
import socket
import xml.etree.ElementTree as ET

import pytest
from django.utils import timezone

from complaints.models import Complaint
from complaints.services import complaint_answer, complaint_confirm, complaint_create, complaint_take
from complaints.tracking import confirmation_key

from .conftest import SERVICE, TVERSKOY, form, image_file, make_service, stored_counts

pytestmark = pytest.mark.django_db
BASE = "/open311/v2"

# Every date parameter of every read: (resource, parameter).
DATE_PARAMS = [("requests", "start_date"), ("requests", "end_date"), ("requests", "updated_after"),
               ("requests", "updated_before"), ("servicerequestupdates", "start_date"),
               ("servicerequestupdates", "end_date")]
# Offsets past ±15:59, in every spelling ISO 8601 allows.
FAR_OFFSETS = ["+16:00", "-16:00", "+23:59", "-23:59", "+1600", "-2330", "+16", "+16:00:01", "-15:59:59.5"]
NEAR_OFFSETS = ["+14:00", "-12:00", "+15:59", "-15:59", "+05:45", "Z", "+00:00", ""]
MALFORMED = ["2026-13-01", "2026-02-30", "2026-01-01T25:00:00", "2026-01-01T00:00:00+24:00", "yesterday",
             "2026-01-01T00:00:00+03:00junk", "10000-01-01", "0000-01-01", "-2026-01-01", "2026-01-01T00:00:00\x00",
             "1" * 5000]


def answer(client, resource, fmt="json", **params):
    response = client.get(f"{BASE}/{resource}.{fmt}", params)
    if fmt == "json":
        assert response["Content-Type"].startswith("application/json"), response.content[:200]
        return response.status_code, json.loads(response.content)
    assert response["Content-Type"].startswith("text/xml"), response.content[:200]
    root = ET.fromstring(response.content)
    if response.status_code >= 400:
        assert root.tag == "errors"
        return response.status_code, [{"code": int(e.findtext("code")), "description": e.findtext("description")}
                                      for e in root.findall("error")]
    return response.status_code, root


def assert_error_list(status, data, code=400):
    assert status == code, data
    assert isinstance(data, list) and data, data
    for error in data:
        assert set(error) == {"code", "description"} and error["code"] == code and error["description"]
        assert len(error["description"]) <= 300


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("offset", FAR_OFFSETS)
@pytest.mark.parametrize("resource,param", DATE_PARAMS)
def test_an_offset_no_time_zone_has_is_a_400(client, resource, param, offset, fmt):
    status, data = answer(client, resource, fmt, **{param: f"2026-01-01T00:00:00{offset}"})
    assert_error_list(status, data)
    assert data[0]["description"].startswith(f"{param}:")


@pytest.mark.parametrize("offset", NEAR_OFFSETS)
@pytest.mark.parametrize("resource,param", DATE_PARAMS)
def test_every_real_offset_is_read(client, resource, param, offset):
    status, data = answer(client, resource, **{param: f"2026-01-01T00:00:00{offset}"})
    assert status == 200 and isinstance(data, list), data


@pytest.mark.parametrize("value", MALFORMED)
@pytest.mark.parametrize("resource,param", DATE_PARAMS)
def test_a_malformed_date_is_a_400(client, resource, param, value):
    status, data = answer(client, resource, **{param: value})
    assert_error_list(status, data)
    assert "1" * 100 not in data[0]["description"]  # not echoed whole


# A one-sided window: the other side is 90 days away, which may fall outside the calendar.
@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("param,value", [
    ("end_date", "0001-01-05"), ("end_date", "0001-01-01"), ("end_date", "0001-03-31T23:59:59Z"),
    ("end_date", "0001-01-01T00:00:00+15:00"), ("start_date", "9999-12-30"), ("start_date", "9999-12-31"),
    ("start_date", "9999-10-03T00:00:00Z"), ("start_date", "9999-12-31T23:59:59-15:59"),
])
def test_a_one_sided_window_past_the_calendar_is_a_400(client, param, value, fmt):
    status, data = answer(client, "requests", fmt, **{param: value})
    assert_error_list(status, data)
    assert param in data[0]["description"]


@pytest.mark.parametrize("params", [
    {"end_date": "0001-04-02"}, {"start_date": "9999-10-01"}, {"start_date": "0001-01-01", "end_date": "0001-01-05"},
    {"start_date": "9999-12-30", "end_date": "9999-12-31T23:59:59+15:59"},
    {"start_date": "0001-01-01T00:00:00+15:59", "end_date": "0001-01-02T00:00:00-15:59"},
])
def test_windows_at_the_calendar_edges_that_fit_are_searched(client, params):
    status, data = answer(client, "requests", **params)
    assert status == 200 and data == [], data


@pytest.mark.parametrize("params", [
    {"start_date": "0001-01-01"}, {"end_date": "9999-12-31T23:59:59-15:59"},
    {"start_date": "0001-01-01T00:00:00+15:59", "end_date": "9999-12-31T23:59:59-15:59"},
])
def test_updates_accept_the_whole_calendar(client, params):
    status, data = answer(client, "servicerequestupdates", **params)
    assert status == 200 and isinstance(data, list), data


# ---- repeated parameters --------------------------------------------------------------------------------------


def make(service, **extra):
    return complaint_create(category=service, point=TVERSKOY, description="Яма", attributes={"kind": "hole"},
                            source="test", **extra)


def ids(data):
    return sorted(int(r["service_request_id"]) for r in data)


def test_repeated_list_parameters_are_all_honoured(client, service, dispatcher):
    other = make_service("o311-other")
    a, b, c = make(service), make(service), make(other)
    complaint_take(complaint=c, user=dispatcher)
    complaint_answer(complaint=c, user=dispatcher, text="Заделали")
    complaint_confirm(tracking_code=c.tracking_code, key=confirmation_key(c))

    def get(query):
        response = client.get(f"{BASE}/requests.json?{query}")
        assert response.status_code == 200, response.content
        return ids(json.loads(response.content))

    assert get("status=open&status=closed") == sorted([a.pk, b.pk, c.pk])
    assert get("status=open&status=open") == sorted([a.pk, b.pk])
    assert get("status=closed&status=") == [c.pk]
    assert get(f"service_code={SERVICE}&service_code=o311-other") == sorted([a.pk, b.pk, c.pk])
    assert get(f"service_code={SERVICE}&service_code=o311-other&status=closed") == [c.pk]
    assert get(f"service_request_id={a.pk}&service_request_id={c.pk}") == sorted([a.pk, c.pk])
    assert get(f"service_request_id={a.pk},{b.pk}&service_request_id={c.pk}") == sorted([a.pk, b.pk, c.pk])
    # Each value is still checked.
    response = client.get(f"{BASE}/requests.json?status=open&status=shut")
    assert_error_list(response.status_code, json.loads(response.content))


@pytest.mark.parametrize("resource,query", [
    ("requests", "start_date=2026-01-01&start_date=2026-02-01"), ("requests", "page=1&page=2"),
    ("requests", "lat=55.75&lat=55.76&long=37.62"), ("requests", "page_size=10&page_size=20"),
    ("servicerequestupdates", "end_date=2026-01-01&end_date=2026-01-02"),
])
def test_a_single_parameter_sent_twice_differently_is_a_400(client, resource, query):
    response = client.get(f"{BASE}/{resource}.json?{query}")
    data = json.loads(response.content)
    assert_error_list(response.status_code, data)
    assert data[0]["description"].startswith(query.split("=")[0] + ":")


def test_a_single_parameter_sent_twice_alike_is_read(client):
    response = client.get(f"{BASE}/requests.json?page=1&page=1")
    assert response.status_code == 200


def test_a_post_field_sent_twice_differently_is_a_400_and_stores_nothing(client, service, api_key):
    before = stored_counts()
    body = form(api_key)
    body["description"] = ["Яма", "Другая яма"]
    response = client.post(f"{BASE}/requests.json", body)
    data = json.loads(response.content)
    assert_error_list(response.status_code, data)
    assert data[0]["description"].startswith("description:")
    assert stored_counts() == before


# ---- media_url ------------------------------------------------------------------------------------------------


@pytest.fixture
def listener():
    """A TCP port that records whether anything connected to it (the server must never fetch a media_url)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(5)
    sock.setblocking(False)
    yield sock
    sock.close()


def connected(sock):
    try:
        sock.accept()[0].close()
        return True
    except BlockingIOError:
        return False


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_media_url_is_stored_returned_and_never_fetched(client, service, api_key, listener, fmt):
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/photos/pothole.jpg?size=large"
    response = client.post(f"{BASE}/requests.{fmt}", form(api_key, media_url=url))
    assert response.status_code == 201, response.content
    complaint = Complaint.objects.get()
    assert complaint.media_url == url
    status, data = answer(client, f"requests/{complaint.pk}")
    assert data[0]["media_url"] == url
    status, root = answer(client, "requests", "xml", service_request_id=str(complaint.pk))
    assert root.findtext("request/media_url") == url
    assert not connected(listener)


def test_an_uploaded_photo_wins_over_media_url(client, service, api_key):
    response = client.post(f"{BASE}/requests.json",
                           {**form(api_key, media_url="https://example.org/p.jpg"), "media": image_file()})
    assert response.status_code == 201, response.content
    data = answer(client, f"requests/{json.loads(response.content)[0]['service_request_id']}")[1]
    assert "/photos/" in data[0]["media_url"] and "example.org" not in data[0]["media_url"]


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("url", [
    "javascript:alert(1)", "data:image/png;base64,AAAA", "file:///etc/passwd", "ftp://example.org/p.jpg",
    "//example.org/p.jpg", "/photos/1/", "http://", "https://exa mple.org/p.jpg", "https://user:pw@example.org/p.jpg",
    "https://example.org/" + "p" * 1000, "https://example.org/\x00.jpg", "gopher://127.0.0.1:6379/_FLUSHALL",
])
def test_a_bad_media_url_is_a_400_and_stores_nothing(client, service, api_key, url, fmt):
    before = stored_counts()
    response = client.post(f"{BASE}/requests.{fmt}", form(api_key, media_url=url))
    assert response.status_code == 400, response.content
    if fmt == "json":
        data = json.loads(response.content)
        assert_error_list(400, data)
        assert "media_url" in data[0]["description"]
    else:
        assert ET.fromstring(response.content).tag == "errors"
    assert stored_counts() == before


# ---- no echo of long input ------------------------------------------------------------------------------------


@pytest.mark.parametrize("field,value", [
    ("attribute[" + "x" * 5000 + "]", "1"),  # an unknown attribute whose code is 5 KB
    ("attribute[kind]", "y" * 5000),  # a value that is not one of the list's keys
    ("attribute[lanes][]", "z" * 5000),
    ("service_code", "s" * 5000),
    ("lat", "9" * 5000),
    ("email", "e" * 5000 + "@example.org"),
    ("attribute" + "[" * 5000, "1"),
])
@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_an_error_does_not_echo_kilobytes_of_input(client, service, api_key, field, value, fmt):
    before = stored_counts()
    response = client.post(f"{BASE}/requests.{fmt}", form(api_key, **{field: value}))
    assert response.status_code == 400, response.content[:300]
    assert len(response.content) < 1000, len(response.content)
    assert stored_counts() == before


def test_today_is_searchable_with_any_real_offset(client, service):
    """A request made now is found by a window written in the farthest real offsets."""
    complaint = make(service)
    now = timezone.now()
    for offset in ("+14:00", "-12:00", "+15:59"):
        moment = now.astimezone(timezone.get_fixed_timezone(
            (1 if offset[0] == "+" else -1) * (int(offset[1:3]) * 60 + int(offset[4:6]))))
        start = (moment - timezone.timedelta(hours=1)).replace(microsecond=0).isoformat()
        status, data = answer(client, "requests", start_date=start)
        assert status == 200 and str(complaint.pk) in [r["service_request_id"] for r in data], (offset, start)
