"""POST requests: what is accepted and stored, and every kind of bad input (a 400 that says what is wrong,
nothing stored, never a 500). Keys: a missing, wrong or inactive api_key is a 403.
"""
import json
import random
import xml.etree.ElementTree as ET
from urllib.parse import urlencode

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from complaints.models import Complaint, ComplaintEvent
from open311.models import ApiKey

from .conftest import SERVICE, TVERSKOY, form, image_file, stored_counts

pytestmark = pytest.mark.django_db
URL = "/open311/v2/requests.json"
FORM = "application/x-www-form-urlencoded"


def post(client, data, url=URL, **headers):
    """urlencoded unless a file is in the data (then multipart, as the test client does)."""
    if any(hasattr(v, "read") or isinstance(v, list) and v and hasattr(v[0], "read") for v in data.values()):
        return client.post(url, data, **headers)
    return client.post(url, urlencode(data, doseq=True), content_type=FORM, **headers)


def test_post_stores_a_routed_complaint(client, service, api_key):
    data = form(api_key, **{"attribute[lanes][]": ["left", "right"], "attribute[depth_cm]": "12.5",
                            "attribute[seen_at]": "2026-11-20T08:30:00+03:00", "attribute[plate]": "A123BC",
                            "attribute[details]": "строка 1\nстрока 2", "address_string": "Красная пл.",
                            "jurisdiction_id": "mos.ru", "media_url": "http://example.org/p.jpg", "whatever": "x"})
    response = post(client, data)
    assert response.status_code == 201, response.content
    body = response.json()
    assert isinstance(body, list) and len(body) == 1
    assert list(body[0]) == ["service_request_id", "service_notice", "account_id"]
    complaint = Complaint.objects.get(pk=body[0]["service_request_id"])
    assert body[0]["service_notice"] == complaint.decision.explanation_ru and body[0]["account_id"] is None
    assert complaint.category.code == SERVICE and complaint.state == "assigned"
    assert (complaint.location.x, complaint.location.y) == pytest.approx(TVERSKOY)
    assert complaint.attributes == {"kind": "hole", "lanes": ["left", "right"], "depth_cm": 12.5,
                                    "seen_at": "2026-11-20T08:30:00+03:00", "plate": "A123BC",
                                    "details": "строка 1\nстрока 2"}
    assert (complaint.email, complaint.first_name, complaint.phone) == ("ivan@example.org", "Иван", "+7 900 000-00-00")
    assert complaint.source == "test-integrator"
    assert [e.kind for e in complaint.events.all()] == ["created", "routed"]
    assert ApiKey.objects.get().last_used_at is not None


def test_post_multipart_with_photo_and_xml_answer(client, service, api_key):
    data = form(api_key, media=image_file(), locale="en")
    response = client.post("/open311/v2/requests.xml", data)
    assert response.status_code == 201, response.content
    root = ET.fromstring(response.content)
    assert root.tag == "service_requests"
    complaint = Complaint.objects.get(pk=root.findtext("request/service_request_id"))
    assert root.findtext("request/service_notice") == complaint.decision.explanation_en
    assert root.find("request/account_id").text is None
    assert complaint.photos.count() == 1 and complaint.photos.get().content_type == "image/jpeg"


def test_empty_parameters_count_as_absent(client, service, api_key):
    data = form(api_key, description="", email="", phone="", first_name="", address_string="", **{
        "attribute[depth_cm]": "", "attribute[lanes][]": ""})
    response = post(client, data)
    assert response.status_code == 201, response.content
    complaint = Complaint.objects.get(pk=response.json()[0]["service_request_id"])
    assert complaint.description == "" and complaint.email == "" and complaint.attributes == {"kind": "hole"}


def test_api_key_in_the_query_string(client, service, api_key):
    data = form(api_key)
    del data["api_key"]
    assert post(client, data, url=f"{URL}?api_key={api_key}").status_code == 201


@pytest.mark.parametrize("key", ["missing", "", "wrong-key", "inactive"])
def test_post_without_a_valid_key_is_403(client, service, api_key, key):
    data = form(api_key)
    if key == "missing":
        del data["api_key"]
    elif key == "inactive":
        ApiKey.objects.update(active=False)
    else:
        data["api_key"] = key
    before = stored_counts()
    response = post(client, data)
    assert response.status_code == 403
    assert response.json()[0]["code"] == 403 and "api_key" in response.json()[0]["description"]
    assert stored_counts() == before
    response = post(client, data, url="/open311/v2/requests.xml")
    assert response.status_code == 403 and ET.fromstring(response.content).tag == "errors"


def text_file():
    return SimpleUploadedFile("photo.jpg", b"this is not an image at all", content_type="image/jpeg")


BAD_INPUT = {
    # field missing
    "no service_code": {"service_code": None},
    "no location": {"lat": None, "long": None},
    "address_string alone that no place matches": {"lat": None, "long": None, "address_string": "Qwxz Jjjvv, 1"},
    "address_id alone": {"lat": None, "long": None, "address_id": "77-1234"},
    "lat without long": {"long": None},
    "long without lat": {"lat": None},
    "required attribute missing": {"attribute[kind]": None},
    # wrong type
    "lat not a number": {"lat": "north"},
    "long not a number": {"long": "37,6"},
    "lat NaN": {"lat": "NaN"},
    "long nan": {"long": "nan"},
    "lat inf": {"lat": "inf"},
    "long -Infinity": {"long": "-Infinity"},
    "lat overflow": {"lat": "1e999"},
    "email not an email": {"email": "ivan at example"},
    "number attribute not a number": {"attribute[depth_cm]": "deep"},
    "number attribute NaN": {"attribute[depth_cm]": "NaN"},
    "datetime attribute not a date": {"attribute[seen_at]": "yesterday evening"},
    "two values for a single-value attribute": {"attribute[kind][]": ["hole", "crack"], "attribute[kind]": None},
    "malformed attribute field": {"attribute[kind": "hole"},
    "media as text": {"media": "not-a-file"},
    # out of range
    "lat 91": {"lat": "91"},
    "lat -90.0001": {"lat": "-90.0001"},
    "long 181": {"long": "181"},
    "long -180.5": {"long": "-180.5"},
    "outside the city": {"lat": "48.8566", "long": "2.3522"},
    # unknown codes and values
    "unknown service_code": {"service_code": "no-such-service"},
    "unknown attribute value": {"attribute[kind]": "volcano"},
    "unknown multi value": {"attribute[lanes][]": ["left", "sideways"]},
    "unknown attribute": {"attribute[colour]": "red"},
    # oversize, bad characters
    "description 4001": {"description": "я" * 4001},
    "description with NUL": {"description": "a\x00b"},
    "description with control char": {"description": "a\x07b"},
    "first_name too long": {"first_name": "И" * 101},
    "phone too long": {"phone": "1" * 51},
    "address_string too long": {"address_string": "a" * 501},
    "string attribute too long": {"attribute[plate]": "x" * 1001},
    "attribute with NUL": {"attribute[plate]": "a\x00"},
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_400_and_stores_nothing(client, service, api_key, case):
    before = stored_counts()
    response = post(client, form(api_key, **BAD_INPUT[case]))
    assert response.status_code == 400, (case, response.content)
    errors = response.json()
    assert errors and all(e["code"] == 400 and len(e["description"]) > 10 for e in errors), errors
    assert stored_counts() == before


def test_the_error_says_what_is_wrong(client, service, api_key):
    def description(**changes):
        return " ".join(e["description"] for e in post(client, form(api_key, **changes)).json())

    assert "no address or place in the city matches" in description(lat=None, long=None, address_string="Qwxz Jjjvv")
    assert "lat" in description(lat="91") and "90" in description(lat="91")
    assert "long" in description(long="181")
    assert "no-such" in description(service_code="no-such")
    assert "volcano" in description(**{"attribute[kind]": "volcano"})
    assert "kind" in description(**{"attribute[kind]": None})
    assert "4000" in description(description="x" * 4001)


@pytest.mark.parametrize("photo", ["text", "empty", "oversize", "gif", "six"])
@override_settings(PHOTO_MAX_BYTES=20_000)
def test_bad_photo_is_400_and_stores_nothing(client, service, api_key, photo):
    files = {
        "text": text_file(),
        "empty": SimpleUploadedFile("empty.jpg", b"", content_type="image/jpeg"),
        "oversize": SimpleUploadedFile("big.png", b"\x89PNG" + random.Random(1).randbytes(20_000),
                                       content_type="image/png"),
        "gif": image_file("anim.gif", "GIF"),
        "six": [image_file(f"p{i}.jpg") for i in range(6)],
    }[photo]
    before = stored_counts()
    response = client.post(URL, form(api_key, media=files))
    assert response.status_code == 400, response.content
    assert response.json()[0]["description"]
    assert stored_counts() == before


def test_json_body_is_refused(client, service, api_key):
    before = stored_counts()
    response = client.post(URL, json.dumps(form(api_key)), content_type="application/json")
    assert response.status_code == 415 and response.json()[0]["code"] == 415
    assert stored_counts() == before


@override_settings(OPEN311_MAX_BODY_BYTES=10_000)
def test_oversize_body_is_413(client, service, api_key):
    response = post(client, form(api_key, description="x" * 3000, **{"attribute[details]": "y" * 4000,
                                                                    "device_id": "z" * 4000}))
    assert response.status_code == 413 and "larger" in response.json()[0]["description"]
    assert response.json()[0]["code"] == 413


def test_no_input_gives_a_500(client, service, api_key):
    """Random junk in every field (and random fields): always an answer below 500, and 400s store nothing."""
    rng = random.Random(311)
    junk = ["", " ", "0", "-0", "1e308", "-1e309", "nan", "NaN", "inf", "55.75", "37.62", "91", "181", "x" * 5000,
            "\x00", "\x1b", "💥", "<b>&amp;</b>", "'; DROP TABLE x; --", "[]", "{}", "null", "true", "hole",
            "left", SERVICE, "2026-11-23T10:00:00+03:00", "2026-02-30", "a@b.c", "%00", "\r\n", "attribute[kind]"]
    fields = ["service_code", "lat", "long", "address_string", "address_id", "description", "email", "phone",
              "first_name", "last_name", "device_id", "account_id", "media_url", "jurisdiction_id",
              "attribute[kind]", "attribute[kind][]", "attribute[lanes][]", "attribute[depth_cm]",
              "attribute[seen_at]", "attribute[plate]", "attribute[]", "attribute[[x]]", "attribute", "media",
              "locale", "api_key"]
    created = 0
    for _ in range(150):
        data = form(api_key)
        for name in rng.sample(fields, rng.randint(1, 6)):
            data[name] = rng.choice(junk) if rng.random() < 0.8 else [rng.choice(junk), rng.choice(junk)]
        if rng.random() < 0.5:
            data["api_key"] = api_key
        before = stored_counts()
        response = post(client, data)
        assert response.status_code < 500, (data, response.content[:300])
        if response.status_code != 201:
            assert stored_counts() == before, data
        else:
            created += 1
        for params in ({"lat": rng.choice(junk), "long": rng.choice(junk), "radius": rng.choice(junk)},
                       {rng.choice(["start_date", "end_date", "status", "page", "service_request_id",
                                    "service_code", "updated_after"]): rng.choice(junk)}):
            assert client.get(URL, params).status_code < 500, params
    assert created > 0  # the junk was sometimes harmless; those went through
    assert ComplaintEvent.objects.filter(kind="routed").count() == Complaint.objects.count()


def test_the_service_and_its_attributes_are_read_in_two_queries(service, django_assert_num_queries):
    from open311.selectors import open311_service
    from routing.models import Category

    bare = Category.objects.create(code="o311-bare", name_i18n={"ru": "Без вопросов", "en": "No questions"},
                                   group_i18n={"ru": "Прочее", "en": "Other"})
    for category in (service, bare):
        expected = Category.objects.prefetch_related("attributes").get(pk=category.pk)
        with django_assert_num_queries(2):
            found = open311_service(category.code)
            attributes = list(found.attributes.all())
            assert [a.category.code for a in attributes] == [category.code] * len(attributes)
        assert [f.value_from_object(found) for f in Category._meta.concrete_fields] == [
            f.value_from_object(expected) for f in Category._meta.concrete_fields]
        assert [(a.pk, a.code, a.order, a.values, a.required, a.variable) for a in attributes] == [
            (a.pk, a.code, a.order, a.values, a.required, a.variable) for a in expected.attributes.all()]
    assert len(attributes) == 0 and len(list(open311_service(SERVICE).attributes.all())) == 7
    assert open311_service("no-such-service") is None
    bare.active = False
    bare.save()
    assert open311_service("o311-bare") is None


def test_a_post_costs_few_queries(client, service, api_key, django_assert_max_num_queries):
    post(client, form(api_key))  # the key's last_used_at is written at most every few minutes: not this time
    # the key with the catalogue's stamp (the service read before is still current), routing, the complaint with
    # its two history lines, its tracking mail's outbox row (one INSERT: the form has an address); + SAVEPOINT/
    # RELEASE here, inside the test's transaction (+ BEGIN/COMMIT if counted)
    with django_assert_max_num_queries(6) as queries:
        assert post(client, form(api_key)).status_code == 201
    outbox = [q["sql"] for q in queries.captured_queries if "complaints_outbox" in q["sql"]]
    assert len(outbox) == 1 and outbox[0].startswith("INSERT") and "ON CONFLICT DO NOTHING" in outbox[0]
