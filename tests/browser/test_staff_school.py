"""The staff half of the issue's browser scenario: a resident reports a problem inside the demo school's building,
the school's staff member finds it at the top of their list and answers, the resident confirms, and the map shows
the resolved colour. Then: another department's staff member can not see it, and the staff pages switch to
English. Screenshots under test-output/browser/<test name>/."""
import io
import re

import pytest
from django.db import connection
from PIL import Image
from playwright.sync_api import expect

from complaints.models import Complaint, State
from complaints.services import complaint_create
from geo_ourcity.demo import DEMO_PASSWORD
from routing.models import Category
from staff.demo import demo_school
from web.labels import STATE_COLOURS

from .steps import complaint_colours, open_map, report_problem

CATEGORY = "school-building"


def school_point(school):
    """(lat, lon) of a point inside the school's building."""
    with connection.cursor() as cur:
        cur.execute("""
            SELECT ST_Y(p), ST_X(p) FROM (
              SELECT ST_PointOnSurface(f.geom) p FROM facilities_facility f
              JOIN facilities_facilitytype t ON t.id = f.type_id
              WHERE f.owner_id = %s AND t.code = 'school' AND f.valid_to IS NULL
                AND GeometryType(f.geom) IN ('POLYGON', 'MULTIPOLYGON')
              ORDER BY ST_Area(f.geom) DESC, f.id LIMIT 1) s""", [school.pk])
        return cur.fetchone()


def log_in(page, login):
    page.goto("/staff/login/")
    page.fill("#id_username", login)
    page.fill("#id_password", DEMO_PASSWORD)
    page.click("#login-submit")
    expect(page.locator("#whoami")).to_contain_text(login)


def log_out(page):
    page.click("#logout")
    expect(page.locator("#login-form")).to_be_visible()


@pytest.fixture
def answer_photo(tmp_path):
    path = tmp_path / "fixed.jpg"
    buffer = io.BytesIO()
    Image.new("RGB", (80, 60), "green").save(buffer, format="JPEG")
    path.write_bytes(buffer.getvalue())
    return path


def test_the_school_answers_and_the_resident_confirms(demo_city, page, shots, answer_photo):
    school = demo_school()
    lat, lon = school_point(school)
    # The resident reports a problem inside the school's building and sees the school named as responsible.
    open_map(page, lat=lat, lon=lon, zoom=18)
    report_problem(page, shots, lat=lat, lon=lon, category=CATEGORY, description="Сломана дверь у входа",
                   photo=answer_photo, email="resident@example.com")
    expect(page.locator("#result-department")).to_contain_text(school.short_name)
    code = page.locator("#result-code").inner_text().strip()
    key = page.locator("#result-key").inner_text().strip()  # shown once: the resident keeps it
    number = Complaint.objects.get(tracking_code=code).pk

    # The school's staff member logs in and finds it at the top of the list, by its number (never its code).
    log_in(page, "school")
    expect(page.locator("#tickets tbody tr").first).to_have_attribute("data-number", str(number))
    assert code not in page.content()
    shots("staff-list")
    page.locator("#tickets tbody tr").first.locator("a.code").click()
    expect(page.locator("#ticket-number")).to_have_text(f"№ {number}")
    assert code not in page.content()
    expect(page.locator("#explanation")).to_contain_text(school.short_name)
    # The small map outlines the building (drawn from the page's data: no tiles needed), the photo shows.
    page.wait_for_function("() => window.OurCityStaff && "
                           "document.querySelectorAll('#ticket-map .leaflet-overlay-pane path').length >= 2")
    # Waited for, not read at once: on a loaded machine the photo may still be on its way (seen once).
    page.wait_for_function("() => document.querySelector('.photos img').complete")
    assert page.evaluate("() => document.querySelector('.photos img').naturalWidth") > 0
    shots("staff-ticket")

    # Take it into work, then answer publicly with a photo.
    page.click("#take-submit")
    expect(page.locator("#ticket-state")).to_contain_text("в работе")
    page.click("#answer-submit")  # empty: a message beside the field, nothing stored
    expect(page.locator('[data-error-for="text"]')).to_be_visible()
    page.fill("#id_text", "Дверь отремонтирована.")
    page.set_input_files("#id_photo", str(answer_photo))
    page.click("#answer-submit")
    expect(page.locator(".alert-success")).to_contain_text("Ответ опубликован")
    expect(page.locator("#history")).to_contain_text("school")
    shots("staff-answered")
    complaint = Complaint.objects.get(tracking_code=code)
    assert complaint.state == State.ANSWERED and complaint.answers.get().author.username == "school"
    log_out(page)

    # The resident confirms on the complaint's page, and the map shows the resolved colour.
    page.goto(f"/c/{code}/")
    expect(page.locator("main")).to_contain_text("Дверь отремонтирована.")
    page.fill("#confirm-key", key)
    page.click(f"form[action$='/c/{code}/confirm/'] button")
    shots("resident-confirmed")
    assert Complaint.objects.get(tracking_code=code).state == State.RESOLVED
    open_map(page, lat=lat, lon=lon, zoom=17)  # another zoom: no tile of this place is in the browser's cache
    colour = STATE_COLOURS[State.RESOLVED]
    page.wait_for_function("(c) => Array.from(document.querySelectorAll('.leaflet-complaints-pane path'))"
                           ".some(p => p.getAttribute('fill') === c)", arg=colour)
    assert colour in complaint_colours(page)
    shots("map-resolved")


def test_another_department_can_not_see_it_and_english_works(demo_city, page, shots):
    school = demo_school()
    lat, lon = school_point(school)
    complaint = complaint_create(category=Category.objects.get(code=CATEGORY), point=(lon, lat),
                                 attributes={"damage": "Разбито окно"}, description="Разбито окно")
    assert complaint.department.authority == school

    log_in(page, "council")
    expect(page.locator("h1")).to_have_text("Обращения моего подразделения")
    expect(page.locator(f'#tickets tr[data-number="{complaint.pk}"]')).to_have_count(0)
    response = page.goto(f"/staff/t/{complaint.pk}/")
    assert response.status == 404
    shots("council-404")

    page.goto("/staff/")
    assert page.locator("html").get_attribute("lang") == "ru"
    page.click("button[name=language][value=en]")
    expect(page.locator("h1")).to_have_text("My department's tickets")
    assert page.locator("html").get_attribute("lang") == "en"
    expect(page.locator("label[for=id_state]")).to_have_text("State")
    expect(page.locator("#filter-submit")).to_have_text("Show")
    shots("english-list")
    log_out(page)
    expect(page.locator("#login-submit")).to_have_text("Log in")
    log_in(page, "school")
    page.goto(f"/staff/t/{complaint.pk}/")
    expect(page.locator("#take-submit")).to_have_text("Take into work")
    expect(page.locator("#explanation")).to_contain_text(re.compile(r"[A-Za-z]{4,}"))
    shots("english-ticket")
