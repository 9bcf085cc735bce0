"""The ticket list: only the user's department's tickets, filtered, sorted, paginated, exported to CSV."""
import csv
import io
import re
from datetime import timedelta

import pytest

from complaints.models import State

LIST = "/staff/"
CSV = "/staff/tickets.csv"


def numbers(response):
    """The public numbers (ids) of the list's rows, in order."""
    return [int(n) for n in re.findall(r'<tr class="[^"]*" data-number="(\d+)"', response.content.decode())]


def csv_rows(response):
    text = b"".join(response.streaming_content).decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:])))


def test_anonymous_users_are_sent_to_the_login_page(db):
    from django.test import Client

    for url in (LIST, CSV, "/staff/t/1/"):
        response = Client().get(url)
        assert response.status_code == 302 and response["Location"].startswith("/staff/login/?next=")


def test_the_list_shows_only_the_users_departments_tickets(make_ticket, departments, staff, client_for):
    mine = make_ticket()
    theirs = make_ticket(department=departments["b"])
    assert numbers(client_for(staff["a"]).get(LIST)) == [mine.pk]
    assert numbers(client_for(staff["b"]).get(LIST)) == [theirs.pk]
    assert set(numbers(client_for(staff["dispatcher"]).get(LIST))) >= {mine.pk, theirs.pk}
    # Data staff work no department: an empty list, and the import page linked.
    response = client_for(staff["data"]).get(LIST)
    assert numbers(response) == []
    assert 'href="/admin/importers/importrun/upload/"' in response.content.decode()
    assert "/admin/importers/importrun/upload/" not in client_for(staff["a"]).get(LIST).content.decode()


def test_sorted_by_deadline_soonest_first_or_latest_first(make_ticket, staff, client_for):
    late, soon, middle = (make_ticket(deadline_in=timedelta(days=d)) for d in (9, 1, 5))
    client = client_for(staff["a"])
    assert numbers(client.get(LIST)) == [soon.pk, middle.pk, late.pk]
    assert numbers(client.get(LIST, {"sort": "-deadline"})) == [late.pk, middle.pk,
                                                               soon.pk]
    # The column header toggles the order and keeps the filters.
    page = client.get(LIST, {"state": "all"}).content.decode()
    assert re.search(r'href="\?state=all&amp;sort=-deadline" id="sort-deadline"', page)


def test_filter_by_state(make_ticket, staff, client_for):
    assigned = make_ticket()
    in_progress = make_ticket(state=State.IN_PROGRESS)
    answered = make_ticket(state=State.ANSWERED)
    resolved = make_ticket(state=State.RESOLVED)
    client = client_for(staff["a"])
    # By default: the tickets still to work on.
    assert set(numbers(client.get(LIST))) == {assigned.pk, in_progress.pk}
    assert numbers(client.get(LIST, {"state": "answered"})) == [answered.pk]
    assert len(numbers(client.get(LIST, {"state": "all"}))) == 4
    assert numbers(client.get(LIST, {"state": "resolved"})) == [resolved.pk]


def test_filter_by_category_and_district(make_ticket, staff, client_for, categories, districts):
    yard = make_ticket()
    car = make_ticket(category=categories["yard-abandoned-car"])
    arbat = make_ticket(area=districts["Арбат"])
    client = client_for(staff["a"])
    assert numbers(client.get(LIST, {"category": "yard-abandoned-car"})) == [car.pk]
    assert numbers(client.get(LIST, {"district": districts["Арбат"].pk})) == [arbat.pk]
    assert set(numbers(client.get(LIST, {"category": "yard-rubbish", "district": districts["Тверской"].pk}))) == {
        yard.pk}
    # A value that is not a choice is a message beside the filter, and the other filters still apply.
    response = client.get(LIST, {"category": "no-such-thing", "district": districts["Арбат"].pk})
    assert numbers(response) == [arbat.pk]
    assert "Select a valid choice" in response.content.decode()


def test_overdue_tickets_are_highlighted_and_can_be_filtered(make_ticket, staff, client_for):
    overdue = make_ticket(deadline_in=timedelta(days=-2))
    make_ticket()
    make_ticket(state=State.ANSWERED, deadline_in=timedelta(days=-2))  # answered in time: not overdue
    client = client_for(staff["a"])
    page = client.get(LIST).content.decode()
    assert f'<tr class="overdue" data-number="{overdue.pk}">' in page
    assert page.count('class="overdue"') == 1
    assert numbers(client.get(LIST, {"overdue": "on", "state": "all"})) == [overdue.pk]


def test_paginated_with_the_filters_kept(make_ticket, staff, client_for):
    tickets = [make_ticket(deadline_in=timedelta(days=1, minutes=i)) for i in range(30)]
    client = client_for(staff["a"])
    first = client.get(LIST, {"sort": "deadline"})
    assert numbers(first) == [t.pk for t in tickets[:25]]
    assert 'href="?sort=deadline&amp;page=2"' in first.content.decode()
    second = client.get(LIST, {"sort": "deadline", "page": 2})
    assert numbers(second) == [t.pk for t in tickets[25:]]
    assert numbers(client.get(LIST, {"page": "999"})) == numbers(second)  # past the end: the last page


def test_csv_export_of_the_filtered_list(make_ticket, departments, staff, client_for, categories):
    wanted = make_ticket(description="Мусор у подъезда", email="resident@example.com", phone="+7 900 000-00-00",
                         first_name="Иван", address_string="Тверская ул., 1")
    make_ticket(category=categories["yard-abandoned-car"])
    make_ticket(department=departments["b"])
    response = client_for(staff["a"]).get(CSV, {"category": "yard-rubbish", "page": "2"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="tickets-')
    header, *rows = csv_rows(response)
    assert header[:3] == ["Number", "Submitted", "Deadline"]
    assert [r[0] for r in rows] == [str(wanted.pk)]
    row = dict(zip(header, rows[0]))
    assert row["Description"] == "Мусор у подъезда" and row["Address"] == "Тверская ул., 1"
    assert row["Department"] == "Test department a (TA-a)" and row["District"] == "Тверской"
    assert row["Link"] == f"http://testserver/staff/t/{wanted.pk}/"
    text = ";".join(rows[0])
    assert "resident@example.com" not in text and "900" not in text and "Иван" not in text


@pytest.mark.parametrize("dangerous", ["=HYPERLINK(\"http://evil\")", "+1+2", "-2+3", "@SUM(A1)", "\tx"])
def test_csv_cells_that_a_spreadsheet_would_run_get_an_apostrophe(dangerous, make_ticket, staff, client_for):
    make_ticket(description=dangerous, address_string="=cmd|' /C calc'!A0")
    header, row = csv_rows(client_for(staff["a"]).get(CSV))
    row = dict(zip(header, row))
    assert row["Description"] == "'" + dangerous
    assert row["Address"] == "'=cmd|' /C calc'!A0"


def test_the_list_is_in_russian_by_default(make_ticket, staff, client_for):
    make_ticket(deadline_in=timedelta(days=-1))
    page = client_for(staff["a"], language="ru").get(LIST).content.decode()
    assert '<html lang="ru">' in page
    assert "Обращения моего подразделения" in page and "просрочено" in page


def test_pages_cost_a_fixed_number_of_queries(make_ticket, staff, client_for, django_assert_max_num_queries):
    tickets = [make_ticket() for _ in range(30)]
    client = client_for(staff["a"])
    client.get(LIST)  # the session and the user's permissions, once
    with django_assert_max_num_queries(15):
        assert len(numbers(client.get(LIST))) == 25
    with django_assert_max_num_queries(20):
        assert client.get(f"/staff/t/{tickets[0].pk}/").status_code == 200
