"""The map page: folium's Leaflet map with our static files only, no CDN, no complaint data embedded."""
import re
from urllib.parse import urlsplit

from django.contrib.staticfiles import finders

from web import folium_map

from .conftest import TVERSKAYA

URL = re.compile(r"""(?:https?:)?//[^\s"'<>)\\]+""")


def test_the_map_page_loads_only_our_own_files(client, db, settings):
    html = client.get("/").content.decode()
    assert 'class="folium-map"' in html and "L.vectorGrid.protobuf" in html
    allowed = {urlsplit(settings.TILE_URL).netloc} | {urlsplit(u).netloc for u in URL.findall(settings.TILE_ATTRIBUTION)}
    elsewhere = [u for u in URL.findall(html) if urlsplit(u if u.startswith("http") else "http:" + u).netloc not in allowed]
    assert elsewhere == []
    # Every script and style sheet is one of our static files, and it exists.
    for src in re.findall(r'<(?:script|link)[^>]+(?:src|href)="([^"]+)"', html):
        assert src.startswith(settings.STATIC_URL), src
        assert finders.find(src[len(settings.STATIC_URL):]), f"missing static file {src}"


def test_a_new_folium_resource_without_a_local_copy_fails_loudly():
    import folium
    import pytest

    class Plugin(folium.MacroElement):
        default_js = [("someplugin", "https://cdn.example.org/plugin.js")]
        default_css = []

    with pytest.raises(LookupError):
        folium_map.local_assets(Plugin())


def test_the_tile_url_is_a_setting(client, db, settings):
    settings.TILE_URL = "https://tiles.example.test/{z}/{x}/{y}.png"
    folium_map.rendered_map.cache_clear()
    try:
        assert "https://tiles.example.test/{z}/{x}/{y}.png" in client.get("/").content.decode()
    finally:
        folium_map.rendered_map.cache_clear()


def test_no_complaint_is_embedded_in_the_page(client, report):
    complaint = report(description="уникальная-строка-для-теста")
    html = client.get("/").content.decode()
    assert "уникальная-строка-для-теста" not in html and complaint.tracking_code not in html


def test_district_outlines(client, db):
    response = client.get("/map/districts.geojson", HTTP_ACCEPT_ENCODING="identity")
    assert response.status_code == 200
    doc = response.json()
    assert doc["type"] == "FeatureCollection" and len(doc["features"]) == 146
    assert {f["geometry"]["type"] for f in doc["features"]} <= {"Polygon", "MultiPolygon"}
    assert all(f["properties"]["name"] for f in doc["features"])
    again = client.get("/map/districts.geojson", HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304
    gzipped = client.get("/map/districts.geojson", HTTP_ACCEPT_ENCODING="gzip")
    assert gzipped["Content-Encoding"] == "gzip" and len(gzipped.content) < len(response.content) / 2


def test_the_map_page_speaks_russian_first_and_english_on_request(client, db):
    assert "Сообщить о проблеме" in client.get("/").content.decode()
    client.post("/i18n/setlang/", {"language": "en", "next": "/"})
    html = client.get("/").content.decode()
    assert "Report a problem" in html and '<html lang="en">' in html


def test_what_can_be_reported_at_a_school(client, school):
    facility, lon, lat = school
    data = client.get("/map/point/", {"lon": lon, "lat": lat}).json()
    assert data["inside"] is True and data["district"]
    assert data["facilities"][0]["id"] == facility.id and data["facilities"][0]["covers"] is True
    by_code = {c["code"]: c for c in data["categories"]}
    assert by_code["school-building"]["facility"] == facility.id
    assert by_code["yard-rubbish"]["facility"] is None  # about no facility: offered everywhere
    assert "hospital-access" not in by_code  # no hospital within its radius here


def test_far_from_any_school_no_school_category_is_offered(client, db):
    data = client.get("/map/point/", {"lon": TVERSKAYA[0], "lat": TVERSKAYA[1]}).json()
    codes = {c["code"] for c in data["categories"]}
    assert "yard-rubbish" in codes
    for c in data["categories"]:
        if c["code"].startswith("school-"):
            assert c["facility"] is not None


def test_outside_the_city_and_bad_points(client, db):
    data = client.get("/map/point/", {"lon": 30.3, "lat": 59.9}).json()  # Saint Petersburg
    assert data["inside"] is False and "за пределами города" in data["message"]
    for bad in ({"lon": "x", "lat": "1"}, {"lon": "200", "lat": "1"}, {"lat": "55"}, {"lon": "nan", "lat": "nan"}):
        assert client.get("/map/point/", bad).status_code == 400
