"""A complaint's tracking code is its resident's key (it confirms or denies the fix): the staff workspace never
shows it. Staff know a ticket by its public number (the id) only: in URLs, the list, the CSV, the ticket page,
the duplicate form and after every action."""
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from complaints.photos import clean_photo  # stored photos are re-encoded ones only
from complaints.models import Photo, State
from tests.complaints.factories import image_bytes


def body(response):
    if response.streaming:
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


def assert_no_code(response, *tickets):
    """Neither the page (nor any redirect on the way to it) shows any of the tickets' tracking codes."""
    text = body(response) + " ".join(url for url, _ in getattr(response, "redirect_chain", []))
    text += response.get("Location", "")
    for ticket in tickets:
        assert ticket.tracking_code not in text, ticket.tracking_code
        assert ticket.tracking_code.replace("-", "") not in text.replace("-", "")


@pytest.fixture
def ticket(make_ticket, media):
    ticket = make_ticket(description="Мусор", email="r@example.com")
    upload = SimpleUploadedFile("p.png", image_bytes("PNG"), content_type="image/png")
    Photo.objects.create(complaint=ticket, file=clean_photo(upload), content_type="image/png", width=64, height=48)
    return ticket


@pytest.mark.parametrize("who", ["a", "dispatcher"])
def test_list_page_and_csv_show_numbers_not_codes(ticket, make_ticket, staff, client_for, who):
    original = make_ticket(state=State.IN_PROGRESS)
    client = client_for(staff[who])
    assert client.post(f"/staff/t/{ticket.pk}/duplicate/", {"duplicate_of": str(original.pk)}).status_code == 302

    page = client.get("/staff/", {"state": "all"})
    assert f'href="/staff/t/{ticket.pk}/">№ {ticket.pk}</a>' in body(page)
    assert_no_code(page, ticket, original)

    ticket_page = client.get(f"/staff/t/{ticket.pk}/")
    assert ticket_page.status_code == 200
    assert f"№ {ticket.pk}" in body(ticket_page) and f"№ {original.pk}" in body(ticket_page)
    assert_no_code(ticket_page, ticket, original)

    export = client.get("/staff/tickets.csv", {"state": "all"})
    assert f"http://testserver/staff/t/{ticket.pk}/" in body(export)
    assert_no_code(client.get("/staff/tickets.csv", {"state": "all"}), ticket, original)


def test_no_code_after_any_action_or_its_error(ticket, make_ticket, departments, staff, client_for):
    client = client_for(staff["a"])
    base = f"/staff/t/{ticket.pk}/"
    other = make_ticket()
    steps = [
        ("take", {}),
        ("take", {}),  # no longer possible: a message and a redirect
        ("answer", {"text": ""}),  # a message beside the field
        ("answer", {"text": "Убрали."}),
        ("duplicate", {"duplicate_of": str(ticket.pk)}),  # not of itself
        ("transfer", {"reason": "x", "department": departments["a"].pk}),  # already with it
    ]
    for action, data in steps:
        response = client.post(f"{base}{action}/", data)
        assert response.status_code in (302, 400), (action, response.status_code)
        assert_no_code(response, ticket, other)
        if response.status_code == 302:
            assert_no_code(client.get(response["Location"]), ticket, other)  # with the action's message
    # The last two actions on fresh tickets: marked as a duplicate (stays), handed on (leaves the list).
    fresh = make_ticket()
    response = client.post(f"/staff/t/{fresh.pk}/duplicate/", {"duplicate_of": str(other.pk)}, follow=True)
    assert response.redirect_chain == [(f"/staff/t/{fresh.pk}/", 302)]
    assert_no_code(response, fresh, other)
    fresh = make_ticket()
    response = client.post(f"/staff/t/{fresh.pk}/transfer/", {"reason": "Не наш", "department": departments["b"].pk},
                           follow=True)
    assert response.redirect_chain == [("/staff/", 302)]
    assert_no_code(response, fresh, other)


def test_a_tracking_code_is_no_staff_url(ticket, staff, client_for):
    client = client_for(staff["a"])
    assert client.get(f"/staff/t/{ticket.pk}/").status_code == 200
    assert client.get(f"/staff/t/{ticket.tracking_code}/").status_code == 404
    assert client.post(f"/staff/t/{ticket.tracking_code}/take/").status_code == 404
    assert client.get("/staff/t/99999999999999999999999/").status_code == 404  # beyond any id: no 500
    ticket.refresh_from_db()
    assert ticket.state == State.ASSIGNED
