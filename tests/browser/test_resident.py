"""The resident's half of the issue's browser scenario, and the language switch.

The staff half (the school's staff member answers, the resident confirms, the map turns the resolved colour)
continues from `resident_reports_school_problem` when the staff workspace exists.
"""
import io
import re

import pytest
from django.db import connection
from PIL import Image
from playwright.sync_api import expect

from complaints.models import Complaint
from facilities.models import Facility
from routing.models import Category
from web.labels import STATE_COLOURS

from .steps import click_map_at, complaint_colours, open_map, report_problem


def a_school_building():
    """A school of the demo city with a polygon outline, a point inside it, and a school category."""
    with connection.cursor() as cur:
        cur.execute("""
            SELECT f.id, ST_Y(ST_PointOnSurface(f.geom)), ST_X(ST_PointOnSurface(f.geom))
            FROM facilities_facility f JOIN facilities_facilitytype t ON t.id = f.type_id
            WHERE t.code = 'school' AND f.valid_to IS NULL AND f.owner_id IS NOT NULL
              AND GeometryType(f.geom) IN ('POLYGON', 'MULTIPOLYGON')
            ORDER BY ST_Area(f.geom) DESC, f.id LIMIT 1""")
        facility_id, lat, lon = cur.fetchone()
    school = Facility.objects.select_related("owner").get(pk=facility_id)
    category = (Category.objects.filter(active=True, facility_types__code="school")
                .exclude(facility_types__code="kindergarten").order_by("code").first())
    return school, lat, lon, category


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "fence.png"
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), "gray").save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())
    return path


def resident_reports_school_problem(page, shots, photo):
    """Steps 1-2 of the scenario: the resident reports a problem inside a school building and sees that
    school named as responsible. Returns (school, complaint)."""
    school, lat, lon, category = a_school_building()
    open_map(page, lat=lat, lon=lon, zoom=18)
    shots("map")
    result = report_problem(page, shots, lat=lat, lon=lon, category=category.code, photo=photo,
                            email="resident@example.com", description="Сломан забор у входа в школу")
    expect(page.locator("#result-department")).to_contain_text(school.owner.short_name)
    expect(result).to_contain_text(school.name)  # the explanation names the building
    code = page.locator("#result-code").inner_text().strip()
    complaint = Complaint.objects.select_related("department").get(tracking_code=code)
    assert complaint.department.authority_id == school.owner_id
    assert complaint.photos.count() == 1
    return school, complaint


def test_resident_reports_a_problem_in_a_school(demo_city, page, shots, photo):
    school, complaint = resident_reports_school_problem(page, shots, photo)
    # The new complaint is on the map at once, in the colour of its state.
    colour = STATE_COLOURS[complaint.state]
    page.wait_for_function("(c) => Array.from(document.querySelectorAll('.leaflet-complaints-pane path'))"
                           ".some(p => p.getAttribute('fill') === c)", arg=colour)
    assert colour in complaint_colours(page)
    shots("on-the-map")
    link = page.locator("#result-link").get_attribute("href")
    # Back to browsing: its popup says where it went and why; the description shows as text.
    page.locator("#report-result .report-cancel").click()
    click_map_at(page, complaint.location.y, complaint.location.x)
    popup = page.locator(".leaflet-popup-content .complaint-popup")
    expect(popup).to_contain_text(school.owner.short_name)
    expect(popup).to_contain_text("Сломан забор у входа в школу")
    shots("popup")
    # Its page (the link the resident was given): where it went and why, and the public history.
    page.goto(link)
    expect(page).to_have_url(re.compile(re.escape(complaint.tracking_code)))
    expect(page.locator("main")).to_contain_text(school.owner.short_name)
    expect(page.locator(".timeline li")).to_have_count(2)  # submitted, sent to the school
    shots("complaint-page")


def test_a_point_outside_the_city_is_refused_clearly(demo_city, page, shots):
    open_map(page, lat=55.2, lon=38.3, zoom=12)  # east of Moscow's border
    page.click("#report-start")
    click_map_at(page, 55.2, 38.3)
    expect(page.locator('[data-error-for="location"]')).to_contain_text("за пределами города")
    expect(page.locator("#step-place [data-next]")).to_be_disabled()  # no step further from there
    shots("outside")


def test_the_english_switch(demo_city, page, shots):
    open_map(page)
    expect(page.locator("#report-start")).to_have_text("Сообщить о проблеме")
    assert page.locator("html").get_attribute("lang") == "ru"
    shots("russian")
    page.click("button[name=language][value=en]")
    expect(page.locator("#report-start")).to_have_text("Report a problem")
    assert page.locator("html").get_attribute("lang") == "en"
    expect(page.locator("#f-group")).to_contain_text("Schools and kindergartens")
    page.wait_for_function("() => window.OurCity && window.OurCity.map")
    shots("english")
