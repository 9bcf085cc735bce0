"""A staff member of one department can not open, list or act on another department's ticket: 404 on every URL,
and nothing changes."""
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from complaints.photos import clean_photo  # stored photos are re-encoded ones only
from complaints.models import ComplaintEvent, Photo, State
from tests.complaints.factories import image_bytes


@pytest.fixture
def foreign(make_ticket, departments, make_ticket_photo):
    """A ticket of department b, with a photo, and a ticket of department a to point duplicates at."""
    ticket = make_ticket(department=departments["b"])
    return ticket, make_ticket_photo(ticket), make_ticket()


@pytest.fixture
def make_ticket_photo(media):
    def make(ticket):
        upload = SimpleUploadedFile("p.png", image_bytes("PNG"), content_type="image/png")
        return Photo.objects.create(complaint=ticket, file=clean_photo(upload), content_type="image/png", width=64, height=48)

    return make


def urls(ticket, photo, other, departments):
    base = f"/staff/t/{ticket.pk}/"
    return [
        ("get", base, {}),
        ("get", f"/staff/t/{ticket.tracking_code}/", {}),  # tracking codes are no staff URL at all
        ("get", f"{base}photos/{photo.pk}/", {}),
        ("get", f"{base}take/", {}),
        ("post", f"{base}take/", {}),
        ("post", f"{base}answer/", {"text": "Done"}),
        ("post", f"{base}transfer/", {"reason": "Not ours", "department": departments["a"].pk}),
        ("post", f"{base}transfer/", {"reason": "Not ours"}),
        ("post", f"{base}duplicate/", {"duplicate_of": str(other.pk)}),
    ]


def test_every_url_of_another_departments_ticket_is_404(foreign, departments, staff, client_for):
    ticket, photo, other = foreign
    client = client_for(staff["a"])
    for method, url, data in urls(ticket, photo, other, departments):
        assert getattr(client, method)(url, data).status_code == 404, (method, url)
    ticket.refresh_from_db()
    assert (ticket.state, ticket.department) == (State.ASSIGNED, departments["b"])
    assert not ComplaintEvent.objects.filter(complaint=ticket).exists()
    assert not ticket.answers.exists()


def test_nor_is_it_listed_or_exported(foreign, staff, client_for):
    ticket = foreign[0]
    client = client_for(staff["a"])
    page = client.get("/staff/", {"state": "all"}).content.decode()
    assert f'data-number="{ticket.pk}"' not in page and f"/staff/t/{ticket.pk}/" not in page
    rows = b"".join(client.get("/staff/tickets.csv", {"state": "all"}).streaming_content).decode().splitlines()
    assert str(ticket.pk) not in [row.split(",")[0] for row in rows[1:]]
    assert f"/staff/t/{ticket.pk}/" not in "\n".join(rows)


def test_its_own_department_and_the_dispatcher_open_every_url(foreign, departments, staff, client_for):
    ticket, photo, other = foreign
    for who in ("b", "dispatcher"):
        client = client_for(staff[who])
        assert client.get(f"/staff/t/{ticket.pk}/").status_code == 200
        response = client.get(f"/staff/t/{ticket.pk}/photos/{photo.pk}/")
        assert response.status_code == 200 and response["Content-Type"] == "image/png"
        assert client.get(f"/staff/t/{ticket.pk}/take/").status_code == 405  # POST only


def test_a_photo_of_another_ticket_is_404_under_ones_own(foreign, make_ticket_photo, staff, client_for):
    ticket, photo, mine = foreign
    make_ticket_photo(mine)
    client = client_for(staff["a"])
    assert client.get(f"/staff/t/{mine.pk}/photos/{photo.pk}/").status_code == 404


def test_users_without_a_department_see_nothing(foreign, staff, client_for):
    ticket, photo, other = foreign
    client = client_for(staff["data"])
    assert client.get(f"/staff/t/{ticket.pk}/").status_code == 404
    assert client.post(f"/staff/t/{ticket.pk}/take/").status_code == 404
