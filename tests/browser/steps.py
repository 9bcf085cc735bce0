"""Steps of the browser scenarios, shared by the resident's and (later) the staff's tests."""
from playwright.sync_api import expect


def open_map(page, *, lat=None, lon=None, zoom=None):
    """The residents' map, centred on (lat, lon) at `zoom` if given; returns when folium's map is up."""
    page.goto("/" + (f"#{zoom}/{lat}/{lon}" if zoom else ""))
    page.wait_for_function("() => window.OurCity && window.OurCity.map")


def map_point(page, lat, lon):
    """The page coordinates (x, y) of a place on the map."""
    return page.evaluate("""([lat, lon]) => {
        const map = window.OurCity.map, p = map.latLngToContainerPoint([lat, lon]);
        const box = map.getContainer().getBoundingClientRect();
        return [box.left + p.x, box.top + p.y];
    }""", [lat, lon])


def click_map_at(page, lat, lon):
    x, y = map_point(page, lat, lon)
    page.mouse.click(x, y)


def fill_required_attributes(page):
    """Answer the chosen category's required extra questions with the first allowed value (or a short text)."""
    for box in page.locator("#attributes > div").all():
        if not box.locator("label.form-label").inner_text().endswith("*"):
            continue
        if box.locator("select").count():
            box.locator("select").select_option(index=1)
        elif box.locator("input[type=checkbox]").count():
            box.locator("input[type=checkbox]").first.check()
        elif box.locator("input[type=number]").count():
            box.locator("input[type=number]").fill("1")
        elif box.locator("input[type=datetime-local]").count():
            box.locator("input[type=datetime-local]").fill("2026-11-20T10:00")
        else:
            box.locator("input, textarea").first.fill("тест")


def next_step(page):
    """The report's Next button of the step shown now."""
    page.locator("#report-form .step:not([hidden]) [data-next]").click()


def choose_place(page, lat, lon):
    """From the open map: start a report, choose (lat, lon) and wait for the place's categories."""
    page.click("#report-start")
    click_map_at(page, lat, lon)
    expect(page.locator("#step-place [data-next]")).to_be_enabled()
    expect(page.locator("#id_category option")).not_to_have_count(0)


def report_problem(page, shots, *, lat, lon, category, description, photo=None, email=""):
    """From the open map: report a problem at (lat, lon) through the report's steps (place; description and
    category; questions and photos; contact); returns the result panel's locator. `photo` may be a list."""
    choose_place(page, lat, lon)
    shots("point-chosen")
    next_step(page)
    page.fill("#id_description", description)
    page.select_option("#id_category", category)
    next_step(page)
    fill_required_attributes(page)
    if photo:
        page.set_input_files("#id_photo", [str(p) for p in (photo if isinstance(photo, list) else [photo])])
    next_step(page)
    if email:
        page.fill("#id_email", email)
    shots("form-filled")
    page.click("#report-submit")
    result = page.locator("#report-result")
    expect(result).to_be_visible()
    shots("sent")
    return result


def complaint_colours(page):
    """Fill colours of the complaint circles drawn on the map now."""
    return page.evaluate("""() => Array.from(
        document.querySelectorAll('.leaflet-complaints-pane path'), p => p.getAttribute('fill'))""")
