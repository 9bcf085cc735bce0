"""The hand-on figures in the staff workspace (issue 11 §3): scoped (staff see the complaints first routed to their
departments, dispatchers and superusers every department's), and as CSV safe from CSV injection."""
import csv
import io

import pytest

from complaints.services import complaint_transfer
from facilities.models import Authority, Department
from tests.complaints.factories import make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def handed(make_ticket, departments, staff):
    """Department a: three tickets, one handed on to b; department b: two tickets of its own."""
    a = [make_ticket(department=departments["a"]) for _ in range(3)]
    b = [make_ticket(department=departments["b"]) for _ in range(2)]
    complaint_transfer(complaint=a[0], user=staff["a"], reason="not ours", department=departments["b"])
    return a, b


def _overall(response):
    return response.context["overall"]


def _department_names(response):
    return {r["name"] for t in response.context["tables"] if t["dimension"] == "department" for r in t["rows"]}


def test_staff_see_only_the_complaints_first_routed_to_their_department(client_for, staff, departments, handed):
    page = client_for(staff["a"]).get("/staff/handons/")
    assert page.status_code == 200
    overall = _overall(page)
    assert (overall["complaints"], overall["forwarded"], overall["forwarding_pct"]) == (3, 1, 33.3)
    assert _department_names(page) == {departments["a"].display_name}
    html = page.content.decode()
    assert departments["b"].display_name not in html

    page = client_for(staff["b"]).get("/staff/handons/")
    assert (_overall(page)["complaints"], _overall(page)["forwarded"]) == (2, 0)  # the ticket handed to b is a's
    assert _department_names(page) == {departments["b"].display_name}


@pytest.mark.parametrize("who", ["dispatcher", "superuser"])
def test_dispatchers_and_superusers_see_every_department(client_for, staff, departments, handed, who):
    user = staff["dispatcher"] if who == "dispatcher" else make_user("t-stf-root", superuser=True)
    page = client_for(user).get("/staff/handons/")
    assert {departments["a"].display_name, departments["b"].display_name} <= _department_names(page)
    assert _overall(page)["complaints"] >= 5


def test_a_member_of_no_department_sees_no_figures(client_for, handed):
    page = client_for(make_user("t-stf-nobody")).get("/staff/handons/")
    assert page.status_code == 200 and page.context["overall"] is None
    rows = list(csv.reader(io.StringIO(client_for(make_user("t-stf-nobody2")).get("/staff/handons.csv")
                                       .getvalue().decode("utf-8-sig"))))
    assert len(rows) == 1  # the header only


@pytest.mark.parametrize("url", ["/staff/handons/", "/staff/handons.csv"])
def test_the_figures_need_a_login(client, url):
    response = client.get(url)
    assert response.status_code == 302 and "/login/" in response["Location"]


def _csv(response):
    assert response["Content-Type"].startswith("text/csv")
    body = response.getvalue().decode("utf-8")
    assert body.startswith("\ufeff")
    return list(csv.reader(io.StringIO(body[1:])))


def test_the_csv_has_every_line_of_the_staff_members_scope(client_for, staff, departments, handed):
    rows = _csv(client_for(staff["a"]).get("/staff/handons.csv"))
    header, lines = rows[0], rows[1:]
    assert header[:5] == ["Breakdown", "Name", "Month", "Complaints", "Handed on"]
    total = [r for r in lines if r[0] == "all" and r[2] == ""]
    assert len(total) == 1 and total[0][3:6] == ["3", "1", "33.3"]
    assert {r[1] for r in lines if r[0] == "department"} == {departments["a"].display_name}
    assert all(departments["b"].display_name not in ",".join(r) for r in lines)


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_the_csv_is_safe_from_csv_injection(client_for, staff, make_ticket, start):
    """Names come from imported data: a department named like a formula is written as text."""
    authority = Authority.objects.create(code=f"t-stf-evil-{ord(start)}", name="Evil", short_name="Evil")
    name = f"{start}HYPERLINK(\"http://evil.example/\",\"x\") Evil"
    evil = Department.objects.create(authority=authority, name=name)
    make_ticket(department=evil)
    rows = _csv(client_for(staff["dispatcher"]).get("/staff/handons.csv"))
    cells = [c for r in rows for c in r]
    assert not any(c.startswith(("=", "+", "-", "@", "\t", "\r")) for c in cells)
    assert "'" + name in cells
