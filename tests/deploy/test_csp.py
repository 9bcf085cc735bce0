"""The Content-Security-Policy header on every kind of response, and HTML pages that keep within it.

Every response (HTML pages, fragments, Open311 JSON and XML with its errors, map tiles, GeoJSON, photos, CSV, the
API schema and the Swagger UI's script) carries the one policy. Every HTML page has no inline event handler, no
style attribute, no `javascript:` URL and nothing from another origin, and each of its inline scripts and style
elements carries that response's nonce. tests/browser/test_csp.py proves the same in Chromium.
"""
import io
import re
from html.parser import HTMLParser

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from complaints.services import complaint_create
from facilities.models import Facility
from geo_ourcity.env import csp_source_of
from open311.keys import api_key_issue
from routing.models import Category

TVERSKAYA = (37.6056, 55.7655)


def policy_of(response):
    """{directive: [sources]} of a response's Content-Security-Policy header."""
    header = response.get("Content-Security-Policy")
    assert header, f"{response.status_code} {response.get('Content-Type')}: no Content-Security-Policy"
    policy = {}
    for part in header.split(";"):
        name, *sources = part.split()
        policy[name] = sources
    return policy


def nonce_of(policy):
    nonces = {s for s in policy.get("script-src", []) if s.startswith("'nonce-")}
    return nonces.pop()[len("'nonce-"):-1] if nonces else None


@pytest.fixture
def site(db):
    """A complaint with a photo, an API key, a facility with a map widget, a superuser's client."""
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), "gray").save(buffer, format="PNG")
    complaint = complaint_create(category=Category.objects.get(code="yard-rubbish"), point=TVERSKAYA,
                                 description="Мусор во дворе",
                                 photos=[SimpleUploadedFile("p.png", buffer.getvalue(), content_type="image/png")])
    _key, raw_key = api_key_issue(name="t-deploy-csp")
    admin = get_user_model().objects.create_user(username="t-deploy-admin", is_staff=True, is_superuser=True)
    facility = Facility.objects.filter(valid_to__isnull=True).order_by("pk").first()
    return {"complaint": complaint, "photo": complaint.photos.get(), "key": raw_key, "admin": admin,
            "facility": facility}


# (name, anonymous?, request) for every kind of response; `s` is the `site` fixture's dict.
REQUESTS = [
    ("map page", True, lambda c, s: c.get("/")),
    ("complaint page", True, lambda c, s: c.get(f"/c/{s['complaint'].tracking_code}/")),
    ("statistics", True, lambda c, s: c.get("/stats/")),
    ("popup fragment", True, lambda c, s: c.get(f"/map/complaints/{s['complaint'].pk}/")),
    ("point JSON", True, lambda c, s: c.get("/map/point/", {"lon": TVERSKAYA[0], "lat": TVERSKAYA[1]})),
    ("report error JSON", True, lambda c, s: c.post("/report/", {})),
    ("vector tile", True, lambda c, s: c.get("/tiles/complaints/15/19808/10243.mvt")),
    ("districts GeoJSON", True, lambda c, s: c.get("/map/districts.geojson")),
    ("photo", True, lambda c, s: c.get(f"/photos/{s['photo'].pk}/")),
    ("web 404", True, lambda c, s: c.get("/c/NO-SUCH-CODE/")),
    ("Open311 discovery XML", True, lambda c, s: c.get("/open311/v2/discovery.xml")),
    ("Open311 services JSON", True, lambda c, s: c.get("/open311/v2/services.json")),
    ("Open311 requests XML", True, lambda c, s: c.get("/open311/v2/requests.xml")),
    ("Open311 error JSON", True, lambda c, s: c.post("/open311/v2/requests.json", {"api_key": s["key"]})),
    ("Open311 error XML", True, lambda c, s: c.get("/open311/v2/requests/999999999.xml")),
    ("Open311 unknown path", True, lambda c, s: c.get("/open311/v2/nothing/here")),
    ("API schema", True, lambda c, s: c.get("/api/schema/")),
    ("API docs", True, lambda c, s: c.get("/api/docs/")),
    ("API docs script", True, lambda c, s: c.get("/api/docs/", {"script": ""})),
    ("staff login", True, lambda c, s: c.get("/staff/login/")),
    ("admin login", True, lambda c, s: c.get("/admin/login/")),
    ("login redirect", True, lambda c, s: c.get("/staff/")),
    ("staff list", False, lambda c, s: c.get("/staff/")),
    ("staff ticket", False, lambda c, s: c.get(f"/staff/t/{s['complaint'].pk}/")),
    ("staff CSV", False, lambda c, s: c.get("/staff/tickets.csv")),
    ("admin index", False, lambda c, s: c.get("/admin/")),
    ("admin change list", False, lambda c, s: c.get("/admin/facilities/facility/")),
    ("admin map widget", False, lambda c, s: c.get(f"/admin/facilities/facility/{s['facility'].pk}/change/")),
    ("admin area add form", False, lambda c, s: c.get("/admin/facilities/adminarea/add/")),
    ("upload page", False, lambda c, s: c.get("/admin/importers/importrun/upload/")),
]


def fetch(client, site, anonymous, make):
    if not anonymous:
        client.force_login(site["admin"])
    response = make(client, site)
    assert response.status_code < 500, response.status_code
    return response


@pytest.mark.parametrize("name, anonymous, make", REQUESTS, ids=[r[0] for r in REQUESTS])
def test_every_response_carries_the_policy(client, site, name, anonymous, make):
    policy = policy_of(fetch(client, site, anonymous, make))
    assert policy["default-src"] == ["'self'"]
    for directive in ("script-src", "style-src"):
        assert [s for s in policy[directive] if not s.startswith("'nonce-")] == ["'self'"], policy
    assert policy["img-src"] == ["'self'", "data:", csp_source_of(settings.TILE_URL)]
    assert policy["connect-src"] == ["'self'"]
    assert policy["object-src"] == policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == policy["form-action"] == ["'self'"]


class Inline(HTMLParser):
    """What in a page would need an exception from the policy."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.scripts, self.styles, self.problems, self.loads = [], [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name, value in attrs.items():
            if name.startswith("on"):
                self.problems.append(f"<{tag} {name}=...>: an inline event handler")
            elif name == "style":
                self.problems.append(f"<{tag} style={value!r}>: a style attribute")
            elif name in ("href", "src", "action", "formaction") and (value or "").strip().lower().startswith(
                    "javascript:"):
                self.problems.append(f"<{tag} {name}={value!r}>: a javascript: URL")
        if tag == "script" and attrs.get("type") != "application/json":
            if attrs.get("src"):
                self.loads.append(attrs["src"])
            else:
                self.scripts.append(attrs.get("nonce"))
        elif tag == "style":
            self.styles.append(attrs.get("nonce"))
        elif tag == "link" and attrs.get("rel") in ("stylesheet", "icon", "preload", "modulepreload"):
            self.loads.append(attrs.get("href", ""))
        elif tag in ("img", "iframe", "embed", "object", "source") and attrs.get("src"):
            self.loads.append(attrs["src"])


HTML_PAGES = [r for r in REQUESTS if r[0] in {
    "map page", "complaint page", "statistics", "popup fragment", "web 404", "API docs", "staff login",
    "admin login", "staff list", "staff ticket", "admin index", "admin change list", "admin map widget",
    "admin area add form", "upload page"}]


@pytest.mark.parametrize("name, anonymous, make", HTML_PAGES, ids=[r[0] for r in HTML_PAGES])
def test_html_pages_keep_within_the_policy(client, site, name, anonymous, make):
    response = fetch(client, site, anonymous, make)
    assert response["Content-Type"].startswith("text/html")
    nonce = nonce_of(policy_of(response))
    page = Inline()
    page.feed(response.content.decode())
    assert page.problems == []
    assert all(n == nonce for n in page.scripts + page.styles), (nonce, page.scripts, page.styles)
    outside = [u for u in page.loads if not (u.startswith("/") and not u.startswith("//")) and
               not u.startswith("data:")]
    assert outside == [], "loads from another origin"


def test_each_response_has_a_nonce_of_its_own(client, site):
    first, second = client.get("/"), client.get("/")
    nonces = [nonce_of(policy_of(r)) for r in (first, second)]
    assert None not in nonces and nonces[0] != nonces[1]
    for response, nonce in zip((first, second), nonces):
        assert re.findall(r'<script nonce="([^"]+)">', response.content.decode()) == [nonce] * 2  # folium's two


@pytest.mark.parametrize("tile_url, source", [
    ("https://tile.openstreetmap.org/{z}/{x}/{y}.png", "https://tile.openstreetmap.org"),
    ("https://{s}.tile.example.org/{z}/{x}/{y}.png", "https://*.tile.example.org"),
    ("http://tiles.example.org:8080/osm/{z}/{x}/{y}.png?key=1", "http://tiles.example.org:8080"),
    ("/tiles/base/{z}/{x}/{y}.png", None),  # the site's own: 'self' covers it
    ("https://{z}.example.org/{x}/{y}.png", None),  # no fixed origin: nothing is let in for it
])
def test_the_tile_servers_origin_is_the_only_other_image_source(tile_url, source):
    assert csp_source_of(tile_url) == source
