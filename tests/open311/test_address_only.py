"""Open311 POST with address_string and no lat/long: located the way the residents' search box finds places
(facilities.search over the demo city's address register sample, facilities and districts); the match's point is
used and its address returned; nothing that matches is a clear 400 that stores nothing."""
from urllib.parse import urlencode

import pytest

from complaints.models import Complaint
from facilities.models import Address

from .conftest import form, stored_counts

pytestmark = pytest.mark.django_db
URL = "/open311/v2/requests.json"
FORM = "application/x-www-form-urlencoded"
# data/moscow/address_register_sample.json (the demo's `addresses` dataset)
LABEL = "Нижегородская улица, дом 3"


def post(client, data, url=URL):
    return client.post(url, urlencode(data, doseq=True), content_type=FORM)


@pytest.mark.parametrize("typed", [
    "Нижегородская улица, дом 3",   # as the register has it
    "нижегородская 3",              # lower case, no street type, no "дом"
    "ул. Нижегородская, д. 3",      # abbreviations
    "на Нижегородской улице, 3",    # another word form
    "Нижгородская 3",               # a typo
    "Нижегородская д 3",            # a word the register lacks
])
def test_an_address_alone_is_located_and_returned(client, service, api_key, typed):
    address = Address.objects.get(label=LABEL)
    response = post(client, form(api_key, lat=None, long=None, address_string=typed))
    assert response.status_code == 201, response.content
    complaint = Complaint.objects.get(pk=response.json()[0]["service_request_id"])
    assert complaint.location.distance(address.geom) < 1e-7
    assert complaint.address_string == LABEL
    shown = client.get(f"/open311/v2/requests/{complaint.pk}.json").json()[0]
    assert shown["address"] == LABEL
    assert (shown["lat"], shown["long"]) == pytest.approx((address.geom.y, address.geom.x), abs=1e-6)


def test_a_district_name_alone_locates_inside_it(client, service, api_key):
    response = post(client, form(api_key, lat=None, long=None, address_string="Тверской район"))
    assert response.status_code == 201, response.content
    complaint = Complaint.objects.get(pk=response.json()[0]["service_request_id"])
    assert complaint.area is not None and complaint.area.name == "Тверской"


@pytest.mark.parametrize("typed", ["Qwxz Jjjvv", "1234567", "—", "zz", "Ыыыыыы Ъъъъ", "\u202e\u200b"])
@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_nothing_matches_is_a_400_in_open311s_format(client, service, api_key, typed, fmt):
    before = stored_counts()
    response = post(client, form(api_key, lat=None, long=None, address_string=typed), url=f"/open311/v2/requests.{fmt}")
    assert response.status_code == 400, response.content
    if fmt == "json":
        errors = response.json()
        assert [e["code"] for e in errors] == [400]
        assert "no address or place in the city matches" in errors[0]["description"]
    else:
        assert b"<errors>" in response.content and b"no address or place in the city matches" in response.content
    assert stored_counts() == before


def test_a_point_given_wins_over_the_address(client, service, api_key):
    response = post(client, form(api_key, address_string="нижегородская 3"))
    complaint = Complaint.objects.get(pk=response.json()[0]["service_request_id"])
    assert complaint.address_string == "нижегородская 3"  # kept as sent, not looked up
    assert complaint.location.y == pytest.approx(55.7539)


@pytest.mark.parametrize("typed", ["' OR 1=1 --", "a:* & !b | c", "\\'); DROP TABLE x; --", "(((", "''''",
                                   "нижегородская:*", "!нижегородская", "я" * 500, "%_%", "<b>x</b>"])
def test_hostile_addresses_answer_as_open311_does(client, service, api_key, typed):
    """Text that means something to tsquery, SQL or LIKE is only text: a located request or a 400 list."""
    response = post(client, form(api_key, lat=None, long=None, address_string=typed))
    assert response.status_code in (201, 400), response.content
    body = response.json()
    assert body and (("service_request_id" in body[0]) if response.status_code == 201 else body[0]["code"] == 400)
