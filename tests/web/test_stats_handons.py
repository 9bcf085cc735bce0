"""The hand-on figures in the public statistics (issue 11 §3): from the scheduler's snapshot
(web.tasks.statistics_refresh), on the page and as CSV, safe from CSV injection."""
import csv
import io

import pytest

from complaints.services import complaint_transfer
from facilities.models import Authority, Department
from tests.complaints.factories import make_user
from web.models import StatisticsSnapshot
from web.selectors import complaint_stats, statistics_refresh

pytestmark = pytest.mark.django_db


@pytest.fixture
def handed_on(report):
    """Four complaints filed as a resident would; one handed on to another department."""
    made = [report() for _ in range(4)]
    authority = Authority.objects.create(code="t-web-hand", name="Other", short_name="Other")
    other = Department.objects.create(authority=authority, name="Other department")
    complaint_transfer(complaint=made[0], user=make_user("t-web-hand-admin", superuser=True), reason="not ours",
                       department=other)
    return made


def _csv(response):
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    body = response.content.decode("utf-8")
    assert body.startswith("\ufeff")
    return list(csv.reader(io.StringIO(body[1:])))


def test_the_page_shows_the_forwarding_rate_from_the_schedulers_snapshot(client, handed_on):
    StatisticsSnapshot.objects.all().delete()
    statistics_refresh()
    council = handed_on[1].department
    overall = client.get("/stats/").context["overall"]
    total = overall["complaints"]
    assert overall["forwarded"] >= 1
    # another hand-on: not shown until the scheduler runs again
    complaint_transfer(complaint=handed_on[1], user=make_user("t-web-hand-2", superuser=True), reason="again",
                       department=Department.objects.get(code="main", authority__code="t-web-hand"))
    assert client.get("/stats/").context["overall"]["forwarded"] == overall["forwarded"]
    statistics_refresh()
    page = client.get("/stats/")
    assert page.context["overall"]["forwarded"] == overall["forwarded"] + 1
    assert page.context["overall"]["complaints"] == total
    html = page.content.decode()
    assert 'id="handons"' in html and council.display_name in html
    assert "/stats/handons.csv" in html


def test_a_snapshot_from_before_the_hand_on_figures_is_computed_again(client, handed_on):
    StatisticsSnapshot.objects.all().delete()
    statistics_refresh()
    StatisticsSnapshot.objects.update(figures={"answered": 0, "answered_on_time": 0, "open_overdue": 0,
                                               "median_answer_seconds": None, "by_department": []})
    s = complaint_stats()
    assert sum(r.forwarded for r in s["handons"] if r.dimension is None and r.month is None) >= 1
    assert client.get("/stats/").status_code == 200


def test_the_public_csv_has_every_breakdown(client, handed_on):
    statistics_refresh()
    rows = _csv(client.get("/stats/handons.csv"))
    assert rows[0][:3] == ["Разбивка", "Название", "Месяц"] or rows[0][:3] == ["Breakdown", "Name", "Month"]
    kinds = {r[0] for r in rows[1:]}
    assert kinds == {"all", "department", "category", "facility_type", "district"}
    department = [r for r in rows[1:] if r[0] == "department" and r[1] == handed_on[1].department.display_name
                  and r[2] == ""]
    assert len(department) == 1 and int(department[0][4]) >= 1


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_the_public_csv_is_safe_from_csv_injection(client, report, start):
    made = report()
    Department.objects.filter(pk=made.department_id).update(name=f"{start}cmd|' /C calc'!A0")
    statistics_refresh()
    cells = [c for r in _csv(client.get("/stats/handons.csv")) for c in r]
    assert not any(c.startswith(("=", "+", "-", "@", "\t", "\r")) for c in cells)
    assert any(c.startswith(f"'{start}cmd") for c in cells)
