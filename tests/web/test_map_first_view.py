"""The residents' map and the admin's map widget open over the city (issue 12): the extent of its active areas,
whatever city is loaded, unless OURCITY_MAP_BOUNDS sets the box. No city's coordinates are in the code."""
import json
import re

import pytest
from django.contrib.gis.geos import MultiPolygon, Polygon

from facilities.models import AdminArea, AreaLevel
from facilities.widgets import LocalOSMWidget
from web import folium_map

pytestmark = pytest.mark.django_db
FIT = re.compile(r"fitBounds\(\s*(\[\[.*?\]\])", re.S)


@pytest.fixture(autouse=True)
def fresh_map():
    folium_map.rendered_map.cache_clear()
    yield
    folium_map.rendered_map.cache_clear()


def first_view(client):
    """(west, south, east, north) of the page's fitBounds."""
    found = FIT.findall(client.get("/").content.decode())
    assert len(found) == 1
    (south, west), (north, east) = json.loads(found[0])
    return west, south, east, north


def areas_box():
    boxes = [a.geom.extent for a in AdminArea.objects.filter(valid_to__isnull=True)]
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def add_area(west, south, east, north):
    return AdminArea.objects.create(name="Far away", level=AreaLevel.objects.get(code="district"),
                                    geom=MultiPolygon(Polygon.from_bbox((west, south, east, north)), srid=4326))


def test_the_map_opens_over_the_loaded_areas(client):
    assert first_view(client) == pytest.approx(areas_box(), abs=1e-4)
    # at once: an animated fit would end after map.js has applied a shared link's #zoom/lat/lon (tests/browser)
    assert re.search(r'fitBounds\(\s*\[\[.*?\]\],\s*\{\s*"animate": false\s*\}', client.get("/").content.decode(), re.S)


@pytest.mark.parametrize("box", [(24.78, 60.10, 25.25, 60.30), (-122.52, 37.70, -122.35, 37.83),
                                 (151.0, -34.0, 151.3, -33.7)])
def test_the_view_follows_the_areas_data_not_the_code(client, box):
    """Another city's area (Helsinki, San Francisco, Sydney) widens the first view to cover it; retiring every
    area but it makes the view that city's."""
    area = add_area(*box)
    west, south, east, north = first_view(client)
    assert west <= box[0] and south <= box[1] and east >= box[2] and north >= box[3]
    AdminArea.objects.exclude(pk=area.pk).update(valid_to="2026-01-01T00:00Z")
    folium_map.rendered_map.cache_clear()
    assert first_view(client) == pytest.approx(box, abs=1e-4)


def test_the_map_bounds_setting_wins(client, settings):
    settings.MAP_BOUNDS = (24.78, 60.10, 25.25, 60.30)
    assert first_view(client) == pytest.approx(settings.MAP_BOUNDS)


def test_without_areas_the_map_still_renders(client):
    AdminArea.objects.update(valid_to="2026-01-01T00:00Z")
    response = client.get("/")
    assert response.status_code == 200 and not FIT.findall(response.content.decode())


@pytest.mark.parametrize("bounds", [None, (24.78, 60.10, 25.25, 60.30)])
def test_the_admin_map_widget_starts_over_the_city(settings, bounds):
    settings.MAP_BOUNDS = bounds
    box = bounds or areas_box()
    options = LocalOSMWidget(attrs={"geom_type": "MULTIPOLYGON"}).get_context("geom", None, {"id": "id_geom"})[
        "map_options"]
    assert options["default_lon"] == pytest.approx((box[0] + box[2]) / 2, abs=1e-3)
    assert options["default_lat"] == pytest.approx((box[1] + box[3]) / 2, abs=1e-3)
