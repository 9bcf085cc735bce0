"""The Content-Security-Policy in a real browser: every kind of page works with nothing refused, and the policy
refuses what it is there for (an injected inline script, style or event handler, an image from elsewhere).

The `page` fixture (conftest.py) fails a test on any `securitypolicyviolation` event of any page it opened; each
test here also asserts it where it matters, after the page has had time to run.
"""
import json
from pathlib import Path

from django.conf import settings
from playwright.sync_api import expect

from complaints.models import Complaint
from complaints.services import complaint_create
from facilities.models import Facility
from geo_ourcity.demo import DEMO_PASSWORD
from routing.models import Category
from tests.complaints.factories import MOSCOW
from web import selectors, tiles

from .steps import open_map, report_problem

DATA = Path(settings.BASE_DIR) / "data"


def settle(page):
    """Let the page finish what it loads and draws, so that any violation has been reported."""
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(300)


def no_violations(page):
    settle(page)
    assert page.watch.csp_violations == [], page.watch.csp_violations


def test_the_policy_refuses_injected_scripts_styles_handlers_and_foreign_images(transactional_db, page):
    response = page.goto("/staff/login/")
    policy = response.headers["content-security-policy"]
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
    no_violations(page)
    ran = page.evaluate("""() => {
        window.ran = [];
        const script = document.createElement("script");
        script.textContent = "window.ran.push('inline script')";
        document.body.appendChild(script);
        const button = document.createElement("button");
        button.setAttribute("onclick", "window.ran.push('event handler')");
        document.body.appendChild(button);
        button.click();
        const box = document.createElement("div");
        box.innerHTML = '<p style="color: rgb(255, 0, 0)">x</p><style>body { color: rgb(0, 255, 0) }</style>';
        document.body.appendChild(box);
        const image = new Image();
        image.src = "https://attacker.example/beacon.png";
        document.body.appendChild(image);
        return {ran: window.ran, colour: getComputedStyle(box.querySelector("p")).color,
                body: getComputedStyle(document.body).color};
    }""")
    assert ran["ran"] == []
    assert ran["colour"] != "rgb(255, 0, 0)" and ran["body"] != "rgb(0, 255, 0)"
    settle(page)
    refused = [json.loads(v.split(" ", 2)[2]) for v in page.watch.csp_violations]
    directives = {v["directive"] for v in refused}
    assert {"script-src-elem", "script-src-attr", "style-src-attr", "style-src-elem", "img-src"} <= directives, refused
    assert any(v["blocked"].startswith("https://attacker.example/") for v in refused)
    page.watch.csp_violations.clear()  # seen: not a failure of this page


def test_residents_pages_map_report_popups_complaint_and_stats(demo_city, page, shots):
    lon, lat = MOSCOW
    category = next(c for c, _facility in selectors.report_options((lon, lat)).categories if not c.attributes.all())
    for i in range(3):  # a few complaints nearby: a grid cell when zoomed out
        complaint_create(category=category, point=(lon + i * 1e-4, lat), description=f"Проблема {i}")
    open_map(page, lat=lat, lon=lon, zoom=18)
    report_problem(page, shots, lat=lat + 2e-4, lon=lon, category=category.code, description="Яма во дворе")
    code = page.locator("#result-code").inner_text().strip()
    no_violations(page)

    # A complaint's popup (HTML from the server) and, zoomed out, a grid cell's (made in map.js).
    page.locator("#report-result .report-cancel").click()
    page.wait_for_function("() => document.querySelectorAll('.leaflet-complaints-pane path').length >= 4")
    page.locator(".leaflet-complaints-pane path").first.click()
    expect(page.locator(".leaflet-popup-content .complaint-popup")).to_be_visible()
    shots("complaint-popup")
    page.evaluate("(z) => { window.OurCity.map.closePopup(); window.OurCity.map.setZoom(z); }", tiles.RAW_MIN_ZOOM - 3)
    page.wait_for_function("() => document.querySelectorAll('.leaflet-complaints-pane path').length >= 1")
    page.locator(".leaflet-complaints-pane path").first.click()
    swatch = page.locator(".leaflet-popup-content .cell-popup .swatch").first
    expect(swatch).to_be_visible()
    assert swatch.evaluate("s => getComputedStyle(s).backgroundColor") not in ("", "rgba(0, 0, 0, 0)")
    shots("cell-popup")
    no_violations(page)

    page.goto(f"/c/{code}/")
    expect(page.locator(".timeline li")).to_have_count(2)
    shots("complaint-page")
    no_violations(page)
    page.goto("/stats/")
    expect(page.locator(".stats-page .bars").first).to_be_visible()
    shots("stats")
    no_violations(page)


def test_staff_admin_upload_and_api_docs(demo_city, page, shots):
    facility = Facility.objects.filter(valid_to__isnull=True, geom__isnull=False).order_by("pk").first()
    complaint = complaint_create(category=Category.objects.filter(active=True, attributes__isnull=True)
                                 .order_by("code").first(), point=MOSCOW, description="Сломана скамейка")
    page.goto("/admin/login/")
    page.fill("#id_username", "admin")
    page.fill("#id_password", DEMO_PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#user-tools")).to_be_visible()
    no_violations(page)

    # The staff workspace: the list, and a ticket with its small map.
    page.goto("/staff/")
    expect(page.locator(f'#tickets tr[data-number="{complaint.pk}"]')).to_have_count(1)
    shots("staff-list")
    no_violations(page)
    page.goto(f"/staff/t/{complaint.pk}/")
    page.wait_for_function("() => document.querySelectorAll('#ticket-map .leaflet-overlay-pane path').length >= 1")
    shots("staff-ticket")
    no_violations(page)

    # The admin: a change list, and a change form whose OpenLayers map widget draws the geometry.
    page.goto("/admin/facilities/facility/")
    expect(page.locator("#result_list")).to_be_visible()
    shots("admin-changelist")
    no_violations(page)
    page.goto(f"/admin/facilities/facility/{facility.pk}/change/")
    page.wait_for_function("() => window.geodjango_geom && window.geodjango_geom.map"
                           " && window.geodjango_geom.featureCollection.getLength() === 1")
    expect(page.locator("#id_geom_map .ol-viewport")).to_be_visible()
    shots("admin-map-widget")
    no_violations(page)

    # The dataset upload page, a dry run and its report page.
    page.goto("/admin/importers/importrun/upload/")
    page.set_input_files("#id_file", str(DATA / "moscow" / "ao.geojson"))
    page.select_option("#id_spec_name", "moscow_okrugs.yaml")
    shots("upload")
    no_violations(page)
    page.click("input[type=submit].default")
    expect(page.locator("form[action$='/commit/']")).to_be_visible()
    shots("upload-report")
    no_violations(page)

    # The API docs: Swagger UI from drf-spectacular-sidecar reads the schema and lists the operations.
    page.goto("/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("geo_ourcity API")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    shots("api-docs")
    no_violations(page)
    assert Complaint.objects.filter(pk=complaint.pk).exists()
