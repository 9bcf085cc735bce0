"""Volunteers sign in as residents do (issue 10): by a link mailed to their account's address, no password. Signed
in that way, an approved volunteer sees and checks the complaints of their districts; the link gives the
volunteer's pages only (never the account's staff or admin rights); anyone else signed in by a link is no
volunteer."""
import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from complaints.models import Complaint, State, Volunteer, VolunteerCheck

from .test_account import link_path, signin_mail
from .test_volunteer import answer, district  # noqa: F401 - the volunteers' fixtures

pytestmark = pytest.mark.django_db


def make_volunteer(district, *, username="t-vol-link", email="Vol.Unteer@Example.org", approved=True,  # noqa: F811
                   active=True, **user_fields):
    user = get_user_model().objects.create_user(username=username, email=email, is_active=active, **user_fields)
    volunteer = Volunteer.objects.create(user=user, approved=approved)
    volunteer.districts.add(district)
    return volunteer


def sign_in_by_link(client, address):
    assert client.post("/account/", {"email": address}).status_code == 200
    _row, message = signin_mail()
    assert client.post(link_path(message)).status_code == 302


def test_a_volunteer_signs_in_by_the_mailed_link_and_checks(district, answer):  # noqa: F811
    volunteer = make_volunteer(district)
    complaint = answer()
    client = Client(headers={"accept-language": "en"})
    assert client.get("/volunteer/").status_code == 302  # not signed in: to the sign-in page
    login_page = client.get("/volunteer/login/").content.decode()
    assert 'id="volunteer-signin-form"' in login_page and 'action="/account/"' in login_page

    sign_in_by_link(client, "vol.unteer@example.org")  # the address in another case
    assert 'id="volunteer-link"' in client.get("/account/").content.decode()
    listing = client.get("/volunteer/")
    assert listing.status_code == 200 and f'data-complaint="{complaint.pk}"' in listing.content.decode()
    assert client.get(f"/volunteer/c/{complaint.pk}/").status_code == 200
    done = client.post(f"/volunteer/c/{complaint.pk}/check/", {"verdict": "not_fixed", "note": "Мусор на месте"})
    assert done.status_code == 302
    assert Complaint.objects.get(pk=complaint.pk).state == State.REOPENED
    assert VolunteerCheck.objects.get(complaint=complaint).volunteer == volunteer

    client.post("/account/out/")
    assert client.get("/volunteer/").status_code == 302


def test_the_link_gives_the_volunteer_pages_only_not_the_accounts_staff_rights(district):  # noqa: F811
    make_volunteer(district, is_staff=True, is_superuser=True)
    client = Client(headers={"accept-language": "en"})
    sign_in_by_link(client, "vol.unteer@example.org")
    assert client.get("/volunteer/").status_code == 200
    assert client.get("/staff/").status_code == 302  # the staff workspace wants its password
    assert client.get("/admin/").status_code == 302
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize("case", ["not approved", "inactive account", "no volunteer record", "another address",
                                  "two accounts share the address", "a resident with no account"])
def test_no_approved_volunteer_for_the_address_is_refused(case, district, answer):  # noqa: F811
    complaint = answer()
    address = "vol.unteer@example.org"
    if case == "not approved":
        make_volunteer(district, approved=False)
    elif case == "inactive account":
        make_volunteer(district, active=False)
    elif case == "no volunteer record":
        get_user_model().objects.create_user(username="t-vol-none", email=address)
    elif case == "another address":
        make_volunteer(district, email="someone.else@example.org")
    elif case == "two accounts share the address":
        make_volunteer(district)
        make_volunteer(district, username="t-vol-twin", email=address.upper())
    client = Client(headers={"accept-language": "en"})
    sign_in_by_link(client, address)
    assert client.get("/volunteer/").status_code == 403
    assert client.get(f"/volunteer/c/{complaint.pk}/").status_code == 403
    assert client.post(f"/volunteer/c/{complaint.pk}/check/", {"verdict": "not_fixed", "note": "x"}).status_code == 403
    assert not VolunteerCheck.objects.exists()
    assert Complaint.objects.get(pk=complaint.pk).state == State.ANSWERED
    assert 'id="volunteer-link"' not in client.get("/account/").content.decode()
