"""Nothing in one process that two app servers would disagree on (issue 9 §3): two gunicorn servers, one database,
one Redis, one bucket. A resident's report, the department's answer, a catalogue edit and the resident's
confirmation, each step on the other server than the one before; and for each thing that used to live in one
process (the catalogue, the due dates, sessions, rate-limit counts, login lockouts, photos and uploads), a change
through one server seen at once through the other."""
import io
import re
from datetime import timedelta

import pytest
import requests
from django.contrib.auth import get_user_model
from django.utils import timezone
from PIL import Image

from complaints.models import Complaint, State
from routing.deadlines import add_working_days
from routing.models import Category, Holiday
from tests import s3server

from .conftest import LOGIN_FAILURES, LOOKUPS_PER_MINUTE, page_form

TVERSKAYA = (37.6056, 55.7655)
PASSWORD = "two-servers-pass-9"


def png():
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 90, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def browser():
    """One person's browser: its cookies go to both servers, as behind one load balancer's address."""
    session = requests.Session()
    session.headers["Accept-Language"] = "en"
    return session


def csrf(session, server, path="/"):
    session.get(server.url + path, timeout=30).raise_for_status()
    return session.cookies["csrftoken"]


def login(session, server, username, path="/staff/login/"):
    token = csrf(session, server, path)
    return session.post(server.url + path, data={"username": username, "password": PASSWORD,
                                                 "csrfmiddlewaretoken": token}, allow_redirects=False, timeout=30)


def admin_save(session, server, path, form_field, **changes):
    """Open an admin form (the one with `form_field`) on `server`, change some fields, and save it as a browser
    would."""
    page = session.get(server.url + path, timeout=30)
    assert page.status_code == 200, page.status_code
    fields = [(k, v) for k, v in page_form(page.text, form_field) if k not in changes]
    fields += [(k, v) for k, v in changes.items() if v is not None] + [("_save", "Save")]
    saved = session.post(server.url + path, data=fields, allow_redirects=False, timeout=60)
    assert saved.status_code == 302, re.findall(r'class="errorlist[^"]*"[^>]*>(.*?)</ul>', saved.text, re.S)


def open311_post(server, key, code, **extra):
    return requests.post(f"{server.url}/open311/v2/requests.json", timeout=60, data={
        "api_key": key, "service_code": code, "lat": TVERSKAYA[1], "long": TVERSKAYA[0],
        "description": "Яма на тротуаре", **extra})


@pytest.fixture
def people(demo_city):
    from open311.keys import api_key_issue

    users = get_user_model()
    admin = users.objects.create_superuser("t-two-admin", password=PASSWORD)
    return {"admin": admin, "api_key": api_key_issue(name="t-two-servers")[1]}


def test_report_answer_catalogue_edit_and_confirmation_alternate_between_two_servers(servers, people):
    a, b, endpoint, bucket = servers
    resident, officer, administrator = browser(), browser(), browser()

    # 1. A: the resident reports from the map, with a photo.
    token = csrf(resident, a)
    reported = resident.post(f"{a.url}/report/", headers={"Accept": "application/json", "X-CSRFToken": token},
                             data={"lon": TVERSKAYA[0], "lat": TVERSKAYA[1], "category": "yard-rubbish",
                                   "description": "Мусор во дворе", "csrfmiddlewaretoken": token},
                             files={"photo": ("p.png", png(), "image/png")}, timeout=60)
    assert reported.status_code == 200, reported.text
    receipt = reported.json()
    complaint = Complaint.objects.get(tracking_code=receipt["tracking_code"])
    photo = complaint.photos.get()
    # B serves the photo that A stored (the bucket, not A's disk), and B shows the complaint's page.
    served = requests.get(f"{b.url}/photos/{photo.pk}/", timeout=30)
    assert served.status_code == 200
    assert served.content == s3server.client(endpoint).get_object(
        Bucket=bucket, Key=f"media/{photo.file.name}")["Body"].read()
    assert resident.get(f"{b.url}{receipt['url']}", timeout=30).status_code == 200

    # 2. The department's staff member logs in on A and goes on on B in the same session: takes, then answers.
    staff = get_user_model().objects.create_user("t-two-officer", password=PASSWORD, is_staff=True)
    complaint.department.staff.add(staff)
    assert login(officer, a, "t-two-officer").status_code == 302
    ticket = f"/staff/t/{complaint.pk}/"
    assert officer.get(b.url + ticket, allow_redirects=False, timeout=30).status_code == 200  # B knows the session
    token = officer.cookies["csrftoken"]
    took = officer.post(f"{b.url}{ticket}take/", data={"csrfmiddlewaretoken": token}, allow_redirects=False,
                        timeout=30)
    assert took.status_code == 302
    answered = officer.post(f"{a.url}{ticket}answer/", data={"csrfmiddlewaretoken": token,
                                                             "text": "Вывезли мусор"}, allow_redirects=False,
                            timeout=30)
    assert answered.status_code == 302
    complaint.refresh_from_db()
    assert complaint.state == State.ANSWERED

    # 3. The catalogue: the administrator (on B) turns a category on and shortens its deadline; A, which has
    # just refused that category, takes it at once with the new deadline.
    category = Category.objects.get(code="yard-rubbish")
    category.pk, category.code, category.active, category.deadline_days = None, "t-two-new", False, 9
    category.save()
    refused = open311_post(a, people["api_key"], "t-two-new")
    assert refused.status_code == 400 and refused.json()[0]["code"] == 400
    assert login(administrator, b, "t-two-admin", "/admin/login/").status_code == 302
    admin_save(administrator, b, f"/admin/routing/category/{category.pk}/change/", "name_i18n", active="on",
               deadline_days="2")
    taken = open311_post(a, people["api_key"], "t-two-new")
    assert taken.status_code == 201, taken.text
    new = Complaint.objects.get(pk=taken.json()[0]["service_request_id"])
    assert new.category_id == category.pk and new.deadline == add_working_days(new.submitted_at, 2)

    # 4. B: the resident confirms the fix with the key A gave.
    token = csrf(resident, b, receipt["url"])
    confirmed = resident.post(f"{b.url}{receipt['url']}confirm/", allow_redirects=False, timeout=30,
                              data={"key": receipt["confirmation_key"], "csrfmiddlewaretoken": token})
    assert confirmed.status_code == 302
    complaint.refresh_from_db()
    assert complaint.state == State.RESOLVED
    page = resident.get(f"{a.url}{receipt['url']}", timeout=30)
    assert page.status_code == 200 and "Вывезли мусор" in page.text


def test_a_holiday_added_on_one_server_moves_the_next_deadline_on_the_other(servers, people):
    a, b, _endpoint, _bucket = servers
    first = open311_post(b, people["api_key"], "yard-rubbish")  # B computes (and keeps) today's due date
    assert first.status_code == 201, first.text
    before = Complaint.objects.get(pk=first.json()[0]["service_request_id"])
    days = before.category.deadline_days
    today = timezone.localtime(before.submitted_at).date()
    # the first working day that counts for a complaint filed today becomes a holiday, added in A's admin
    day = today + timedelta(days=1)
    while day.weekday() >= 5 or Holiday.objects.filter(date=day).exists():
        day += timedelta(days=1)
    administrator = browser()
    assert login(administrator, a, "t-two-admin", "/admin/login/").status_code == 302
    admin_save(administrator, a, "/admin/routing/holiday/add/", "name", date=day.isoformat(), name="t-two holiday")
    second = open311_post(b, people["api_key"], "yard-rubbish")
    after = Complaint.objects.get(pk=second.json()[0]["service_request_id"])
    assert timezone.localtime(after.submitted_at).date() == today, "the day changed during the test: run it again"
    assert after.deadline == add_working_days(after.submitted_at, days)  # the holiday counts at once
    assert timezone.localtime(after.deadline).date() > timezone.localtime(before.deadline).date()


def test_rate_limit_counts_and_login_lockouts_are_shared(servers, transactional_db):
    a, b, _endpoint, _bucket = servers
    client = browser()
    # Code lookups: the count is one for the client, whichever server answers.
    answers = [client.get(f"{(a, b)[n % 2].url}/c/", params={"code": "NOPE-NOPE"}, allow_redirects=False,
                          timeout=30).status_code
               for n in range(LOOKUPS_PER_MINUTE + 1)]
    assert 429 not in answers[:LOOKUPS_PER_MINUTE] and answers[-1] == 429, answers
    # Failed logins: LOGIN_FAILURES in all, spread over both servers, lock the user out on both.
    get_user_model().objects.create_user("t-two-locked", password=PASSWORD, is_staff=True)
    for n in range(LOGIN_FAILURES):
        server = (a, b)[n % 2]
        token = csrf(client, server, "/staff/login/")
        client.post(f"{server.url}/staff/login/", data={"username": "t-two-locked", "password": "wrong",
                                                        "csrfmiddlewaretoken": token}, timeout=30)
    for server in (a, b):
        assert login(browser(), server, "t-two-locked").status_code == 429
