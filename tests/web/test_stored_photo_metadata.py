"""No photo is published with its metadata (issue 10 §5; a security reviewer's rule): whatever EXIF block a photo
carries - a GPS position, none, a malformed, hostile or 64 KB one, XMP, an ICC profile, a PNG eXIf or a WebP EXIF
chunk (tests/complaints/exif_samples.py) - what is stored has no EXIF, no GPS, no device name, no XMP, whether it
came by the residents' form, as Open311 media or with a volunteer's check. And nothing can store a photo that
complaints.photos did not re-encode (CleanPhotoField), the one owner of that rule."""
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from PIL import Image

from complaints.models import Complaint, Photo, VolunteerCheck
from complaints.photos import clean_photo
from tests.complaints.exif_samples import DEVICE, SAMPLES, sample_bytes
from tests.open311.conftest import form, make_service

from .test_report import post
from .test_volunteer import answer, district, vclient, volunteer  # noqa: F401 - the volunteers' fixtures

pytestmark = pytest.mark.django_db

TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
MARKS = [b"Exif", DEVICE, b"http://ns.adobe.com/xap", b"eXIf", b"ICC_PROFILE", b"GPS"]


def upload(name):
    fmt = SAMPLES[name][0]
    return SimpleUploadedFile(f"photo.{fmt.lower()}", sample_bytes(name), content_type=TYPES[fmt])


def assert_bare(data):
    for mark in MARKS:
        assert mark not in data, mark
    image = Image.open(io.BytesIO(data))
    assert not image.getexif()
    assert not {"exif", "xmp", "XML:com.adobe.xmp", "icc_profile", "comment"} & set(image.info)


@pytest.fixture
def media_dir(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")


@pytest.mark.parametrize("name", list(SAMPLES))
def test_the_residents_form_stores_the_photo_bare(name, client, media_dir):
    status, body = post(client, photo=[upload(name)])
    assert status == 200, body
    [photo] = Complaint.objects.get(tracking_code=body["tracking_code"]).photos.all()
    assert_bare(photo.file.read())


@pytest.mark.parametrize("name", list(SAMPLES))
def test_open311_media_is_stored_bare(name, client, media_dir):
    from open311.keys import api_key_issue

    make_service()
    key = api_key_issue(name="t-exif")[1]
    response = client.post("/open311/v2/requests.json", {**form(key), "media": upload(name)})
    assert response.status_code == 201, response.content
    [photo] = Photo.objects.all()
    assert_bare(photo.file.read())


@pytest.mark.parametrize("name", list(SAMPLES))
def test_a_volunteers_check_photo_is_stored_bare(name, vclient, answer, media_dir):  # noqa: F811
    complaint = answer()
    response = vclient.post(f"/volunteer/c/{complaint.pk}/check/",
                            {"verdict": "not_fixed", "note": "Мусор лежит", "photo": upload(name)})
    assert response.status_code == 302, response.content.decode()[:500]
    check = VolunteerCheck.objects.get(complaint=complaint)
    assert_bare(check.photo.read())


def test_nothing_stores_a_photo_that_was_not_re_encoded(report, media_dir):
    complaint = report()
    raw = SimpleUploadedFile("p.jpg", sample_bytes("jpeg, GPS"), content_type="image/jpeg")
    with pytest.raises(ValueError, match="clean_photo"), transaction.atomic():
        Photo.objects.create(complaint=complaint, file=raw, content_type="image/jpeg", width=64, height=48)
    assert not Photo.objects.exists()
    photo = Photo.objects.create(complaint=complaint, file=clean_photo(raw), content_type="image/jpeg",
                                 width=64, height=48)
    assert_bare(photo.file.read())
    photo.content_type = "image/jpeg"
    photo.save()  # a stored photo's row may change: its file is not written again
