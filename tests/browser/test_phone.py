"""Phone first (issue 10 §5), at desktop size and at 390 x 844: no page scrolls sideways and the header keeps the
code lookup and the language switch; the map fills its panel after "Report a problem"; the report is a sequence of
steps whose messages sit beside their fields, scrolled into view and announced; several photos; a plain form
without JavaScript; and axe-core finds no serious or critical violation on the map, each report step, a complaint
page, the staff list and a ticket."""
import io

import pytest
from playwright.sync_api import expect

from complaints.models import Complaint
from complaints.services import complaint_create
from geo_ourcity.demo import DEMO_PASSWORD
from routing.models import Category
from staff.demo import demo_school
from tests.complaints.factories import MOSCOW

from .axe import assert_accessible, use_axe
from .conftest import CHROMIUM  # noqa: F401 - the same browser
from .steps import choose_place, fill_required_attributes, next_step, open_map, report_problem
from .test_staff_school import school_point

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
SIZES = {"phone": PHONE, "desktop": DESKTOP}
# A category with required questions (the demo's school building: "what is damaged").
ASKING = "school-building"


def at_size(page, size):
    page.set_viewport_size(SIZES[size])
    page.set_default_timeout(30_000)  # the machine is shared: pages and hashes take their time


def fits_its_width(page):
    """(scrollWidth, clientWidth) of the document: no sideways scroll when the first is not larger."""
    return page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")


def too_wide(page):
    """The elements that reach past the window's right edge, outside any map (for the failure message)."""
    return page.evaluate("""() => Array.from(document.querySelectorAll('body *')).filter(e => {
        const r = e.getBoundingClientRect();
        return r.right > document.documentElement.clientWidth + 0.5 && !(e.parentElement && e.parentElement.closest('.leaflet-container'));
      }).slice(0, 12).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
                             (typeof e.className === 'string' && e.className ? '.' + e.className : '') +
                             ' ' + Math.round(e.getBoundingClientRect().right))""")


def visible_in_viewport(page, selector):
    box = page.locator(selector).first.bounding_box()
    size = page.viewport_size
    return bool(box) and box["x"] >= 0 and box["x"] + box["width"] <= size["width"] + 0.5 and box["width"] > 0


def log_in(page, login):
    page.goto("/staff/login/")
    page.fill("#id_username", login)
    page.fill("#id_password", DEMO_PASSWORD)
    page.click("#login-submit", timeout=60_000)  # a password hash takes its time on a loaded machine
    expect(page.locator("#whoami")).to_contain_text(login, timeout=60_000)


def png(tmp_path, name, colour):
    from PIL import Image

    path = tmp_path / name
    buffer = io.BytesIO()
    Image.new("RGB", (60, 40), colour).save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())
    return path


def a_school_complaint():
    school = demo_school()
    lat, lon = school_point(school)
    return complaint_create(category=Category.objects.get(code=ASKING), point=(lon, lat),
                            attributes={"damage": "Разбито окно"}, description="Разбито окно на первом этаже")


@pytest.mark.parametrize("size", SIZES)
def test_every_page_fits_its_width_and_keeps_its_header_and_axe_finds_nothing_serious(demo_city, page, shots, size):
    at_size(page, size)
    use_axe(page)
    complaint = a_school_complaint()
    residents = {"map": "/", "report form": "/report/", "statistics": "/stats/",
                 "complaint page": f"/c/{complaint.tracking_code}/"}
    for name, url in residents.items():
        page.goto(url)
        page.wait_for_load_state("load")
        scroll, client = fits_its_width(page)
        assert scroll <= client, f"{name} at {size} scrolls sideways: {scroll} > {client}: {too_wide(page)}"
        assert visible_in_viewport(page, ".find-form input[name=code]"), f"{name}: no code lookup at {size}"
        assert visible_in_viewport(page, ".find-form button"), f"{name}: no code lookup button at {size}"
        assert visible_in_viewport(page, ".lang-form button[name=language]"), f"{name}: no language switch"
        assert page.locator("h1").count() >= 1, f"{name} has no heading"
        assert_accessible(page, f"{name} at {size}")
        shots(f"{name}")
    viewport = page.locator('meta[name="viewport"]').first.get_attribute("content")
    page.goto("/")
    for meta in page.locator('meta[name="viewport"]').all():  # pinch zoom is allowed
        content = meta.get_attribute("content")
        assert "user-scalable=no" not in content and "maximum-scale" not in content, content
    assert "maximum-scale" not in viewport

    log_in(page, "school")
    for name, url in {"staff list": "/staff/", "ticket": f"/staff/t/{complaint.pk}/"}.items():
        page.goto(url)
        page.wait_for_load_state("load")
        shots(name)
        scroll, client = fits_its_width(page)
        assert scroll <= client, f"{name} at {size} scrolls sideways: {scroll} > {client}: {too_wide(page)}"
        assert visible_in_viewport(page, ".lang-form button[name=language]"), f"{name}: no language switch"
        assert_accessible(page, f"{name} at {size}")


def map_and_tiles(page):
    """The map container's box, Leaflet's idea of its size, and the box the base layer's tiles cover."""
    return page.evaluate("""() => {
        const map = window.OurCity.map, box = map.getContainer().getBoundingClientRect(), size = map.getSize();
        const tiles = Array.from(map.getContainer().querySelectorAll('.leaflet-tile-pane .leaflet-tile'))
          .map(t => t.getBoundingClientRect()).filter(r => r.width > 0);
        const cover = tiles.length ? {left: Math.min(...tiles.map(r => r.left)), top: Math.min(...tiles.map(r => r.top)),
          right: Math.max(...tiles.map(r => r.right)), bottom: Math.max(...tiles.map(r => r.bottom))} : null;
        return {box: {left: box.left, top: box.top, right: box.right, bottom: box.bottom,
                      width: box.width, height: box.height},
                size: {width: size.x, height: size.y}, cover: cover};
    }""")


@pytest.mark.parametrize("size", SIZES)
def test_the_map_fills_its_panel_after_opening_the_report(demo_city, page, shots, size):
    at_size(page, size)
    open_map(page, lat=MOSCOW[1], lon=MOSCOW[0], zoom=15)
    page.click("#report-start")
    expect(page.locator("#step-place")).to_be_visible()
    page.wait_for_timeout(500)  # the observer's redraw, and the tiles it asks for
    shots("report-opened")
    seen = map_and_tiles(page)
    box, cover = seen["box"], seen["cover"]
    assert (round(seen["size"]["width"]), round(seen["size"]["height"])) == (round(box["width"]), round(box["height"]))
    assert cover, "no tiles"
    assert cover["left"] <= box["left"] and cover["top"] <= box["top"], (cover, box)
    assert cover["right"] >= box["right"] and cover["bottom"] >= box["bottom"], (cover, box)
    # and when the window changes (a phone turned)
    page.set_viewport_size({"width": SIZES[size]["height"], "height": SIZES[size]["width"]})
    page.wait_for_timeout(500)
    seen = map_and_tiles(page)
    assert (round(seen["size"]["width"]), round(seen["size"]["height"])) == \
        (round(seen["box"]["width"]), round(seen["box"]["height"]))


@pytest.mark.parametrize("size", SIZES)
def test_the_report_steps_show_every_error_beside_its_field(demo_city, page, shots, size, tmp_path):
    at_size(page, size)
    use_axe(page)
    school = demo_school()
    lat, lon = school_point(school)
    open_map(page, lat=lat, lon=lon, zoom=18)
    assert_accessible(page, f"the map at {size}")
    choose_place(page, lat, lon)
    assert_accessible(page, f"the place step at {size}")
    shots("place")
    next_step(page)
    expect(page.locator("#step-category")).to_be_visible()
    expect(page.locator("#step-place")).to_be_hidden()
    if size == "phone":  # the steps after the place take the whole screen
        panel = page.locator("#panel").bounding_box()
        assert panel["width"] >= PHONE["width"] - 1 and panel["height"] >= PHONE["height"] * 0.8, panel
    next_step(page)  # no category yet: said beside the list, and the step stays
    expect(page.locator("#err-category")).not_to_be_empty()
    expect(page.locator("#id_category")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#step-category")).to_be_visible()
    assert_accessible(page, f"the category step at {size}")
    shots("category")
    page.select_option("#id_category", ASKING)
    next_step(page)
    expect(page.locator("#step-details")).to_be_visible()
    question = page.locator("#attributes [name='attribute[damage]']")
    expect(question).to_be_visible()
    label = page.locator("#attributes label.form-label").first.inner_text().rstrip(" *")
    page.set_input_files("#id_photo", [str(png(tmp_path, "a.png", "red")), str(png(tmp_path, "b.png", "blue"))])
    assert_accessible(page, f"the details step at {size}")
    shots("details")
    next_step(page)
    page.fill("#id_email", "not-an-address")
    assert_accessible(page, f"the contact step at {size}")
    page.click("#report-submit")  # no description, no answer to the question, a bad address: all three said at once

    expect(page.locator("#step-category")).to_be_visible()  # the first step with a fault
    expect(page.locator("#err-description")).not_to_be_empty()
    description = page.locator("#id_description")
    expect(description).to_be_focused()
    expect(description).to_have_attribute("aria-invalid", "true")
    assert description.get_attribute("aria-describedby") == "err-description"
    assert description.evaluate("""e => { const r = e.getBoundingClientRect();
        return r.top >= 0 && r.bottom <= window.innerHeight; }""")
    status = page.locator("#report-status")
    assert status.get_attribute("aria-live") == "assertive"
    expect(status).to_contain_text("3")
    question_error = page.locator("#err-attr-damage").inner_text()
    assert label in question_error and "«damage»" not in question_error
    expect(page.locator("#err-email")).not_to_be_empty()
    expect(page.locator("#id_email")).to_have_attribute("aria-invalid", "true")
    assert label in status.inner_text()
    assert_accessible(page, f"the category step with its messages at {size}")
    shots("errors")

    page.fill("#id_description", "Разбито окно у входа")
    next_step(page)
    fill_required_attributes(page)
    next_step(page)
    page.fill("#id_email", "resident@example.com")
    page.click("#report-submit")
    page.wait_for_function("() => !document.getElementById('report-result').hidden || "
                           "document.getElementById('report-status').textContent", timeout=60_000)
    assert page.locator("#report-status").inner_text() == "" or page.locator("#report-result").is_visible(), \
        page.locator("#report-status").inner_text()
    expect(page.locator("#report-result")).to_be_visible()
    assert_accessible(page, f"the result at {size}")
    shots("sent")
    code = page.locator("#result-code").inner_text().strip()
    assert Complaint.objects.get(tracking_code=code).photos.count() == 2


def test_without_javascript_the_report_is_one_form(demo_city, browser, live_server):
    context = browser.new_context(locale="ru-RU", viewport=PHONE, base_url=live_server.url,
                                  java_script_enabled=False)
    try:
        page = context.new_page()
        school = demo_school()
        lat, lon = school_point(school)
        page.goto("/")
        page.click("#report-start")  # a link to the one-page form
        expect(page.locator("#report-form")).to_be_visible()
        for step in ("place", "category", "details", "contact"):
            expect(page.locator(f"#step-{step}")).to_be_visible()
        expect(page.locator("#step-place [data-next]")).to_be_hidden()
        page.fill("#id_lat", str(lat))
        page.fill("#id_lon", str(lon))
        page.select_option("#id_category", ASKING)
        page.fill("#id_email", "wrong")
        page.click("#report-submit")
        # the page again: every message beside its field, the category's questions now asked
        expect(page.locator("#err-description")).not_to_be_empty()
        expect(page.locator("#err-email")).not_to_be_empty()
        expect(page.locator("#err-attr-damage")).not_to_be_empty()
        assert "«damage»" not in page.locator("#err-attr-damage").inner_text()
        assert page.locator("#id_lat").input_value() == str(lat)
        page.fill("#id_description", "Сломана дверь")
        page.fill("#attr-damage", "Дверь") if page.locator("input#attr-damage, textarea#attr-damage").count() \
            else page.locator("#attr-damage").select_option(index=1)
        page.fill("#id_email", "")
        page.click("#report-submit")
        expect(page.locator(".tracking-code").first).not_to_be_empty()
        code = page.locator(".tracking-code").first.inner_text().strip()
        assert Complaint.objects.get(tracking_code=code).department.authority_id == school.pk
    finally:
        context.close()


def test_clusters_show_their_counts_and_the_district_filter_moves_the_map(demo_city, page, shots):
    from web import selectors, tiles

    at_size(page, "phone")
    lon, lat = MOSCOW
    category = next(c for c, _facility in selectors.report_options((lon, lat)).categories if not c.attributes.all())
    for i in range(3):
        complaint_create(category=category, point=(lon + i * 1e-4, lat), description=f"Проблема {i}")
    open_map(page, lat=lat, lon=lon, zoom=tiles.RAW_MIN_ZOOM - 3)
    page.wait_for_function("() => document.querySelector('.leaflet-complaints-pane text.cell-count')")
    counts = page.evaluate("() => Array.from(document.querySelectorAll('.leaflet-complaints-pane text.cell-count'),"
                           " t => t.textContent)")
    assert set(counts) == {"3"}, counts
    shots("cluster")
    district = selectors.districts_for_filter().exclude(name="").order_by("name").last()
    page.wait_for_function("(n) => { let k = 0; window.OurCity.map.eachLayer(l => { if (l.feature) k++; });"
                           " return k >= n; }", arg=100)
    page.select_option("#f-district", str(district.pk))
    page.wait_for_function("""(id) => { const map = window.OurCity.map; let found = null;
        map.eachLayer(l => { if (l.feature && String(l.feature.id) === String(id)) found = l; });
        return found && map.getBounds().contains(found.getBounds().getCenter()) &&
               map.getBounds().intersects(found.getBounds()); }""", arg=district.pk)
    shots("district")
