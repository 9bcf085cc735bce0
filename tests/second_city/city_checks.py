"""The second city's checks (issue 12 §4), run by test_second_city.py in a pytest of their own: the test city of
city.txt in a database of its own, with its profile city.env (English only, Europe/Helsinki). The Open311 contract,
routing by the facilities of the OpenStreetMap extract and by city-wide department rules, deadlines on Finland's
holidays, the staff flow, the statistics, the tracking mail and a report in the browser: all in English, and no
Cyrillic letter in anything the service says.

Run alone with: OURCITY_TEST_CITY=second OURCITY_DB_NAME=geo_ourcity_testcity \
OURCITY_PROFILE=tests/second_city/city.env .venv/bin/python -m pytest tests/second_city/city_checks.py
"""
import datetime
import json
import os
import re
import zoneinfo

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.gis.geos import Point
from django.db import connection
from django.test import Client
from django.utils import timezone

from complaints.models import Complaint, State
from complaints.services import complaint_create
from facilities.models import Authority, Department, Facility
from open311.keys import api_key_issue
from routing.deadlines import add_working_days
from routing.engine import route
from routing.models import Category
from tests.browser.conftest import browser, page, shots  # noqa: F401 - fixtures
from tests.browser.steps import open_map, report_problem

pytestmark = pytest.mark.django_db

CYRILLIC = re.compile(r"[\u0400-\u04FF]")


def english(text):
    found = CYRILLIC.search(text)
    assert not found, f"Cyrillic in what the service says: ...{text[max(0, found.start() - 80):found.start() + 80]}..."
    return text


@pytest.fixture(autouse=True, scope="module")
def _the_test_city():
    assert os.environ.get("OURCITY_TEST_CITY") == "second", "run by tests/second_city/test_second_city.py"
    assert (settings.LANGUAGE_CODE, [code for code, _ in settings.LANGUAGES]) == ("en", ["en"])
    assert settings.TIME_ZONE == "Europe/Helsinki"


def facility(type_code, **filters):
    return (Facility.objects.filter(type__code=type_code, valid_to__isnull=True, **filters)
            .select_related("owner").order_by("source_key").first())


def inside(f):
    p = f.geom.point_on_surface
    return p.x, p.y


@pytest.fixture
def api_key(db):
    return api_key_issue(name="testcity-integrator")[1]


# ---- the city is data and environment ----------------------------------------------------------------------

def test_the_city_holds_no_russian_and_no_demo_data(db):
    with connection.cursor() as cur:
        cur.execute("""SELECT string_agg(t, ' | ') FROM (
            SELECT concat_ws(' ', code, name_i18n::text, group_i18n::text, description_i18n::text, keywords,
                             keywords_en) t FROM routing_category
            UNION ALL SELECT concat_ws(' ', code, description_i18n::text, values::text) FROM routing_categoryattribute
            UNION ALL SELECT concat_ws(' ', code, name_i18n::text) FROM facilities_arealevel
            UNION ALL SELECT concat_ws(' ', code, name, short_name) FROM facilities_authority
            UNION ALL SELECT name FROM facilities_department
            UNION ALL SELECT name FROM facilities_adminarea
            UNION ALL SELECT concat_ws(' ', code, name_i18n::text) FROM facilities_facilitytype
            UNION ALL SELECT name FROM routing_holiday) x""")
        english(cur.fetchone()[0])
        # Translated fields hold the configured language only.
        cur.execute("""SELECT count(*) FROM routing_category
                       WHERE name_i18n ?| array['ru'] OR group_i18n ?| array['ru'] OR description_i18n ?| array['ru']""")
        assert cur.fetchone()[0] == 0
        cur.execute("SELECT count(*) FROM facilities_facilitytype WHERE name_i18n ?| array['ru'] OR name_i18n = '{}'")
        assert cur.fetchone()[0] == 0
    assert Category.objects.filter(active=True).count() == 8
    assert Facility.objects.filter(dataset__code="testcity-osm", valid_to__isnull=True).count() == 701
    assert not Category.objects.filter(code__startswith="yard-").exists()


# ---- routing -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("category, where, expect_authority, rule", [
    # a facility rule: the street light's owner (no operator tag: the council of its neighbourhood)
    ("street-light-out", lambda: inside(facility("street_light")), lambda: facility("street_light").owner, "facility"),
    # a facility rule whose owner came from the operator tag through the value map
    ("city-bike-station", lambda: inside(facility("bike_station")), lambda: Authority.objects.get(code="city-bikes"),
     "facility"),
    # a city-wide department rule
    ("graffiti", lambda: inside(facility("school")), lambda: Authority.objects.get(code="urban-environment"),
     "department"),
    # the major district's office (the major_district level's jurisdiction)
    ("abandoned-vehicle", lambda: (24.94, 60.175), lambda: Authority.objects.get(code="office-NORTH"), "area"),
    # the neighbourhood council, in the department the routing table names for the group "Streets"
    ("pothole", lambda: (24.95, 60.165), lambda: Authority.objects.get(code="council-SOUTH-E"), "area"),
])
def test_routing_by_osm_facilities_and_city_wide_rules(db, category, where, expect_authority, rule):
    lon, lat = where()
    decision = route((lon, lat), Category.objects.get(code=category))
    assert decision.authority == expect_authority()
    assert decision.rule.startswith(rule), decision.rule
    english(decision.explanation_en or "")
    if category == "pothole":
        assert decision.department.name == "Street Maintenance"


def test_deadlines_count_working_days_in_helsinki_with_finlands_holidays(db):
    helsinki = zoneinfo.ZoneInfo("Europe/Helsinki")
    # Wednesday 23 December 2026, 10:00: Christmas Eve and Christmas Day are holidays, then a weekend.
    start = datetime.datetime(2026, 12, 23, 10, 0, tzinfo=helsinki)
    assert add_working_days(start, 3) == datetime.datetime(2026, 12, 30, 10, 0, tzinfo=helsinki)
    # Thursday 2 April 2026: Good Friday and Easter Monday.
    assert add_working_days(datetime.datetime(2026, 4, 2, 9, 0, tzinfo=helsinki), 1).date() == datetime.date(2026, 4, 7)
    assert timezone.localtime(timezone.now()).tzinfo.key == "Europe/Helsinki"


# ---- Open311 -------------------------------------------------------------------------------------------------

def test_open311_lists_the_english_catalogue(client):
    services = json.loads(english(client.get("/open311/v2/services.json").content.decode()))
    assert {s["service_code"] for s in services} >= {"bus-stop-damage", "graffiti", "street-light-out"}
    bus = next(s for s in services if s["service_code"] == "bus-stop-damage")
    assert (bus["service_name"], bus["group"]) == ("Damaged bus stop", "Transport")
    definition = json.loads(english(client.get("/open311/v2/services/bus-stop-damage.json").content.decode()))
    assert [v["name"] for v in definition["attributes"][0]["values"]] == ["The shelter", "The timetable",
                                                                        "Something else"]
    english(client.get("/open311/v2/services.xml").content.decode())
    english(client.get("/open311/v2/discovery.json").content.decode())


def test_open311_post_and_read_a_request_in_english(client, api_key):
    stop = facility("bus_stop")
    lon, lat = inside(stop)
    response = client.post("/open311/v2/requests.json", {
        "api_key": api_key, "service_code": "bus-stop-damage", "lat": str(lat), "long": str(lon),
        "attribute[part]": "shelter", "description": "The glass of the shelter is broken",
        "email": "resident@example.org"})
    assert response.status_code == 201, response.content
    posted = json.loads(english(response.content.decode()))[0]
    detail = json.loads(english(client.get(f"/open311/v2/requests/{posted['service_request_id']}.json")
                                .content.decode()))[0]
    assert detail["agency_responsible"] == stop.owner.name
    assert detail["service_name"] == "Damaged bus stop"
    english(client.get(f"/open311/v2/requests/{posted['service_request_id']}.xml").content.decode())
    complaint = Complaint.objects.get(pk=posted["service_request_id"]) if str(posted["service_request_id"]).isdigit() \
        else Complaint.objects.order_by("-pk").first()
    assert complaint.decision.facility_id == stop.pk


@pytest.mark.parametrize("data, code", [
    ({"lat": "55.75", "long": "37.62"}, "400"),            # outside the city
    ({"service_code": "no-such-service"}, "404"),
    ({"attribute[part]": ""}, "400"),                     # a required question unanswered
])
def test_open311_errors_are_english(client, api_key, data, code):
    stop = facility("bus_stop")
    lon, lat = inside(stop)
    form = {"api_key": api_key, "service_code": "bus-stop-damage", "lat": str(lat), "long": str(lon),
            "attribute[part]": "shelter", "description": "x", **data}
    response = client.post("/open311/v2/requests.json", form)
    assert response.status_code == int(code) or (code == "404" and response.status_code == 400), response.content
    errors = json.loads(english(response.content.decode()))
    assert errors and all(e["description"] for e in errors)


# ---- the staff flow, the statistics, the mail -------------------------------------------------------------------

def test_staff_take_and_answer_a_ticket_in_english(db):
    lamp = facility("street_light")
    complaint = complaint_create(category=Category.objects.get(code="street-light-out"),
                                 point=Point(
                                     *inside(lamp), srid=4326),
                                 description="The lamp is dark")
    department = complaint.department
    assert department.authority == lamp.owner
    user = get_user_model().objects.create_user(username="testcity-staff", is_staff=True)
    department.staff.add(user)
    client = Client()
    client.force_login(user)
    listing = english(client.get("/staff/").content.decode())
    assert complaint.tracking_code in listing or f"/staff/t/{complaint.pk}/" in listing
    page = english(client.get(f"/staff/t/{complaint.pk}/").content.decode())
    assert "Street light out" in page
    assert client.post(f"/staff/t/{complaint.pk}/take/").status_code == 302
    assert client.post(f"/staff/t/{complaint.pk}/answer/", {"text": "The lamp was replaced"}).status_code == 302
    complaint.refresh_from_db()
    assert complaint.state in (State.ANSWERED, State.RESOLVED)
    english(client.get(f"/staff/t/{complaint.pk}/").content.decode())
    english(Client().get(f"/c/{complaint.tracking_code}/").content.decode())


def test_statistics_in_english(client, db):
    from web.selectors import statistics_refresh

    for kind in ("street_light", "school"):
        complaint_create(category=Category.objects.get(code="graffiti"),
                         point=Point(
                             *inside(facility(kind)), srid=4326), description="Paint on the wall")
    statistics_refresh()
    html = english(client.get("/stats/").content.decode())
    assert "Urban Environment" in html
    assert client.get("/stats/").context["s"]["total"] >= 2


def test_the_tracking_mail_is_english(db, mailoutbox):
    from complaints.outbox import outbox_send_due

    complaint_create(category=Category.objects.get(code="pothole"),
                     point=Point(24.95, 60.165, srid=4326),
                     description="A deep hole", email="resident@example.org")
    outbox_send_due()
    assert mailoutbox, "no tracking mail"
    message = mailoutbox[-1]
    english(message.subject + message.body + message.from_email)
    assert "Test City Reports" in message.from_email


# ---- a report in the browser -------------------------------------------------------------------------------------

@pytest.mark.usefixtures("demo_city")
def test_a_resident_reports_a_damaged_bus_stop_in_the_browser(page, shots):
    stop = facility("bus_stop")
    lon, lat = inside(stop)
    open_map(page, lat=lat, lon=lon, zoom=18)
    english(page.content())
    result = report_problem(page, shots, lat=lat, lon=lon, category="bus-stop-damage",
                            description="The timetable is missing")
    from playwright.sync_api import expect

    expect(page.locator("#result-department")).to_contain_text(stop.owner.short_name)
    english(result.inner_text())
    assert page.evaluate("document.documentElement.lang") == "en"
    code = page.locator("#result-code").inner_text().strip()
    complaint = Complaint.objects.get(tracking_code=code)
    assert complaint.decision.facility_id == stop.pk
