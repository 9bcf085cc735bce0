"""Reporting from the map: the resident sees at once where it went and why; bad input gets a message beside its
field (JSON 400), never a stack trace."""
import json

import pytest

from complaints.models import Complaint

from .conftest import TVERSKAYA, png_bytes


def post(client, **data):
    defaults = {"lon": TVERSKAYA[0], "lat": TVERSKAYA[1], "category": "yard-rubbish",
                "description": "Мусор во дворе", "email": "resident@example.com"}
    response = client.post("/report/", {**defaults, **data}, HTTP_ACCEPT="application/json")
    assert response["Content-Type"].startswith("application/json")
    return response.status_code, response.json()


def test_the_resident_sees_where_it_went_and_why(client, db):
    status, body = post(client)
    assert status == 200
    complaint = Complaint.objects.get(tracking_code=body["tracking_code"])
    assert body["department"] == complaint.department.display_name
    assert body["explanation"] == complaint.decision.explanation_ru
    assert body["url"] == f"/c/{complaint.tracking_code}/"
    assert complaint.email == "resident@example.com" and complaint.source == "web"


def test_a_problem_inside_a_school_goes_to_the_school(client, school):
    facility, lon, lat = school
    status, body = post(client, lon=lon, lat=lat, category="school-building", facility=facility.id,
                        **{"attribute[damage]": "Сломан забор"})
    assert status == 200, body
    complaint = Complaint.objects.get(tracking_code=body["tracking_code"])
    assert complaint.department.authority_id == facility.owner_id
    assert complaint.facility_id == facility.id
    assert facility.owner.short_name in body["department"]


def test_a_photo_is_attached(client, db, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    from django.core.files.uploadedfile import SimpleUploadedFile

    status, body = post(client, photo=SimpleUploadedFile("p.png", png_bytes(), content_type="image/png"))
    assert status == 200
    assert Complaint.objects.get(tracking_code=body["tracking_code"]).photos.count() == 1


@pytest.mark.parametrize("data, field", [
    ({"description": ""}, "description"),
    ({"description": "x" * 4001}, "description"),
    ({"email": "not-an-address"}, "email"),
    ({"category": ""}, "category"),
    ({"category": "no-such-category"}, "category"),
    ({"lat": "91"}, "location"),
    ({"lat": "nan"}, "location"),
    ({"lon": "181"}, "location"),
    ({"lon": "30.3", "lat": "59.9"}, "location"),  # outside the city
    ({"category": "school-building"}, "attribute[damage]"),  # a required extra question
    ({"category": "road-pothole", "attribute[size]": "enormous"}, "attribute[size]"),
    ({"attribute[nonsense]": "1"}, "__all__"),
    ({"description": "null \x00 byte"}, "description"),
    ({"description": "a bell \x07 and an escape \x1b"}, "description"),  # XML can't carry them: complaints refuses
])
def test_bad_input_gets_a_message_beside_its_field(client, db, data, field):
    before = Complaint.objects.count()
    status, body = post(client, **data)
    assert status == 400
    assert list(body["errors"]) == [field] and body["errors"][field][0]
    assert Complaint.objects.count() == before


def test_not_an_image_is_refused(client, db):
    from django.core.files.uploadedfile import SimpleUploadedFile

    status, body = post(client, photo=SimpleUploadedFile("p.jpg", b"<html>not a photo</html>"))
    assert status == 400 and "JPEG" in body["errors"]["photo"][0]


def test_outside_the_city_says_so(client, db):
    status, body = post(client, lon="30.3", lat="59.9")
    assert status == 400 and "за пределами города" in body["errors"]["location"][0]


def test_reporting_needs_the_csrf_token(db):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    response = client.post("/report/", {"lon": TVERSKAYA[0], "lat": TVERSKAYA[1]})
    assert response.status_code == 403
    page = client.get("/report/")  # without JavaScript: the one-page form
    assert page.status_code == 200 and b'name="csrfmiddlewaretoken"' in page.content


def test_messages_speak_english_to_english_readers(client, db):
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    status, body = post(client, description="")
    assert body["errors"]["description"] == ["This field is required."]
    status, body = post(client)
    assert body["explanation"] == Complaint.objects.get(tracking_code=body["tracking_code"]).decision.explanation_en
    assert json.dumps(body)  # plain JSON
