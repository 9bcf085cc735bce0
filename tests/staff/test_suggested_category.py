"""The dispatcher's flag: a ticket whose words and place point strongly to another category (or which was filed
under the catch-all one) shows the suggestion on the list; accepting it is a recorded category change that routes
it again. Staff see and accept only their own department's tickets."""
import re

import pytest

from complaints.models import ComplaintEvent, State
from complaints.services import complaint_create
from facilities.models import Department
from routing.models import Category
from tests.complaints.factories import MOSCOW

LIST = "/staff/"
FULL_BINS = "Контейнеры переполнены, мусор не вывозят уже неделю"


def flagged(response):
    """{ticket number: suggested service code} of the list's flags."""
    html = response.content.decode()
    return {int(n): code for n, code in re.findall(
        r'action="/staff/t/(\d+)/category/" data-code="([\w-]+)"', html)}


@pytest.fixture
def filed():
    def make(code, text, point=MOSCOW):
        category = Category.objects.get(code=code)
        answers = {a.code: text for a in category.attributes.filter(required=True, datatype="text")}
        return complaint_create(category=category, point=point, description=text, attributes=answers)
    return make


def test_a_ticket_under_the_catch_all_category_is_flagged_and_accepting_routes_it_again(filed, staff, client_for):
    ticket = filed("other", FULL_BINS)
    triage = ticket.department
    assert triage.is_triage
    client = client_for(staff["dispatcher"])
    page = client.get(LIST)
    assert flagged(page)[ticket.pk] == "waste-container"
    assert "Filed under a catch-all category" in page.content.decode()

    response = client.post(f"/staff/t/{ticket.pk}/category/", {"category": "waste-container"})
    assert response.status_code == 302
    ticket.refresh_from_db()
    assert ticket.category.code == "waste-container"
    assert ticket.department != triage and not ticket.department.is_triage  # the district's housing department
    assert ticket.decision.rule != "manual" and ticket.state == State.TRANSFERRED
    event = ComplaintEvent.objects.filter(complaint=ticket).order_by("-id").first()
    assert (event.kind, event.actor, event.from_department, event.to_department, event.decision) == (
        ComplaintEvent.Kind.CATEGORY, staff["dispatcher"], triage, ticket.department, ticket.decision)
    assert (event.from_state, event.to_state) == (State.ASSIGNED, State.TRANSFERRED)
    assert event.reason.startswith("other → waste-container: ")
    assert ticket.pk not in flagged(client.get(LIST))  # its category now fits its words
    assert "Category changed" in client.get(f"/staff/t/{ticket.pk}/").content.decode()


def test_a_ticket_whose_words_point_elsewhere_is_flagged_by_the_threshold(filed, staff, client_for, settings):
    ticket = filed("yard-rubbish", "На перекрёстке не работает светофор, машины едут на красный")
    fitting = filed("yard-rubbish", "Во дворе мусор и пакеты, дворник не убирает")
    client = client_for(staff["dispatcher"])
    flags = flagged(client.get(LIST))
    assert flags.get(ticket.pk) == "road-traffic-light" and fitting.pk not in flags
    settings.SUGGEST_FLAG_CONFIDENCE = 0.9999
    assert ticket.pk not in flagged(client.get(LIST))


def test_accepting_in_the_same_department_keeps_the_state(filed, staff, client_for):
    ticket = filed("yard-rubbish", "Сломаны качели на детской площадке во дворе")
    department = ticket.department
    client = client_for(staff["dispatcher"])
    assert flagged(client.get(LIST)).get(ticket.pk) == "yard-playground"
    client.post(f"/staff/t/{ticket.pk}/category/", {"category": "yard-playground"})
    ticket.refresh_from_db()
    assert ticket.category.code == "yard-playground"
    event = ComplaintEvent.objects.filter(complaint=ticket, kind=ComplaintEvent.Kind.CATEGORY).get()
    # no playground in the demo registry: the district's housing department answers both categories
    assert ticket.department == department and ticket.decision.rule == "area"
    assert ticket.state == State.ASSIGNED and (event.from_state, event.to_state) == ("", "")


def test_staff_see_and_accept_only_their_own_tickets(filed, staff, client_for, departments):
    ticket = filed("other", FULL_BINS)
    outsider = client_for(staff["a"])
    assert ticket.pk not in flagged(outsider.get(LIST))
    assert outsider.post(f"/staff/t/{ticket.pk}/category/", {"category": "waste-container"}).status_code == 404
    ticket.refresh_from_db()
    assert ticket.category.code == "other"
    # a member of the triage department works it (and sees the flag)
    triage = Department.objects.get(pk=ticket.department_id)
    triage.staff.add(staff["b"])
    desk = client_for(staff["b"])
    assert flagged(desk.get(LIST))[ticket.pk] == "waste-container"
    assert desk.post(f"/staff/t/{ticket.pk}/category/", {"category": "waste-container"}).status_code == 302
    ticket.refresh_from_db()
    assert ticket.category.code == "waste-container"


def _inactive():
    Category.objects.filter(code="waste-dump").update(active=False)
    return {"category": "waste-dump"}


BAD = {
    "unknown category": lambda: {"category": "no-such-service"},
    "no category": lambda: {},
    "inactive category": _inactive,
    "the same category": lambda: {"category": "other"},
    "too long a reason": lambda: {"category": "waste-container", "reason": "x" * 1001},
}


@pytest.mark.parametrize("make_data", BAD.values(), ids=BAD.keys())
def test_a_bad_change_changes_nothing(filed, staff, client_for, make_data):
    ticket = filed("other", FULL_BINS)
    events = ComplaintEvent.objects.filter(complaint=ticket).count()
    response = client_for(staff["dispatcher"]).post(f"/staff/t/{ticket.pk}/category/", make_data(), follow=True)
    assert response.status_code == 200 and 'class="messages' in response.content.decode()
    ticket.refresh_from_db()
    assert ticket.category.code == "other" and ComplaintEvent.objects.filter(complaint=ticket).count() == events


def test_a_closed_ticket_keeps_its_category(filed, staff, client_for):
    ticket = filed("other", FULL_BINS)
    type(ticket).objects.filter(pk=ticket.pk).update(state=State.RESOLVED)
    client = client_for(staff["dispatcher"])
    assert ticket.pk not in flagged(client.get(LIST + "?state=all"))
    client.post(f"/staff/t/{ticket.pk}/category/", {"category": "waste-container"})
    ticket.refresh_from_db()
    assert ticket.category.code == "other"


def test_the_change_needs_a_post_and_the_csrf_token(filed, staff, client_for):
    ticket = filed("other", FULL_BINS)
    assert client_for(staff["dispatcher"]).get(f"/staff/t/{ticket.pk}/category/").status_code == 405
    strict = client_for(staff["dispatcher"], csrf=True)
    assert strict.post(f"/staff/t/{ticket.pk}/category/", {"category": "waste-container"}).status_code == 403
    ticket.refresh_from_db()
    assert ticket.category.code == "other"
