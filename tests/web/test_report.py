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


@pytest.mark.parametrize("language, label", [("ru", "Что повреждено"), ("en", "What is damaged")])
def test_every_field_is_checked_at_once_and_a_question_is_named_by_its_label(client, school, language, label):
    """The form's own fields and the category's questions together; never the question's internal code."""
    from routing.models import CategoryAttribute

    question = CategoryAttribute.objects.get(category__code="school-building", code="damage")
    assert label == question.description_i18n[language]
    client.post("/i18n/setlang/", {"language": language, "next": "/"})
    facility, lon, lat = school
    before = Complaint.objects.count()
    status, body = post(client, lon=lon, lat=lat, category="school-building", description="", email="nope")
    assert status == 400
    assert set(body["errors"]) == {"description", "email", "attribute[damage]"}
    message = body["errors"]["attribute[damage]"][0]
    assert label in message and "“damage”" not in message and "«damage»" not in message
    # with the form's fields right, complaint_create's own checks: all of them as well
    status, body = post(client, lon=lon, lat=lat, category="school-building", description="a \x07 bell")
    assert status == 400 and set(body["errors"]) == {"description", "attribute[damage]"}
    assert Complaint.objects.count() == before


def test_several_photos_are_attached(client, db, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    from django.core.files.uploadedfile import SimpleUploadedFile

    photos = [SimpleUploadedFile(f"p{i}.png", png_bytes(), content_type="image/png") for i in range(3)]
    status, body = post(client, photo=photos)
    assert status == 200
    assert Complaint.objects.get(tracking_code=body["tracking_code"]).photos.count() == 3
    settings.PHOTO_MAX_PER_COMPLAINT = 2
    photos = [SimpleUploadedFile(f"p{i}.png", png_bytes(), content_type="image/png") for i in range(3)]
    status, body = post(client, photo=photos)
    assert status == 400 and list(body["errors"]) == ["photo"]


def test_without_javascript_the_form_answers_with_pages(client, school):
    """The one-page form (GET /report/): messages beside the fields in the page, the chosen category's questions
    asked; then the result page with the tracking code."""
    facility, lon, lat = school
    form = {"lon": lon, "lat": lat, "category": "school-building", "description": "", "email": ""}
    page = client.post("/report/", form, HTTP_ACCEPT="text/html,application/xhtml+xml")
    html = page.content.decode()
    assert page.status_code == 400 and page["Content-Type"].startswith("text/html")
    assert 'id="err-description"' in html and 'name="attribute[damage]"' in html
    assert 'aria-invalid="true"' in html
    done = client.post("/report/", {**form, "description": "Сломан забор", "attribute[damage]": "Забор"},
                       HTTP_ACCEPT="text/html,application/xhtml+xml")
    assert done.status_code == 200
    complaint = Complaint.objects.order_by("-id").first()
    assert complaint.tracking_code in done.content.decode() and "no-store" in done["Cache-Control"]
