"""The actions on a ticket: each goes through a complaints service (state, history with the actor), bad input
gets a message beside its field, and every POST needs the CSRF token."""
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection

from complaints.models import Answer, ComplaintEvent, Photo, State
from complaints.services import complaint_create
from facilities.models import Facility
from routing.models import Category, RoutingDecision
from staff.demo import demo_school
from tests.complaints.factories import image_bytes


def url(ticket, action=""):
    return f"/staff/t/{ticket.pk}/" + (f"{action}/" if action else "")


def last_event(ticket):
    return ComplaintEvent.objects.filter(complaint=ticket).order_by("-id").first()


def field_error(response, field):
    """The message shown beside a form field ("" if none)."""
    found = re.search(rf'<div class="field-error" data-error-for="{field}">(.*?)</div>', response.content.decode())
    return found.group(1) if found else ""


def test_take_into_work(make_ticket, staff, client_for):
    ticket = make_ticket()
    client = client_for(staff["a"])
    response = client.post(url(ticket, "take"), follow=True)
    assert response.redirect_chain == [(url(ticket), 302)]
    assert "The ticket is in work." in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.state == State.IN_PROGRESS
    event = last_event(ticket)
    assert (event.kind, event.from_state, event.to_state, event.actor, event.actor_label) == (
        "state", "assigned", "in_progress", staff["a"], "t-stf-a")


def test_answer_publicly_with_a_photo(make_ticket, staff, client_for, media):
    ticket = make_ticket(state=State.IN_PROGRESS)
    photo = SimpleUploadedFile("done.jpg", image_bytes("JPEG"), content_type="image/jpeg")
    response = client_for(staff["a"]).post(url(ticket, "answer"), {"text": "Убрали.", "photo": photo})
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.state == State.ANSWERED and ticket.answered_at
    answer = Answer.objects.get(complaint=ticket)
    assert (answer.text, answer.author, answer.department_id) == ("Убрали.", staff["a"], ticket.department_id)
    assert Photo.objects.get(complaint=ticket).answer == answer
    event = last_event(ticket)
    assert (event.kind, event.to_state, event.actor, event.reason) == ("answer", "answered", staff["a"], "Убрали.")
    # The page now shows the answer and its photo (served through the staff URL, not a public media URL).
    page = client_for(staff["a"]).get(url(ticket)).content.decode()
    assert "Убрали." in page and f"/staff/t/{ticket.pk}/photos/" in page
    assert 'id="answer-form"' not in page  # answered: nothing more to answer until the resident replies


def test_hand_on_to_a_named_department(make_ticket, departments, staff, client_for):
    ticket = make_ticket()
    response = client_for(staff["a"]).post(url(ticket, "transfer"),
                                           {"department": departments["b"].pk, "reason": "Это не наш двор"})
    assert response.status_code == 302 and response["Location"] == "/staff/"  # no longer ours to see
    ticket.refresh_from_db()
    assert (ticket.state, ticket.department) == (State.TRANSFERRED, departments["b"])
    assert ticket.decision.rule == RoutingDecision.Rule.MANUAL
    event = last_event(ticket)
    assert (event.kind, event.actor, event.reason, event.from_department, event.to_department) == (
        "transfer", staff["a"], "Это не наш двор", departments["a"], departments["b"])
    assert client_for(staff["b"]).get(url(ticket)).status_code == 200
    assert client_for(staff["a"]).get(url(ticket)).status_code == 404


def test_hand_on_and_let_the_routing_decide(make_ticket, staff, client_for):
    ticket = make_ticket()  # a yard in Tverskoy, wrongly with test department a
    response = client_for(staff["a"]).post(url(ticket, "transfer"), {"department": "", "reason": "Двор управы"})
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.state == State.TRANSFERRED
    assert ticket.department.authority.short_name == "Управа района Тверской"
    assert last_event(ticket).actor == staff["a"]


def test_mark_as_a_duplicate_by_number(make_ticket, departments, staff, client_for):
    original = make_ticket(department=departments["b"])  # another department's: numbers are public anyway
    ticket = make_ticket()
    typed = f" № {original.pk} "
    response = client_for(staff["a"]).post(url(ticket, "duplicate"), {"duplicate_of": typed}, follow=True)
    assert response.status_code == 200
    ticket.refresh_from_db()
    assert (ticket.state, ticket.duplicate_of) == (State.DUPLICATE, original)
    event = last_event(ticket)
    assert (event.kind, event.actor, event.reason) == ("duplicate", staff["a"], f"#{original.pk}")
    page = response.content.decode()
    assert f'<span class="code" id="duplicate-of">№ {original.pk}</span>' in page
    assert original.tracking_code not in page and ticket.tracking_code not in page


def test_the_original_is_found_by_number_only(make_ticket, staff, client_for):
    original = make_ticket()
    ticket = make_ticket()
    response = client_for(staff["a"]).post(url(ticket, "duplicate"), {"duplicate_of": original.tracking_code})
    assert response.status_code == 400
    assert field_error(response, "duplicate_of") == "No complaint with this number."


def test_the_service_names_a_bad_original_by_its_number(make_ticket, staff, client_for):
    original = make_ticket(state=State.DUPLICATE)  # a duplicate with its own original unknown (legacy data)
    ticket = make_ticket()
    response = client_for(staff["a"]).post(url(ticket, "duplicate"), {"duplicate_of": str(original.pk)})
    assert response.status_code == 400
    assert field_error(response, "duplicate_of").startswith(f"Complaint № {original.pk} can not be the original")
    assert original.tracking_code not in response.content.decode()


def test_a_hidden_complaint_can_not_be_the_original(make_ticket, staff, client_for):
    hidden = make_ticket(state=State.HIDDEN)
    ticket = make_ticket()
    response = client_for(staff["a"]).post(url(ticket, "duplicate"), {"duplicate_of": str(hidden.pk)})
    assert response.status_code == 400
    assert field_error(response, "duplicate_of") == "No complaint with this number."


def test_a_duplicate_cycle_is_refused_without_showing_a_code(make_ticket, staff, client_for):
    first, second = make_ticket(), make_ticket()
    client = client_for(staff["a"])
    assert client.post(url(second, "duplicate"), {"duplicate_of": str(first.pk)}).status_code == 302
    # first -> second would close the loop: second is a duplicate of first.
    response = client.post(url(first, "duplicate"), {"duplicate_of": str(second.pk)})
    assert response.status_code == 400 and field_error(response, "duplicate_of")
    page = response.content.decode()
    assert first.tracking_code not in page and second.tracking_code not in page
    first.refresh_from_db()
    assert first.state == State.ASSIGNED


@pytest.mark.parametrize("action, data, field, message", [
    ("answer", {"text": "   "}, "text", "This field is required."),
    ("transfer", {"reason": ""}, "reason", "This field is required."),
    ("duplicate", {"duplicate_of": "K7M2-Q9XR-TP4D"}, "duplicate_of", "No complaint with this number."),
    ("duplicate", {"duplicate_of": "not a number"}, "duplicate_of", "No complaint with this number."),
    ("duplicate", {"duplicate_of": "999999999999"}, "duplicate_of", "No complaint with this number."),
])
def test_bad_input_gets_a_message_beside_the_field(action, data, field, message, make_ticket, staff, client_for):
    ticket = make_ticket()
    response = client_for(staff["a"]).post(url(ticket, action), data)
    assert response.status_code == 400
    assert field_error(response, field) == message
    ticket.refresh_from_db()
    assert ticket.state == State.ASSIGNED and not ComplaintEvent.objects.filter(complaint=ticket).exists()


def test_service_errors_go_beside_their_field_too(make_ticket, departments, staff, client_for, media):
    ticket = make_ticket()
    client = client_for(staff["a"])
    not_an_image = SimpleUploadedFile("x.png", b"not an image at all", content_type="image/png")
    response = client.post(url(ticket, "answer"), {"text": "Готово", "photo": not_an_image})
    assert response.status_code == 400 and "JPEG, PNG or WebP" in field_error(response, "photo")
    response = client.post(url(ticket, "duplicate"), {"duplicate_of": str(ticket.pk)})
    assert field_error(response, "duplicate_of") == "A complaint can not be a duplicate of itself."
    response = client.post(url(ticket, "transfer"), {"department": departments["a"].pk, "reason": "x"})
    assert field_error(response, "department") == "The complaint is already with this department."
    ticket.refresh_from_db()
    assert ticket.state == State.ASSIGNED and not ticket.answers.exists()


def test_an_action_the_state_no_longer_allows_is_a_message(make_ticket, staff, client_for):
    ticket = make_ticket(state=State.IN_PROGRESS)  # someone took it already
    client = client_for(staff["a"])
    assert 'id="take-form"' not in client.get(url(ticket)).content.decode()
    response = client.post(url(ticket, "take"), follow=True)
    assert response.redirect_chain == [(url(ticket), 302)]
    assert "not possible while the complaint is in progress" in response.content.decode()
    assert not ComplaintEvent.objects.filter(complaint=ticket).exists()


def test_csrf_is_enforced_on_every_action(make_ticket, departments, staff, client_for):
    ticket = make_ticket()
    client = client_for(staff["a"], csrf=True)
    for action, data in [("take", {}), ("answer", {"text": "x"}), ("transfer", {"reason": "x"}),
                         ("duplicate", {"duplicate_of": str(ticket.pk)})]:
        assert client.post(url(ticket, action), data).status_code == 403, action
    assert not ComplaintEvent.objects.filter(complaint=ticket).exists()
    # With the page's token the same POST works.
    page = client.get(url(ticket)).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    assert client.post(url(ticket, "take"), {"csrfmiddlewaretoken": token}).status_code == 302
    ticket.refresh_from_db()
    assert ticket.state == State.IN_PROGRESS


def test_the_ticket_page_explains_and_shows_the_history(make_ticket, staff, client_for):
    ticket = make_ticket(description="<script>alert(1)</script>", email="r@example.com")
    client = client_for(staff["a"])
    client.post(url(ticket, "take"))
    page = client.get(url(ticket)).content.decode()
    assert "Test decision" in page  # the routing explanation, in English
    assert "Runner-up &lt;b&gt;house&lt;/b&gt;" in page and "<script>alert(1)" not in page
    assert "r@example.com" in page  # staff may contact the resident
    assert re.search(r'<td class="actor">t-stf-a</td>', page)
    assert 'id="ticket-map-data"' in page and "/static/vendor/leaflet/leaflet.js" in page


def test_a_routed_ticket_shows_its_facility_on_the_map(db, client_for):
    """A complaint routed for real to the demo school: its page outlines the school building."""
    school = demo_school()
    facility = Facility.objects.filter(owner=school, type__code="school").first()
    with connection.cursor() as cur:
        cur.execute("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM facilities_facility "
                    "WHERE id = %s) s", [facility.pk])
        lon, lat = cur.fetchone()
    ticket = complaint_create(category=Category.objects.get(code="school-building"), point=(lon, lat),
                              attributes={"damage": "Сломан забор"}, description="Забор")
    assert ticket.department.authority == school
    from tests.complaints.factories import make_user

    user = make_user("t-stf-school", departments=list(school.departments.all()))
    page = client_for(user).get(url(ticket)).content.decode()
    data = re.search(r'<script id="ticket-map-data" type="application/json">(.*?)</script>', page).group(1)
    assert '"role": "facility"' in data and '"MultiPolygon"' in data
    assert school.short_name in page and "Сломан забор" in page
