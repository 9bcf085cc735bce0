"""Not reporting twice: the open complaints near a point (complaints.selectors.complaints_nearby) and
GET /api/v1/nearby: within 250 m by true distance, the same category group, the five nearest, a description alike as
the tie-break, public fields only, never hidden or closed ones; bad input a 400 list; rate-limited; in the schema."""
import pytest
import yaml
from django.contrib.gis.geos import Point
from django.db import connection
from pyproj import Geod

from complaints.models import CLOSED_STATES, Complaint, State
from complaints.selectors import complaints_nearby
from routing.models import Category

from .factories import MOSCOW

pytestmark = pytest.mark.django_db
URL = "/api/v1/nearby"
GEOD = Geod(ellps="WGS84")


def at(metres, azimuth=0.0, origin=MOSCOW):
    """The point `metres` from origin on the spheroid, towards `azimuth` degrees."""
    lon, lat, _ = GEOD.fwd(origin[0], origin[1], azimuth, metres)
    return Point(lon, lat, srid=4326)


@pytest.fixture
def other_group(db):
    return Category.objects.create(code="t-cmp-road", name_i18n={"ru": "Дорога", "en": "Road"},
                                   group_i18n={"ru": "Дороги", "en": "Roads"}, rule=Category.Rule.AREA,
                                   area_level_id="district")


@pytest.fixture
def same_group(db, category):
    return Category.objects.create(code="t-cmp-yard-2", name_i18n={"ru": "Двор 2", "en": "Yard 2"},
                                   group_i18n=category.group_i18n, rule=Category.Rule.AREA, area_level_id="district")


def ids(found):
    return [n.complaint_id for n in found]


@pytest.mark.parametrize("azimuth", [0, 90, 180, 270, 45])
def test_within_the_radius_by_true_distance_nearest_first(make_complaint, category, azimuth):
    far, edge, near, outside = (make_complaint(location=at(m, azimuth)) for m in (200, 245, 30, 256))
    found = complaints_nearby(MOSCOW, category=category)
    assert ids(found) == [near.pk, far.pk, edge.pk]
    assert [round(n.distance_m) for n in found] == [30, 200, 245]
    assert outside.pk not in ids(found)


def test_the_five_nearest_only(make_complaint, category):
    made = [make_complaint(location=at(20 + 30 * i, 17 * i)) for i in range(7)]
    assert ids(complaints_nearby(MOSCOW, category=category)) == [c.pk for c in made[:5]]


def test_the_same_category_group_only(make_complaint, category, same_group, other_group):
    mine = make_complaint(location=at(50))
    sibling = make_complaint(location=at(60), category=same_group)
    other = make_complaint(location=at(40), category=other_group)
    assert ids(complaints_nearby(MOSCOW, category=category)) == [mine.pk, sibling.pk]
    assert ids(complaints_nearby(MOSCOW, category=other_group)) == [other.pk]
    assert ids(complaints_nearby(MOSCOW)) == [other.pk, mine.pk, sibling.pk]  # no category: every group


@pytest.mark.parametrize("state", list(State))
def test_open_complaints_only(make_complaint, category, state):
    complaint = make_complaint(location=at(80), state=state)
    assert (complaint.pk in ids(complaints_nearby(MOSCOW, category=category))) == (state not in CLOSED_STATES)


@pytest.mark.parametrize("described", ["first", "second"])
def test_a_description_alike_breaks_a_tie_of_distance(make_complaint, category, described):
    texts = {"first": "Сломаны качели на детской площадке", "second": "Переполнены мусорные контейнеры у подъезда"}
    a = make_complaint(location=at(102, 10), description=texts["first"])
    b = make_complaint(location=at(110, 200), description=texts["second"])
    found = complaints_nearby(MOSCOW, category=category, description=texts[described] + " во дворе")
    assert ids(found)[:2] == ([a.pk, b.pk] if described == "first" else [b.pk, a.pk])
    # a clearly nearer one still comes first, whatever it says
    c = make_complaint(location=at(20), description="Другое")
    assert ids(complaints_nearby(MOSCOW, category=category, description=texts["second"]))[0] == c.pk


def test_a_complaint_itself_can_be_left_out(make_complaint, category):
    one, two = make_complaint(location=at(10)), make_complaint(location=at(20))
    assert ids(complaints_nearby(one.location, category=category, exclude=one.pk)) == [two.pk]


def test_a_scope_keeps_only_what_it_holds(make_complaint, category, departments):
    mine = make_complaint(location=at(90))
    make_complaint(location=at(10), department=departments["b"])
    scope = Complaint.objects.filter(department=departments["a"])
    assert ids(complaints_nearby(MOSCOW, category=category, among=scope)) == [mine.pk]


def test_the_open_complaints_index_is_used():
    with connection.cursor() as cur:
        cur.execute("SET LOCAL enable_seqscan = off")
        cur.execute("EXPLAIN SELECT c.id FROM complaints_complaint c WHERE c.state <> ALL(%s) "
                    "AND c.location && ST_Expand(ST_SetSRID(ST_MakePoint(37.6, 55.7), 4326), 0.01)",
                    [[str(s) for s in CLOSED_STATES]])
        plan = "\n".join(r[0] for r in cur.fetchall())
    assert "complaint_open_location" in plan, plan


# --- GET /api/v1/nearby --------------------------------------------------------------------------------

def get(client, **params):
    return client.get(URL, params, headers={"accept": "application/json"})


def test_the_api_answers_public_fields_only(client, make_complaint, category):
    secret = make_complaint(location=at(40), description="Яма во дворе", email="ivan@example.org",
                            phone="+7 900 000-00-00", first_name="Иван")
    secret.description = f"Мой код {secret.tracking_code}, яма во дворе"
    secret.save(update_fields=["description"])
    make_complaint(location=at(60), state=State.HIDDEN, description="скрыто")
    response = get(client, lat=MOSCOW[1], long=MOSCOW[0], service_code=category.code, description="яма")
    assert response.status_code == 200 and response["Content-Type"].startswith("application/json")
    assert "no-store" in response["Cache-Control"]
    body = response.json()
    assert [item["service_request_id"] for item in body] == [str(secret.pk)]
    item = body[0]
    assert set(item) == {"service_request_id", "service_code", "service_name", "distance_m", "status", "state",
                         "description", "requested_datetime", "lat", "long"}
    assert (item["service_code"], item["distance_m"], item["status"]) == (category.code, 40, "open")
    text = response.content.decode()
    for private in (secret.tracking_code, secret.token, "ivan@example.org", "+7 900", "Иван", "скрыто",
                    secret.confirmation_secret):
        assert private not in text


BAD = {
    "no point": ({}, "lat"),
    "no long": ({"lat": "55.76"}, "long"),
    "no lat": ({"long": "37.6"}, "lat"),
    "lat not a number": ({"lat": "north", "long": "37.6"}, "lat"),
    "long with a comma": ({"lat": "55.76", "long": "37,6"}, "long"),
    "lat NaN": ({"lat": "nan", "long": "37.6"}, "lat"),
    "long infinite": ({"lat": "55.76", "long": "-inf"}, "long"),
    "lat overflowing": ({"lat": "1e999", "long": "37.6"}, "lat"),
    "lat out of range": ({"lat": "90.5", "long": "37.6"}, "lat"),
    "long out of range": ({"lat": "55.76", "long": "181"}, "long"),
    "unknown service_code": ({"lat": "55.76", "long": "37.6", "service_code": "no-such"}, "no-such"),
    "service_code too long": ({"lat": "55.76", "long": "37.6", "service_code": "x" * 65}, "service_code"),
    "description too long": ({"lat": "55.76", "long": "37.6", "description": "я" * 1001}, "description"),
    "service_code with a NUL": ({"lat": "55.76", "long": "37.6", "service_code": "yard\x00"}, "service_code"),
    "description with a control character": ({"lat": "55.76", "long": "37.6", "description": "яма\x07"},
                                             "description"),
    "description with a NUL": ({"lat": "55.76", "long": "37.6", "description": "я\x00ма"}, "description"),
}


@pytest.mark.parametrize("params, says", BAD.values(), ids=BAD.keys())
def test_bad_input_is_a_clear_400_in_json(client, params, says):
    response = get(client, **params)
    assert response.status_code == 400 and response["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body, list) and body and all(set(e) == {"code", "description"} for e in body)
    assert all(e["code"] == 400 and len(e["description"]) <= 300 for e in body)
    assert any(says in e["description"] for e in body), body


def test_an_inactive_service_is_unknown(client, category):
    Category.objects.filter(pk=category.pk).update(active=False)
    assert get(client, lat=MOSCOW[1], long=MOSCOW[0], service_code=category.code).status_code == 400


def test_it_is_rate_limited_per_client(client, settings):
    settings.LIMIT_API_NEARBY = "2/m"
    assert [get(client, lat=MOSCOW[1], long=MOSCOW[0]).status_code for _ in range(2)] == [200, 200]
    response = get(client, lat=MOSCOW[1], long=MOSCOW[0])
    assert response.status_code == 429 and int(response["Retry-After"]) >= 1 and response.json()[0]["code"] == 429


def test_it_is_in_the_openapi_schema(client):
    schema = yaml.safe_load(client.get("/api/schema/").content)
    operation = schema["paths"]["/api/v1/nearby"]["get"]
    params = {p["name"]: p for p in operation["parameters"]}
    assert set(params) == {"lat", "long", "service_code", "description"}
    assert params["lat"]["required"] and params["long"]["required"] and not params["service_code"].get("required")
    assert {"200", "400", "429"} <= set(operation["responses"])
    item = operation["responses"]["200"]["content"]["application/json"]["schema"]["items"]["$ref"].split("/")[-1]
    assert {"service_request_id", "service_code", "distance_m", "status"} <= set(
        schema["components"]["schemas"][item]["properties"])


@pytest.mark.parametrize("found", [0, 1, 5])
def test_the_api_reads_its_answer_in_one_statement(client, make_complaint, category, found):
    """The category's lookup and the nearby statement, which also reads the public fields: no query per answer and
    no second query for the complaints' details (each round trip is a wait for a core on a busy server)."""
    from django.test.utils import CaptureQueriesContext

    made = [make_complaint(location=at(20 + 30 * i), description=f"Яма {i}") for i in range(found)]
    with CaptureQueriesContext(connection) as queries:
        response = get(client, lat=MOSCOW[1], long=MOSCOW[0], service_code=category.code, description="яма")
    assert response.status_code == 200
    body = response.json()
    assert [item["service_request_id"] for item in body] == [str(c.pk) for c in made]
    for item, complaint in zip(body, made):
        assert (item["state"], item["description"], item["long"], item["lat"], item["service_name"]) == (
            complaint.state, complaint.description, pytest.approx(complaint.location.x),
            pytest.approx(complaint.location.y), category.name_i18n["ru"])
    assert len(queries.captured_queries) == 2, [q["sql"][:80] for q in queries.captured_queries]
