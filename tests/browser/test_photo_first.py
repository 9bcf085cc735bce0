"""A photo may come first (issue 10 §5): in the report's place step the resident picks a photo; when it carries an
EXIF GPS position (read in the browser, web/static/web/photo-place.js), the place is filled from it, the map centred
there and the resident told where the place came from, and the resident can still move it on the map. A photo with
no position, or with malformed, hostile or odd EXIF, fills nothing and breaks nothing (a JavaScript error fails the
test: tests/browser/conftest.py); one taken outside the city says so. The stored photo carries no EXIF."""
import io

import pytest
from django.utils import translation
from playwright.sync_api import expect
from PIL import Image

from complaints.models import Complaint
from tests.complaints.exif_samples import DEVICE, INSIDE, SAMPLES, sample_bytes

from .conftest import CHROMIUM  # noqa: F401 - the same browser
from .steps import click_map_at, fill_required_attributes, next_step, open_map

EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}


def texts():
    with translation.override("ru"):
        return {k: translation.gettext(v) for k, v in {
            "from_photo": "The place is where the photo was taken (from its location data). Tap the map to move it.",
            "no_place": "The photo carries no location: tap the map where the problem is.",
            "outside": "The photo was taken outside the city: tap the map where the problem is."}.items()}


def photo_file(tmp_path, name):
    fmt = SAMPLES[name][0]
    path = tmp_path / f"{abs(hash(name))}.{EXTENSIONS[fmt]}"
    path.write_bytes(sample_bytes(name))
    return path


def pick_first(page, path):
    """The place step's "Start with a photo": the file chooser it opens, given this file."""
    with page.expect_file_chooser() as chooser:
        page.click("#photo-first")
    chooser.value.set_files(str(path))


def restart(page):
    page.locator("#step-place .report-cancel").click()
    page.click("#report-start")
    expect(page.locator("#step-place")).to_be_visible()


def coordinates(page):
    return page.input_value("#id_lat"), page.input_value("#id_lon")


def test_each_kind_of_photo_fills_the_place_or_leaves_it(demo_city, page, shots, tmp_path):
    page.set_default_timeout(30_000)  # the machine is shared
    said = texts()
    open_map(page, lat=INSIDE[0], lon=INSIDE[1], zoom=15)
    page.click("#report-start")
    outcomes = {}
    for name, (_fmt, _build, expected) in SAMPLES.items():
        pick_first(page, photo_file(tmp_path, name))
        expect(page.locator("#photo-count")).not_to_be_empty()
        if expected is None:
            expect(page.locator("#place-source")).to_have_text(said["no_place"])
            assert coordinates(page) == ("", ""), name
            expect(page.locator("#step-place [data-next]")).to_be_disabled()
            outcomes[name] = None
        else:
            page.wait_for_function("() => document.getElementById('id_lat').value !== ''")
            lat, lon = map(float, coordinates(page))
            assert abs(lat - expected[0]) < 1e-5 and abs(lon - expected[1]) < 1e-5, (name, lat, lon)
            centre = page.evaluate("() => { const c = window.OurCity.map.getCenter(); return [c.lat, c.lng]; }")
            assert abs(centre[0] - expected[0]) < 1e-4 and abs(centre[1] - expected[1]) < 1e-4, (name, centre)
            if expected == INSIDE:
                expect(page.locator("#step-place [data-next]")).to_be_enabled()
                expect(page.locator("#place-source")).to_have_text(said["from_photo"])
                outcomes[name] = "filled"
            else:
                expect(page.locator("#err-location")).to_have_text(said["outside"])
                expect(page.locator("#place-source")).to_be_empty()
                expect(page.locator("#step-place [data-next]")).to_be_disabled()
                outcomes[name] = "outside"
        restart(page)
    shots("after-all-samples")
    assert len(outcomes) == len(SAMPLES) and set(outcomes.values()) == {None, "filled", "outside"}


def test_a_place_chosen_on_the_map_first_stays(demo_city, page, tmp_path):
    page.set_default_timeout(30_000)
    open_map(page, lat=INSIDE[0], lon=INSIDE[1], zoom=17)
    page.click("#report-start")
    click_map_at(page, INSIDE[0] + 0.0004, INSIDE[1] + 0.0004)
    expect(page.locator("#step-place [data-next]")).to_be_enabled()
    before = coordinates(page)
    pick_first(page, photo_file(tmp_path, "jpeg, GPS"))
    expect(page.locator("#photo-count")).not_to_be_empty()
    page.wait_for_timeout(500)  # the file is read asynchronously: give it the time to (wrongly) move the point
    assert coordinates(page) == before
    expect(page.locator("#place-source")).to_be_empty()


def test_a_resident_starts_with_a_photo_moves_its_place_and_sends(demo_city, page, shots, tmp_path):
    page.set_default_timeout(30_000)
    said = texts()
    open_map(page, lat=INSIDE[0], lon=INSIDE[1], zoom=17)
    page.click("#report-start")
    pick_first(page, photo_file(tmp_path, "jpeg, a 64 KB EXIF block"))
    expect(page.locator("#place-source")).to_have_text(said["from_photo"])
    expect(page.locator("#step-place [data-next]")).to_be_enabled()
    shots("from-the-photo")
    # The resident moves it: a tap on the map is the place now, and no longer "from the photo".
    moved = (INSIDE[0] + 0.0003, INSIDE[1] - 0.0003)
    click_map_at(page, *moved)
    page.wait_for_function(f"() => Math.abs(parseFloat(document.getElementById('id_lat').value) - {moved[0]}) < 5e-5")
    expect(page.locator("#place-source")).to_be_empty()
    expect(page.locator("#step-place [data-next]")).to_be_enabled()
    next_step(page)
    page.fill("#id_description", "Мусор во дворе у подъезда")
    page.select_option("#id_category", index=1)
    next_step(page)
    fill_required_attributes(page)
    expect(page.locator("#photo-count")).not_to_be_empty()  # the photo chosen first is the report's photo
    next_step(page)
    page.click("#report-submit")
    expect(page.locator("#report-result")).to_be_visible(timeout=60_000)
    shots("sent")
    code = page.locator("#result-code").inner_text().strip()
    complaint = Complaint.objects.get(tracking_code=code)
    assert abs(complaint.location.y - moved[0]) < 5e-5 and abs(complaint.location.x - moved[1]) < 5e-5
    [photo] = complaint.photos.all()
    stored = photo.file.read()
    assert b"Exif" not in stored and DEVICE not in stored and not Image.open(io.BytesIO(stored)).getexif()


@pytest.mark.parametrize("name", [n for n, (_f, _b, e) in SAMPLES.items() if e is None][:1])
def test_no_position_leaves_the_map_where_it_was(demo_city, page, tmp_path, name):
    page.set_default_timeout(30_000)
    open_map(page, lat=INSIDE[0], lon=INSIDE[1], zoom=15)
    page.click("#report-start")
    before = page.evaluate("() => { const c = window.OurCity.map.getCenter(); return [c.lat, c.lng, "
                           "window.OurCity.map.getZoom()]; }")
    pick_first(page, photo_file(tmp_path, name))
    expect(page.locator("#place-source")).not_to_be_empty()
    after = page.evaluate("() => { const c = window.OurCity.map.getCenter(); return [c.lat, c.lng, "
                          "window.OurCity.map.getZoom()]; }")
    assert after == before
