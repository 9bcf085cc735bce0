"""/photos/<id>/: a complaint's photos (the resident's and the answers') are public, served by the application with
their stored type; a hidden complaint's photos are a 404, like the complaint."""
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from complaints import services

from .factories import image_bytes

pytestmark = pytest.mark.django_db


def upload(fmt="JPEG", name="p.jpg"):
    return SimpleUploadedFile(name, image_bytes(fmt), content_type=f"image/{fmt.lower()}")


def url(photo):
    return reverse("complaints:photo", kwargs={"photo_id": photo.pk})


def body(response):
    return b"".join(response.streaming_content)


@pytest.fixture
def answered(make_complaint, staff, media):
    """A complaint with the resident's photo (stored as the service stores it) and an answer with a PNG."""
    complaint = make_complaint()
    services._store_photo(complaint, services.clean_photo(upload()))
    services.complaint_answer(complaint=complaint, user=staff["a"], text="Готово", photo=upload("PNG", "a.png"))
    return complaint


def test_photos_are_served_as_stored(client, answered):
    resident = answered.photos.get(answer__isnull=True)
    answer = answered.photos.get(answer__isnull=False)
    assert url(resident) == f"/photos/{resident.pk}/"
    for photo, content_type in [(resident, "image/jpeg"), (answer, "image/png")]:
        response = client.get(url(photo))
        assert response.status_code == 200
        with photo.file.open("rb") as stored:
            assert body(response) == stored.read()
        assert response["Content-Type"] == photo.content_type == content_type
        assert response["X-Content-Type-Options"] == "nosniff"
        cache = {part.strip() for part in response["Cache-Control"].split(",")}
        assert "public" in cache and any(part.startswith("max-age=") for part in cache)
        assert "Set-Cookie" not in response and "Cookie" not in response.get("Vary", "")
    assert client.head(url(resident)).status_code == 200
    assert client.post(url(resident)).status_code == 405


def test_a_hidden_complaint_s_photos_are_404(client, answered, staff):
    photos = list(answered.photos.all())
    assert all(client.get(url(p)).status_code == 200 for p in photos)
    services.complaint_hide(complaint=answered, user=staff["admin"], reason="abusive")
    assert [client.get(url(p)).status_code for p in photos] == [404] * len(photos)


def test_unknown_photo_is_404(client, answered):
    last = answered.photos.order_by("-pk").first().pk
    assert client.get(f"/photos/{last + 1000}/").status_code == 404
    assert client.get("/photos/abc/").status_code == 404
    assert client.get(f"/photos/{'9' * 30}/").status_code == 404


def test_a_photo_whose_file_is_gone_is_404(client, answered):
    photo = answered.photos.get(answer__isnull=True)
    photo.file.storage.delete(photo.file.name)
    assert client.get(url(photo)).status_code == 404
