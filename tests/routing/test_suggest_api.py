"""GET /api/v1/suggestions: the contract integrators rely on (docs/open311.md), bad input, the rate limit, the
OpenAPI schema."""
import pytest
import yaml

from routing.models import Category

from .conftest import RED_SQUARE, SAINT_PETERSBURG

pytestmark = pytest.mark.django_db
URL = "/api/v1/suggestions"


def get(client, **params):
    return client.get(URL, params, headers={"accept": "application/json"})


def test_the_answer_is_a_ranked_list_of_active_services(client):
    response = get(client, description="Во дворе сломаны качели на детской площадке", lat=RED_SQUARE[1],
                   long=RED_SQUARE[0])
    assert response.status_code == 200 and response["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body, list) and len(body) == 5
    assert [set(item) for item in body] == [{"service_code", "confidence", "model"}] * 5
    assert body[0]["service_code"] == "yard-playground"
    confidences = [item["confidence"] for item in body]
    assert confidences == sorted(confidences, reverse=True) and all(0 <= c <= 1 for c in confidences)
    active = set(Category.objects.filter(active=True).values_list("code", flat=True))
    assert {item["service_code"] for item in body} <= active
    assert {item["model"] for item in body} == {response["X-Suggestion-Model"]} == {"lexical-1"}
    assert "no-store" in response["Cache-Control"]


@pytest.mark.parametrize("accept, extra", [("text/html", {}), ("application/xml", {}), ("*/*", {"format": "xml"})])
def test_it_is_json_whatever_is_asked(client, accept, extra):
    response = client.get(URL, {"description": "яма", **extra}, headers={"accept": accept})
    assert response.status_code == 200 and response.json()[0]["service_code"]


@pytest.mark.parametrize("n", [1, 3, 10])
def test_limit(client, n):
    assert len(get(client, description="светофор", limit=n).json()) == n


def test_without_a_point_the_words_alone_answer(client):
    assert get(client, description="не работает светофор").json()[0]["service_code"] == "road-traffic-light"


BAD = {
    "no description": ({}, "description"),
    "empty description": ({"description": ""}, "description"),
    "blank description": ({"description": "   \t  "}, "description"),
    "too long a description": ({"description": "я" * 4001}, "description"),
    "lat without long": ({"description": "яма", "lat": "55.75"}, "lat and long go together"),
    "long without lat": ({"description": "яма", "long": "37.62"}, "lat and long go together"),
    "lat not a number": ({"description": "яма", "lat": "north", "long": "37.62"}, "lat"),
    "long not a number": ({"description": "яма", "lat": "55.75", "long": "37,62"}, "long"),
    "lat NaN": ({"description": "яма", "lat": "nan", "long": "37.62"}, "lat"),
    "long infinite": ({"description": "яма", "lat": "55.75", "long": "inf"}, "long"),
    "lat overflowing": ({"description": "яма", "lat": "1e999", "long": "37.62"}, "lat"),
    "lat out of range": ({"description": "яма", "lat": "91", "long": "37.62"}, "lat"),
    "long out of range": ({"description": "яма", "lat": "55.75", "long": "-180.5"}, "long"),
    "outside the city": ({"description": "яма", "lat": SAINT_PETERSBURG[1], "long": SAINT_PETERSBURG[0]},
                         "outside the city"),
    "limit zero": ({"description": "яма", "limit": "0"}, "limit"),
    "limit too big": ({"description": "яма", "limit": "11"}, "limit"),
    "limit not a number": ({"description": "яма", "limit": "all"}, "limit"),
}


@pytest.mark.parametrize("params, says", BAD.values(), ids=BAD.keys())
def test_bad_input_is_a_clear_400_in_json(client, params, says):
    response = get(client, **params)
    assert response.status_code == 400 and response["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body, list) and body and all(set(e) == {"code", "description"} for e in body)
    assert all(e["code"] == 400 for e in body)
    assert any(says in e["description"] for e in body), body
    assert all(len(e["description"]) <= 300 for e in body)  # never echoes kilobytes back


def test_it_is_rate_limited_per_client(client, settings):
    settings.LIMIT_API_SUGGESTIONS = "3/m"
    assert [get(client, description="яма").status_code for _ in range(3)] == [200] * 3
    response = get(client, description="яма")
    assert response.status_code == 429 and int(response["Retry-After"]) >= 1
    assert response.json()[0]["code"] == 429
    other = client.get(URL, {"description": "яма"}, REMOTE_ADDR="10.9.8.7")
    assert other.status_code == 200  # another client has its own allowance


def test_it_is_in_the_openapi_schema(client):
    schema = yaml.safe_load(client.get("/api/schema/").content)
    operation = schema["paths"]["/api/v1/suggestions"]["get"]
    params = {p["name"]: p for p in operation["parameters"]}
    assert set(params) == {"description", "lat", "long", "limit"} and params["description"]["required"]
    assert {"200", "400", "429"} <= set(operation["responses"])
    item = operation["responses"]["200"]["content"]["application/json"]["schema"]["items"]["$ref"].split("/")[-1]
    assert set(schema["components"]["schemas"][item]["properties"]) == {"service_code", "confidence", "model"}
