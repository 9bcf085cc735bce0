"""A bounded property-based run (schemathesis) of the project's own OpenAPI schema (/api/schema/) and of the
GeoReport v2 contract written from the spec (georeport_v2.yaml), against the server's WSGI application: data that
fits each schema and data that does not. Every answer: no 5xx; every error in the spec's form (a list of
{code, description} whose code is the status, in JSON or XML by the URL); and, for the project's schema, status
codes, content types and JSON bodies as the schema describes them.

Bounded: EXAMPLES per operation and generation mode (about 600 requests in all), no shrinking.
"""
import json
import pathlib
import xml.etree.ElementTree as ET

import pytest
import schemathesis
import yaml
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

from complaints.services import complaint_answer, complaint_create, complaint_take

from .conftest import ARBAT, SERVICE, TVERSKOY, make_service

pytestmark = pytest.mark.django_db
EXAMPLES = 20
CONTRACT = pathlib.Path(__file__).with_name("georeport_v2.yaml")


def application(environ, start_response):
    from geo_ourcity.wsgi import application as app
    return app(environ, start_response)


@pytest.fixture
def world(db, api_key, dispatcher):
    """Something to find: requests in two states, with an answer; a key the POSTs may use."""
    service = make_service()
    first = complaint_create(category=service, point=TVERSKOY, description="Яма", attributes={"kind": "hole"},
                             source="test", media_url="https://photos.example.org/1.jpg")
    complaint_create(category=service, point=ARBAT, description="Трещина", attributes={"kind": "crack"},
                     source="test")
    complaint_take(complaint=first, user=dispatcher)
    complaint_answer(complaint=first, user=dispatcher, text="Заделаем")
    return api_key


def error_form(ctx, response, case):
    """An error is the spec's list: [{code, description}] with the HTTP status as code (XML: errors/error)."""
    if response.status_code < 400 or not case.path.startswith(("/open311", "/services", "/requests", "/tokens",
                                                                 "/discovery")):
        return None
    content_type = response.headers.get("content-type", [""])[0]
    if content_type.startswith("text/xml"):
        root = ET.fromstring(response.content)
        assert root.tag == "errors", response.content[:300]
        errors = [{"code": int(e.findtext("code")), "description": e.findtext("description")}
                  for e in root.findall("error")]
    else:
        assert content_type.startswith("application/json"), (content_type, response.content[:300])
        errors = json.loads(response.content)
    assert isinstance(errors, list) and errors, response.content[:300]
    for error in errors:
        assert set(error) == {"code", "description"}, error
        assert error["code"] == response.status_code and error["description"], error
    return True


def run(schema, *, key, base_url, checks):
    """EXAMPLES cases per operation and mode; each sent to the WSGI application and checked."""
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations
    # The WSGI application runs in this thread, inside the test's transaction: the requests' ends must not close
    # the connection (as Django's own test client arranges).
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        _run(operations, key, base_url, checks, counter := [0])
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return counter[0], len(operations)


def _run(operations, key, base_url, checks, counter):
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            def check(case):
                if case.method == "POST" and isinstance(case.body, dict) and "api_key" in case.body and key:
                    case.body["api_key"] = key  # past the key check, into the rest of the validation
                response = case.call(base_url=base_url, app=application)
                counter[0] += 1
                case.validate_response(response, checks=[not_a_server_error, error_form, *checks])
            check()


def test_the_projects_openapi_schema(world, client):
    document = yaml.safe_load(client.get("/api/schema/").content)
    schema = schemathesis.openapi.from_dict(document)
    sent, operations = run(schema, key=world, base_url="http://testserver",
                           checks=[status_code_conformance, content_type_conformance, response_schema_conformance])
    assert operations >= 8 and sent >= operations * EXAMPLES


def test_the_georeport_v2_contract(world):
    schema = schemathesis.openapi.from_dict(yaml.safe_load(CONTRACT.read_text()))
    sent, operations = run(schema, key=None, base_url="http://testserver/open311/v2",
                           checks=[response_schema_conformance])
    assert operations == 7 and sent >= operations * EXAMPLES


def test_a_client_built_from_the_schema_can_post(world, client):
    """What the schema says a POST takes (its required fields, the media upload as a file) is what the server
    accepts: a request built from the schema alone is created."""
    document = yaml.safe_load(client.get("/api/schema/").content)
    post = document["paths"]["/open311/v2/requests.{fmt}"]["post"]
    multipart = post["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"].rsplit("/", 1)[1]
    body = document["components"]["schemas"][multipart]
    assert {"api_key", "service_code", "lat", "long"} <= set(body["required"])
    assert body["properties"]["media"] == {**body["properties"]["media"], "type": "array",
                                           "items": {"type": "string", "format": "binary"}}
    for status in ("400", "403", "404", "503"):
        if status in post["responses"] or status != "404":
            errors = post["responses"][status]["content"]["application/json"]["schema"]
            assert errors["type"] == "array" and errors["items"]["$ref"].endswith("/ErrorOutput")
    values = {"api_key": world, "service_code": SERVICE, "lat": TVERSKOY[1], "long": TVERSKOY[0],
              "description": "Построено по схеме"}
    from .conftest import image_file
    response = client.post("/open311/v2/requests.json",
                           {name: values[name] for name in body["required"]} | {"attribute[kind]": "hole",
                                                                                 "media": image_file()})
    assert response.status_code == 201, response.content
    created = json.loads(response.content)
    assert created[0]["service_request_id"]
