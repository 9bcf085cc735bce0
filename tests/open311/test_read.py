"""The public reads: discovery, services, service definitions, requests, one request, tokens, and the
FixMyStreet updates feed, in both formats. Privacy: nothing a resident gave about themselves is ever shown.
"""
import datetime
import json
import xml.etree.ElementTree as ET

import pytest
from django.utils import timezone

from complaints.models import Complaint
from complaints.services import (complaint_answer, complaint_confirm, complaint_create, complaint_deny,
                                 complaint_hide, complaint_take)
from complaints.tracking import confirmation_key

from .conftest import ARBAT, SERVICE, TVERSKOY, as_xml_text, image_file, xml_data

pytestmark = pytest.mark.django_db
BASE = "/open311/v2"
PRIVATE = {"email": "ivan@example.org", "phone": "+7 900 000-00-00", "first_name": "Иван",
           "last_name": "Петров", "device_id": "dev-42", "account_id": "acct-7"}


def create(service, point=TVERSKOY, **extra):
    fields = {"description": "Яма", "attributes": {"kind": "hole"}, "source": "test", **PRIVATE, **extra}
    return complaint_create(category=service, point=point, **fields)


def rid(complaint):
    """A complaint's Open311 service_request_id: its primary key as a string."""
    return str(complaint.pk)


def get_json(client, path, **params):
    response = client.get(f"{BASE}/{path}.json", params)
    assert response["Content-Type"].startswith("application/json"), response.content[:300]
    return response.status_code, json.loads(response.content)


def get_xml(client, path, **params):
    response = client.get(f"{BASE}/{path}.xml", params)
    assert response["Content-Type"].startswith("text/xml")
    assert response.content.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    return response.status_code, ET.fromstring(response.content)


def test_discovery(client):
    status, data = get_json(client, "discovery")
    assert status == 200
    endpoint = data["endpoints"][0]
    assert endpoint["specification"] == "http://wiki.open311.org/GeoReport_v2"
    assert endpoint["url"] == "http://testserver/open311/v2"
    assert set(endpoint["formats"]) == {"text/xml", "application/json"}
    assert datetime.datetime.fromisoformat(data["changeset"]).tzinfo is not None
    status, root = get_xml(client, "discovery")
    assert root.tag == "discovery" and root.find("endpoints/endpoint/formats/format") is not None


def test_services_list(client, service):
    status, data = get_json(client, "services", locale="en")
    assert status == 200 and isinstance(data, list)
    row = next(s for s in data if s["service_code"] == SERVICE)
    assert row == {"service_code": SERVICE, "service_name": "Pothole", "description": "A hole in the road surface",
                   "metadata": True, "type": "realtime", "keywords": "яма, pothole", "group": "Roads"}
    status, data = get_json(client, "services")  # no locale, no Accept-Language: Russian
    assert next(s for s in data if s["service_code"] == SERVICE)["service_name"] == "Яма на дороге"
    status, root = get_xml(client, "services")
    assert root.tag == "services"
    codes = [el.findtext("service_code") for el in root.findall("service")]
    assert SERVICE in codes


def test_inactive_service_is_not_offered(client, service):
    service.active = False
    service.save()
    assert SERVICE not in [s["service_code"] for s in get_json(client, "services")[1]]
    assert get_json(client, f"services/{SERVICE}")[0] == 404


def test_accept_language_picks_english(client, service):
    response = client.get(f"{BASE}/services.json", HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.9")
    assert next(s for s in response.json() if s["service_code"] == SERVICE)["service_name"] == "Pothole"


def test_service_definition(client, service):
    status, data = get_json(client, f"services/{SERVICE}", locale="en")
    assert status == 200 and data["service_code"] == SERVICE
    attributes = {a["code"]: a for a in data["attributes"]}
    assert [a["order"] for a in data["attributes"]] == sorted(a["order"] for a in data["attributes"])
    assert attributes["kind"] == {
        "variable": True, "code": "kind", "datatype": "singlevaluelist", "required": True,
        "datatype_description": None, "order": 1, "description": "Question kind",
        "values": [{"key": "hole", "name": "Hole"}, {"key": "crack", "name": "Crack"}]}
    assert {a["datatype"] for a in data["attributes"]} == {
        "singlevaluelist", "multivaluelist", "number", "datetime", "string", "text"}
    assert attributes["note"]["variable"] is False
    status, root = get_xml(client, f"services/{SERVICE}")
    assert root.tag == "service_definition"
    assert root.find("attributes/attribute/values/value/key").text == "hole"


def test_unknown_service_definition_is_404(client, db):
    status, data = get_json(client, "services/no-such-thing")
    assert status == 404 and data[0]["code"] == 404 and "no-such-thing" in data[0]["description"]
    status, root = get_xml(client, "services/no-such-thing")
    assert status == 404 and root.tag == "errors" and root.find("error/code").text == "404"


def test_request_fields(client, service, dispatcher):
    complaint = create(service, address_string="Красная площадь, 3")
    status, data = get_json(client, f"requests/{rid(complaint)}", locale="en")
    assert status == 200 and len(data) == 1
    row = data[0]
    assert list(row) == ["service_request_id", "status", "status_notes", "service_name", "service_code",
                         "description", "agency_responsible", "service_notice", "requested_datetime",
                         "updated_datetime", "expected_datetime", "address", "address_id", "zipcode", "lat",
                         "long", "media_url"]
    assert row["service_request_id"] == rid(complaint)
    assert row["status"] == "open" and row["status_notes"] is None
    assert row["service_code"] == SERVICE and row["service_name"] == "Pothole"
    assert row["agency_responsible"] == complaint.department.authority.name
    assert row["service_notice"] == complaint.decision.explanation_en
    assert row["address"] == "Красная площадь, 3"
    assert (row["lat"], row["long"]) == pytest.approx((TVERSKOY[1], TVERSKOY[0]))
    for field in ("requested_datetime", "updated_datetime", "expected_datetime"):
        assert datetime.datetime.fromisoformat(row[field]).tzinfo is not None, field
    assert datetime.datetime.fromisoformat(row["expected_datetime"]) == complaint.deadline.replace(microsecond=0)
    # Russian notice by default.
    assert get_json(client, f"requests/{rid(complaint)}")[1][0]["service_notice"] == complaint.decision.explanation_ru


def test_status_and_status_notes_follow_the_lifecycle(client, service, dispatcher):
    complaint = create(service)
    complaint_take(complaint=complaint, user=dispatcher)
    complaint_answer(complaint=complaint, user=dispatcher, text="Яму заделали 24 ноября.")
    row = get_json(client, f"requests/{rid(complaint)}")[1][0]
    assert row["status"] == "open" and row["status_notes"] == "Яму заделали 24 ноября."
    complaint_confirm(tracking_code=complaint.tracking_code, key=confirmation_key(complaint))
    assert get_json(client, f"requests/{rid(complaint)}")[1][0]["status"] == "closed"


def test_media_url_of_an_uploaded_photo(client, service):
    complaint = create(service, photos=[image_file()])
    url = get_json(client, f"requests/{rid(complaint)}")[1][0]["media_url"]
    assert url == f"http://testserver/photos/{complaint.photos.get().pk}/"
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"


def test_request_not_found(client, service):
    complaint = create(service)
    status, data = get_json(client, "requests/999999999")
    assert status == 404 and data[0]["code"] == 404
    # Only the canonical decimal id names a request: the tracking code (the resident's key) names nothing here.
    for junk in [complaint.tracking_code, complaint.tracking_code.replace("-", ""), f"0{complaint.pk}",
                 f"+{complaint.pk}", f"{complaint.pk}.0", "not a code", "-1", "0", "9" * 30, "١٢٣"]:
        status, data = get_json(client, f"requests/{junk}")
        assert status == 404 and data[0]["code"] == 404, junk
        assert complaint.tracking_code not in json.dumps(data, ensure_ascii=False), junk


def test_service_request_id_filter_takes_ids_only(client, service):
    a, b = create(service), create(service)

    def ids(value):
        status, data = get_json(client, "requests", service_request_id=value)
        assert status == 200, data
        return [row["service_request_id"] for row in data]

    assert sorted(ids(f"{rid(a)}, {rid(b)}")) == sorted([rid(a), rid(b)])
    assert ids(f"{rid(a)},,{'9' * 25}") == [rid(a)]  # a well-formed id that names nothing finds nothing
    # Anything but ids is a 400 naming the parameter, without echoing the value.
    for value in [a.tracking_code, f"{rid(a)},{b.tracking_code}", "abc", f"0{a.pk}", "1.5", "-3"]:
        status, data = get_json(client, "requests", service_request_id=value)
        assert status == 400 and data[0]["description"].startswith("service_request_id"), value
        assert value not in data[0]["description"]
    assert get_json(client, "requests", service_request_id=",".join(["1"] * 1001))[0] == 400


def test_token_lookup(client, service):
    complaint = create(service)
    status, data = get_json(client, f"tokens/{complaint.token}")
    assert status == 200 and data == [{"service_request_id": rid(complaint), "token": complaint.token}]
    status, root = get_xml(client, f"tokens/{complaint.token}")
    assert root.tag == "service_requests" and root.find("request/token").text == complaint.token
    assert get_json(client, "tokens/unknown-token")[0] == 404


def test_hidden_complaints_never_appear(client, service, dispatcher):
    visible, hidden = create(service), create(service)
    complaint_hide(complaint=hidden, user=dispatcher, reason="abusive text")
    ids = [r["service_request_id"] for r in get_json(client, "requests")[1]]
    assert rid(visible) in ids and rid(hidden) not in ids
    assert get_json(client, f"requests/{rid(hidden)}")[0] == 404
    assert get_json(client, f"tokens/{hidden.token}")[0] == 404
    assert get_json(client, "requests", service_request_id=rid(hidden))[1] == []
    updates = get_json(client, "servicerequestupdates")[1]
    assert rid(hidden) not in [u["service_request_id"] for u in updates]


def test_requests_filters(client, service, dispatcher):
    other_service = type(service).objects.create(code="o311-other", name_i18n={"ru": "Другое", "en": "Other"},
                                                 group_i18n={"ru": "Прочее", "en": "Other"})
    a, b = create(service), create(service, point=ARBAT)
    c = complaint_create(category=other_service, point=TVERSKOY, source="test")
    complaint_take(complaint=b, user=dispatcher)
    complaint_answer(complaint=b, user=dispatcher, text="Сделано")
    complaint_confirm(tracking_code=b.tracking_code, key=confirmation_key(b))

    def ids(**params):
        status, data = get_json(client, "requests", **params)
        assert status == 200, data
        return {row["service_request_id"] for row in data}

    mine = {rid(a), rid(b), rid(c)}
    assert ids() >= mine
    assert ids(service_request_id=f"{rid(a)},{rid(c)}") == {rid(a), rid(c)}
    # service_request_id overrides every other argument, as the spec says.
    assert ids(service_request_id=rid(a), status="closed") == {rid(a)}
    assert ids(service_code=SERVICE) & mine == {rid(a), rid(b)}
    assert ids(service_code=f"{SERVICE},o311-other") & mine == mine
    assert ids(status="closed") & mine == {rid(b)}
    assert ids(status="open") & mine == {rid(a), rid(c)}
    assert ids(status="open,closed") & mine == mine
    # lat/long/radius in metres: Arbat's point is about 1.9 km from Tverskoy's.
    near = {"lat": TVERSKOY[1], "long": TVERSKOY[0]}
    assert ids(**near, radius=500) & mine == {rid(a), rid(c)}
    assert ids(**near, radius=2500) & mine == mine
    # Dates: an empty parameter is the same as none.
    now = timezone.now()
    assert ids(start_date=(now + datetime.timedelta(minutes=5)).isoformat()) & mine == set()
    assert ids(start_date="", end_date="") >= mine
    assert ids(end_date=(now - datetime.timedelta(days=1)).isoformat()) & mine == set()
    assert ids(updated_after=(now - datetime.timedelta(minutes=5)).isoformat()) >= mine
    assert ids(updated_before=(now - datetime.timedelta(minutes=5)).isoformat()) & mine == set()


def test_default_window_is_90_days(client, service):
    old, new = create(service), create(service)
    Complaint.objects.filter(pk=old.pk).update(submitted_at=timezone.now() - datetime.timedelta(days=91))
    ids = {r["service_request_id"] for r in get_json(client, "requests")[1]}
    assert rid(new) in ids and rid(old) not in ids
    start = (timezone.now() - datetime.timedelta(days=100)).isoformat()
    ids = {r["service_request_id"] for r in get_json(client, "requests", start_date=start)[1]}
    assert rid(old) in ids


def test_paging(client, service):
    made = [create(service) for _ in range(5)]
    pages = [get_json(client, "requests", page=p, page_size=2, service_code=SERVICE)[1] for p in (1, 2, 3, 4)]
    assert [len(p) for p in pages] == [2, 2, 1, 0]
    seen = [r["service_request_id"] for p in pages for r in p]
    assert seen == [rid(c) for c in reversed(made)]  # newest first


@pytest.mark.parametrize("params", [
    {"start_date": "yesterday"}, {"start_date": "2026-13-01T00:00:00Z"}, {"end_date": "2026-02-30"},
    {"start_date": "2026-01-01T00:00:00Z", "end_date": "2026-06-01T00:00:00Z"},
    {"start_date": "2026-06-01T00:00:00Z", "end_date": "2026-01-01T00:00:00Z"},
    {"status": "pending"}, {"page": "0"}, {"page": "x"}, {"page_size": "1001"}, {"page_size": "-1"},
    {"lat": "55.7"}, {"lat": "91", "long": "37"}, {"lat": "nan", "long": "37"}, {"radius": "100"},
    {"lat": "55.7", "long": "37.6", "radius": "inf"}, {"lat": "55.7", "long": "37.6", "radius": "0"},
    {"updated_after": "soon"}, {"service_code": "a\x00"}, {"service_request_id": "\x00"}, {"status": "open\x01"},
])
def test_bad_query_is_400(client, db, params):
    status, data = get_json(client, "requests", **params)
    assert status == 400 and data[0]["code"] == 400 and data[0]["description"]
    status, root = get_xml(client, "requests", **params)
    assert status == 400 and root.tag == "errors"


def test_updates_feed(client, service, dispatcher):
    complaint = create(service)
    since = timezone.now().isoformat()
    complaint_take(complaint=complaint, user=dispatcher)
    complaint_answer(complaint=complaint, user=dispatcher, text="Заделали", photo=image_file("answer.png", "PNG"))
    complaint_deny(tracking_code=complaint.tracking_code, key=confirmation_key(complaint), reason="Яма на месте")
    status, data = get_json(client, "servicerequestupdates", start_date=since)
    assert status == 200
    mine = [u for u in data if u["service_request_id"] == rid(complaint)]
    assert [(u["status"], u["external_status_code"]) for u in mine] == [
        ("in_progress", "in_progress"), ("action_scheduled", "answered"), ("open", "reopened")]
    answer_photo = complaint.photos.get(answer__isnull=False)
    assert mine[1]["description"] == "Заделали"
    assert mine[1]["media_url"] == f"http://testserver/photos/{answer_photo.pk}/"
    assert mine[2]["description"] == "Яма на месте" and mine[2]["media_url"] is None
    assert len({u["update_id"] for u in mine}) == 3 and all(isinstance(u["update_id"], str) for u in mine)
    for u in mine:
        assert datetime.datetime.fromisoformat(u["updated_datetime"]).tzinfo is not None
    status, root = get_xml(client, "servicerequestupdates", start_date=since)
    assert root.tag == "service_requests_updates" and root.find("request_update/update_id") is not None
    later = (timezone.now() + datetime.timedelta(minutes=1)).isoformat()
    assert get_json(client, "servicerequestupdates", start_date=later)[1] == []


def test_reads_never_show_private_data(client, service, dispatcher):
    answered = create(service, address_string="у ГУМа", photos=[image_file()])
    complaint_take(complaint=answered, user=dispatcher)
    complaint_answer(complaint=answered, user=dispatcher, text="Сделано")
    create(service, point=ARBAT)
    paths = ["requests", f"requests/{rid(answered)}", f"tokens/{answered.token}", "servicerequestupdates",
             "services", f"services/{SERVICE}", "discovery"]
    for path in paths:
        for fmt in ("json", "xml"):
            body = client.get(f"{BASE}/{path}.{fmt}").content.decode()
            for name, value in PRIVATE.items():
                assert value not in body, (path, fmt, name)
                if fmt == "json":
                    assert f'"{name}"' not in body, (path, name)
                else:
                    assert f"<{name}>" not in body and f"<{name}/>" not in body, (path, name)


def test_xml_is_the_same_content_as_json(client, service, dispatcher):
    complaint = create(service, address_string="Красная площадь", photos=[image_file()])
    complaint_take(complaint=complaint, user=dispatcher)
    complaint_answer(complaint=complaint, user=dispatcher, text="Ответ <b>&</b> \"кавычки\"")
    for path, params in [("discovery", {}), ("services", {}), (f"services/{SERVICE}", {"locale": "en"}),
                         ("requests", {}), ("requests", {"status": "open", "page_size": 3}),
                         (f"requests/{rid(complaint)}", {}), (f"tokens/{complaint.token}", {}),
                         ("servicerequestupdates", {}), ("services/missing", {}), ("requests", {"lat": "91"})]:
        json_response = client.get(f"{BASE}/{path}.json", params)
        xml_response = client.get(f"{BASE}/{path}.xml", params)
        assert json_response.status_code == xml_response.status_code, path
        assert xml_data(xml_response.content) == as_xml_text(json.loads(json_response.content)), path


@pytest.mark.parametrize("path", ["services/%00", "tokens/%00", "requests/%00", "requests/" + "B" * 300])
def test_nul_or_junk_in_the_path_is_404(client, db, path):
    for fmt in ("json", "xml"):
        assert client.get(f"{BASE}/{path}.{fmt}").status_code == 404


def test_unknown_resource_is_an_open311_404(client, db):
    response = client.get(f"{BASE}/nothing.json")
    assert response.status_code == 404 and response.json()[0]["code"] == 404
    response = client.get(f"{BASE}/requests.csv")
    assert response.status_code == 404
