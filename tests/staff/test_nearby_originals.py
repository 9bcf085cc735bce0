"""The ticket page lists the open complaints of the ticket's category group nearby, in the viewer's scope (their
departments' tickets; every ticket for a dispatcher), each a one-click "duplicate of" (complaint_mark_duplicate)."""
import re

import pytest
from django.contrib.gis.geos import Point
from django.urls import reverse
from pyproj import Geod

from complaints.models import State
from routing.models import Category
from tests.complaints.factories import MOSCOW

pytestmark = pytest.mark.django_db
GEOD = Geod(ellps="WGS84")


def at(metres, azimuth=0.0):
    lon, lat, _ = GEOD.fwd(MOSCOW[0], MOSCOW[1], azimuth, metres)
    return Point(lon, lat, srid=4326)


def offered(client, ticket):
    page = client.get(reverse("staff:ticket", args=[ticket.pk])).content.decode()
    block = page.split('id="nearby-originals"', 1)[1].split("</section>", 1)[0] if 'id="nearby-originals"' in page else ""
    return [int(n) for n in re.findall(r'name="duplicate_of" value="(\d+)"', block)], page


@pytest.fixture
def road(db):
    return Category.objects.exclude(group_i18n__ru="Дворы").filter(active=True).first()


def test_nearby_open_complaints_of_the_group_in_scope(make_ticket, departments, staff, client_for, road):
    ticket = make_ticket()
    near = make_ticket(location=at(40), description="Мусор у подъезда")
    farther = make_ticket(location=at(150, 90), category=Category.objects.get(code="yard-abandoned-car"))
    make_ticket(location=at(300))  # beyond 250 m
    make_ticket(location=at(20), category=road)  # another group
    make_ticket(location=at(30), state=State.RESOLVED)  # closed
    make_ticket(location=at(35), state=State.HIDDEN)  # hidden
    others = make_ticket(location=at(10), department=departments["b"])  # not department a's
    numbers, page = offered(client_for(staff["a"]), ticket)
    assert numbers == [near.pk, farther.pk]
    assert "40 m" in page and near.tracking_code not in page and farther.tracking_code not in page
    numbers, _ = offered(client_for(staff["dispatcher"]), ticket)
    assert numbers == [others.pk, near.pk, farther.pk]  # a dispatcher sees every department's


def test_one_click_marks_the_duplicate(make_ticket, staff, client_for):
    ticket = make_ticket()
    original = make_ticket(location=at(25))
    client = client_for(staff["a"], csrf=True)
    page = client.get(reverse("staff:ticket", args=[ticket.pk])).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = client.post(reverse("staff:duplicate", args=[ticket.pk]),
                           {"csrfmiddlewaretoken": token, "duplicate_of": str(original.pk)}, follow=True)
    assert response.status_code == 200
    ticket.refresh_from_db()
    assert (ticket.state, ticket.duplicate_of_id) == (State.DUPLICATE, original.pk)


def test_a_ticket_that_can_no_longer_be_marked_lists_none(make_ticket, staff, client_for):
    ticket = make_ticket(state=State.RESOLVED)
    make_ticket(location=at(25))
    numbers, page = offered(client_for(staff["a"]), ticket)
    assert numbers == [] and 'id="nearby-originals"' not in page
