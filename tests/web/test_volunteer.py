"""Volunteers' pages (issue 10): an approved volunteer sees the recent answers and fixes in their districts only
(any other complaint is a 404, page and check alike), never a reporter's contact data; a failed check reopens the
complaint to its department and counts against it in the public statistics; hostile uploads change nothing."""
import datetime
import io
import struct
import zlib

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.utils import timezone
from PIL import Image

from complaints.models import Complaint, ComplaintEvent, State, Volunteer, VolunteerCheck
from complaints.services import complaint_answer
from facilities.models import AdminArea
from web.selectors import complaint_stats, statistics_refresh

from .conftest import TVERSKAYA

ARBAT = (37.5935, 55.7510)  # inside the demo district Arbat


@pytest.fixture
def district(db):
    return AdminArea.objects.get(level="district", name="Тверской")


@pytest.fixture
def volunteer(district):
    user = get_user_model().objects.create_user(username="t-web-volunteer")
    v = Volunteer.objects.create(user=user, approved=True)
    v.districts.add(district)
    return v


@pytest.fixture
def vclient(volunteer):
    client = Client(headers={"accept-language": "en"})
    client.force_login(volunteer.user)
    return client


@pytest.fixture
def answer(report):
    def make(point=TVERSKAYA, **fields):
        complaint = report(point=point, email="reporter@example.org", phone="+7 999 123-45-67",
                           first_name="Иван", last_name="Секретов", **fields)
        user, _ = get_user_model().objects.get_or_create(username=f"t-web-staff-{complaint.department_id}")
        complaint.department.staff.add(user)
        return complaint_answer(complaint=complaint, user=user, text="Убрали мусор")

    return make


def test_the_list_and_page_show_the_complaint_without_contact_data(vclient, answer, district):
    complaint = answer()
    assert complaint.area == district
    listing = vclient.get("/volunteer/")
    assert listing.status_code == 200 and f'data-complaint="{complaint.pk}"' in listing.content.decode()
    page = vclient.get(f"/volunteer/c/{complaint.pk}/")
    html = page.content.decode()
    assert page.status_code == 200 and "Убрали мусор" in html
    for private in ("reporter@example.org", "123-45-67", "Секретов", complaint.tracking_code):
        assert private not in html
    assert "no-store" in page["Cache-Control"]


@pytest.mark.parametrize("case", ["other district", "not answered", "answered long ago", "hidden", "no such id"])
def test_complaints_outside_the_scope_are_404(case, vclient, answer, report, settings):
    if case == "other district":
        complaint = answer(point=ARBAT)
        assert complaint.area.name == "Арбат"
    elif case == "not answered":
        complaint = report()
    else:
        complaint = answer()
        if case == "answered long ago":
            Complaint.objects.filter(pk=complaint.pk).update(
                answered_at=timezone.now() - datetime.timedelta(days=settings.VOLUNTEER_RECENT_DAYS + 1))
        elif case == "hidden":
            Complaint.objects.filter(pk=complaint.pk).update(state=State.HIDDEN)
    pk = 2 ** 62 if case == "no such id" else complaint.pk
    assert vclient.get(f"/volunteer/c/{pk}/").status_code == 404
    response = vclient.post(f"/volunteer/c/{pk}/check/", {"verdict": "not_fixed", "note": "Не убрано"})
    assert response.status_code == 404
    assert f'data-complaint="{pk}"' not in vclient.get("/volunteer/").content.decode()
    assert not VolunteerCheck.objects.exists()
    if case != "no such id":
        before = complaint.state if case != "hidden" else State.HIDDEN
        complaint.refresh_from_db()
        assert complaint.state == before


@pytest.mark.parametrize("who", ["anonymous", "not approved", "staff of the department"])
def test_only_approved_volunteers(who, answer, volunteer):
    complaint = answer()
    client = Client(headers={"accept-language": "en"})
    if who == "not approved":
        Volunteer.objects.filter(pk=volunteer.pk).update(approved=False)
        client.force_login(volunteer.user)
    elif who == "staff of the department":
        client.force_login(complaint.department.staff.first())
    listing = client.get("/volunteer/")
    if who == "anonymous":
        assert listing.status_code == 302 and listing["Location"].startswith("/volunteer/login/")
    else:
        assert listing.status_code == 403
    for response in (client.get(f"/volunteer/c/{complaint.pk}/"),
                     client.post(f"/volunteer/c/{complaint.pk}/check/", {"verdict": "not_fixed", "note": "x"})):
        assert response.status_code in (302, 403, 404)
    complaint.refresh_from_db()
    assert complaint.state == State.ANSWERED and not VolunteerCheck.objects.exists()


def test_a_failed_check_reopens_and_counts_against_the_department(vclient, answer, media_root):
    complaint = answer()
    department = complaint.department
    response = vclient.post(f"/volunteer/c/{complaint.pk}/check/", {
        "verdict": "not_fixed", "note": "Мусор лежит",
        "photo": SimpleUploadedFile("check.png", png(), content_type="image/png")})
    assert response.status_code == 302
    complaint.refresh_from_db()
    assert complaint.state == State.REOPENED and complaint.department == department and complaint.reopen_count == 1
    check = VolunteerCheck.objects.get()
    assert check.department == department and check.photo and check.photo_content_type == "image/png"
    event = ComplaintEvent.objects.filter(complaint=complaint).latest("id")
    assert event.kind == "check_failed" and event.public and event.actor_label == "volunteer"
    passed = answer(point=(TVERSKAYA[0] + 1e-4, TVERSKAYA[1]))
    assert vclient.post(f"/volunteer/c/{passed.pk}/check/", {"verdict": "fixed"}).status_code == 302
    statistics_refresh()
    s = complaint_stats()
    assert (department.display_name, 2, 1) in s["checks_by_department"]
    html = Client().get("/stats/").content.decode()
    assert 'id="checks-by-department"' in html and department.display_name in html


def png(size=(32, 24)):
    buffer = io.BytesIO()
    Image.new("RGB", size, "gray").save(buffer, format="PNG")
    return buffer.getvalue()


def png_declaring(width, height):
    """A small PNG whose header declares a huge image (a decompression bomb's header)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


def gif():
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buffer, format="GIF")
    return buffer.getvalue()


HOSTILE = {
    "text named .jpg": (b"<?php system($_GET['c']); ?>\n" * 20, "check.jpg", "image/jpeg"),
    "html named .png": (b"<html><script>alert(1)</script></html>", "check.png", "image/png"),
    "svg": (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "check.svg", "image/svg+xml"),
    "gif": (gif(), "check.gif", "image/gif"),
    "truncated png": (png()[:40], "check.png", "image/png"),
    "empty": (b"", "check.jpg", "image/jpeg"),
    "bomb header": (png_declaring(100_000, 100_000), "bomb.png", "image/png"),
}


@pytest.fixture
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_uploads_are_refused_and_change_nothing(name, vclient, answer, media_root):
    complaint = answer()
    data, filename, content_type = HOSTILE[name]
    response = vclient.post(f"/volunteer/c/{complaint.pk}/check/", {
        "verdict": "not_fixed", "note": "Мусор лежит",
        "photo": SimpleUploadedFile(filename, data, content_type=content_type)})
    assert response.status_code == 400
    assert 'data-error-for="photo"' in response.content.decode()
    complaint.refresh_from_db()
    assert complaint.state == State.ANSWERED and not VolunteerCheck.objects.exists()
    assert not any(p.is_file() for p in media_root.rglob("*")) if media_root.exists() else True


def test_too_big_an_upload_is_refused(vclient, answer, media_root, settings):
    settings.PHOTO_MAX_BYTES = 10_000
    complaint = answer()
    big = io.BytesIO()
    Image.effect_noise((200, 200), 64).convert("RGB").save(big, format="PNG")
    assert len(big.getvalue()) > settings.PHOTO_MAX_BYTES
    response = vclient.post(f"/volunteer/c/{complaint.pk}/check/", {
        "verdict": "fixed", "photo": SimpleUploadedFile("big.png", big.getvalue(), content_type="image/png")})
    assert response.status_code == 400
    assert not VolunteerCheck.objects.exists()


def test_a_check_photo_keeps_no_exif(vclient, answer, media_root):
    complaint = answer()
    image = Image.new("RGB", (40, 30), "blue")
    exif = Image.Exif()
    exif.get_ifd(0x8825).update({1: "N", 2: (55.0, 45.0, 55.8), 3: "E", 4: (37.0, 36.0, 20.2)})
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    vclient.post(f"/volunteer/c/{complaint.pk}/check/", {
        "verdict": "fixed", "photo": SimpleUploadedFile("c.jpg", buffer.getvalue(), content_type="image/jpeg")})
    stored = VolunteerCheck.objects.get().photo
    with stored.open("rb") as handle:
        data = handle.read()
    assert b"Exif" not in data and not Image.open(io.BytesIO(data)).getexif()
