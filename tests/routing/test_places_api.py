"""GET /api/v1/places (routing/api.py over facilities.search): the answer's shape, bad input as the house's 400
list, the rate limit, the OpenAPI schema."""
import pytest
import yaml

pytestmark = pytest.mark.django_db
URL = "/api/v1/places"


def get(client, **params):
    return client.get(URL, params, headers={"accept": "application/json"})


def test_the_answer_is_a_ranked_list_of_places(client):
    response = get(client, q="нижегородская 3")
    assert response.status_code == 200 and response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body and all(set(p) == {"kind", "id", "label", "detail", "lat", "long", "bbox"} for p in body)
    assert (body[0]["kind"], body[0]["label"]) == ("address", "Нижегородская улица, дом 3")
    assert 55 < body[0]["lat"] < 56 and 37 < body[0]["long"] < 38 and body[0]["bbox"] is None


def test_an_area_comes_with_its_box(client):
    place = get(client, q="Тверской район").json()[0]
    assert place["kind"] == "area" and len(place["bbox"]) == 4
    west, south, east, north = place["bbox"]
    assert west < place["long"] < east and south < place["lat"] < north


@pytest.mark.parametrize("n", [1, 3, 10])
def test_limit(client, n):
    assert len(get(client, q="школа", limit=n).json()) == n


def test_nothing_found_is_an_empty_list(client):
    response = get(client, q="Qwxz Jjjvv")
    assert response.status_code == 200 and response.json() == []


BAD = {
    "no query": ({}, "q"),
    "empty query": ({"q": ""}, "q"),
    "one character": ({"q": "я"}, "q"),
    "blank": ({"q": "    "}, "q"),
    "too long": ({"q": "я" * 201}, "200"),
    "a control character": ({"q": "тверской\x07"}, "control"),
    "a NUL": ({"q": "твер\x00ской"}, "q"),
    "limit zero": ({"q": "тверской", "limit": "0"}, "limit"),
    "limit too big": ({"q": "тверской", "limit": "11"}, "limit"),
    "limit not a number": ({"q": "тверской", "limit": "all"}, "limit"),
}


@pytest.mark.parametrize("params, says", BAD.values(), ids=BAD.keys())
def test_bad_input_is_a_clear_400_in_json(client, params, says):
    response = get(client, **params)
    assert response.status_code == 400 and response["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body, list) and body and all(set(e) == {"code", "description"} for e in body)
    assert all(e["code"] == 400 and len(e["description"]) <= 300 for e in body)
    assert any(says in e["description"] for e in body), body


@pytest.mark.parametrize("q", ["' OR 1=1 --", "a:* & !b | c", "тверской:*", "!тверской", "<->", "%_%", "((("])
def test_query_syntax_is_only_text(client, q):
    assert get(client, q=q).status_code == 200


def test_it_is_rate_limited_per_client(client, settings):
    settings.LIMIT_API_PLACES = "2/m"
    assert [get(client, q="тверской").status_code for _ in range(2)] == [200, 200]
    response = get(client, q="тверской")
    assert response.status_code == 429 and int(response["Retry-After"]) >= 1 and response.json()[0]["code"] == 429
    assert client.get(URL, {"q": "тверской"}, REMOTE_ADDR="10.9.8.7").status_code == 200


def test_it_is_in_the_openapi_schema(client):
    schema = yaml.safe_load(client.get("/api/schema/").content)
    operation = schema["paths"]["/api/v1/places"]["get"]
    params = {p["name"]: p for p in operation["parameters"]}
    assert set(params) == {"q", "limit"} and params["q"]["required"]
    assert params["q"]["schema"]["maxLength"] == 200
    assert {"200", "400", "429"} <= set(operation["responses"])
