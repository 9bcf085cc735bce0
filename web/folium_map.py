"""The residents' map as folium builds it: Leaflet, the base layer, district boundaries and complaint tiles.

Every script and style sheet folium would take from a CDN is one of our static files (installed from the npm
registry by scripts/static-assets.sh); `local_assets` fails loudly for a resource it does not know, so a new
plugin can not bring a CDN back unnoticed. The map's behaviour (filters, legend, popups, the report form) is
web/static/web/map.js; this module only lays out the Leaflet objects it works with.
"""
import functools
import re

import folium
from django.conf import settings
from django.templatetags.static import static
from folium.plugins import VectorGridProtobuf
from folium.template import Template

from . import tiles

# Without a box for the first view (no areas loaded, OURCITY_MAP_BOUNDS unset): the map opens at its lowest zoom.
NOWHERE = (0.0, 0.0)

# folium resource name -> our static file. Only what the map uses: no folium.Icon, so no icon fonts.
VENDOR = {
    "leaflet": "vendor/leaflet/leaflet.js",
    "jquery": "vendor/jquery/jquery.min.js",
    "leaflet_css": "vendor/leaflet/leaflet.css",
    "bootstrap_css": "vendor/bootstrap/bootstrap.min.css",
    "vectorGrid": "vendor/vectorgrid/Leaflet.VectorGrid.bundled.min.js",
}
UNUSED = {"bootstrap", "awesome_markers", "glyphicons_css", "awesome_markers_font_css", "awesome_markers_css",
          "awesome_rotate_css"}


def local_assets(element):
    """Point an element's default_js/default_css at our static files (dropping those the map does not use)."""
    for attr in ("default_js", "default_css"):
        pairs = []
        for name, _url in getattr(element, attr):
            if name in UNUSED:
                continue
            if name not in VENDOR:
                raise LookupError(f"folium resource {name!r} has no local copy: add it to web.folium_map.VENDOR")
            pairs.append((name, static(VENDOR[name])))
        setattr(element, attr, pairs)
    return element


class RemoteGeoJson(folium.map.Layer):
    """A GeoJSON layer fetched after the page has loaded (folium's own GeoJson(embed=False) blocks the page
    with a synchronous request), drawn without interaction so it never hides what lies below it."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = L.geoJson(null, {{ this.options|tojavascript }});
        fetch({{ this.url|tojson }}).then(function (r) { return r.json(); })
            .then(function (data) { {{ this.get_name() }}.addData(data); });
        {% endmacro %}
    """)

    def __init__(self, url, *, name, style, pane=None):
        super().__init__(name=name, overlay=True, control=False, show=True)
        self._name = "RemoteGeoJson"
        self.url = url
        self.options = {"style": style, "interactive": False, **({"pane": pane} if pane else {})}


def build_map(*, tiles_url, districts_url, tile_url=None, attribution=None, bounds=None):
    """A folium.Map with its layers, opening over `bounds` ((west, south, east, north) in degrees: the city's);
    the JS names of the objects map.js needs are in `map.js_names`."""
    center = ((bounds[1] + bounds[3]) / 2, (bounds[0] + bounds[2]) / 2) if bounds else NOWHERE
    m = folium.Map(location=center, zoom_start=tiles.MIN_ZOOM, min_zoom=tiles.MIN_ZOOM, max_zoom=19, tiles=None,
                   control_scale=True, prefer_canvas=False)
    if bounds:
        fit = folium.map.FitBounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]])
        # At once, not animated: an animation would end after map.js has set the view a shared link asks for.
        fit.options["animate"] = False
        m.add_child(fit)
    m._id = "city"
    local_assets(m)
    folium.TileLayer(tile_url or settings.TILE_URL, attr=attribution or settings.TILE_ATTRIBUTION, name="base",
                     max_zoom=19, control=False).add_to(m)
    districts = RemoteGeoJson(districts_url, name="districts", style={
        "color": "#495057", "weight": 1.2, "opacity": 0.8, "fill": True, "fillColor": "#adb5bd",
        "fillOpacity": 0.06})
    districts._id = "districts"
    districts.add_to(m)
    # Complaints above the district outlines (overlayPane is 400), below popups.
    folium.map.CustomPane("complaints", z_index=450, pointer_events=True).add_to(m)
    vector = VectorGridProtobuf(tiles_url, name="complaints", overlay=True, control=False, options=(
        "{pane: 'complaints', interactive: true, maxNativeZoom: 18,"
        " vectorTileLayerStyles: {complaints: OurCity.complaintStyle}}"))
    vector._id = "complaints"
    local_assets(vector)
    vector.add_to(m)
    m.js_names = {"map": m.get_name(), "complaints": vector.get_name(), "districts": districts.get_name()}
    return m


# Process-local memo, fine on many app servers: the result depends on its arguments and this code only (nothing
# from the database), so it never changes while the process lives.
@functools.lru_cache(maxsize=8)
def rendered_map(tiles_url, districts_url, tile_url, attribution, bounds=None):
    """The map's three pieces for a page template: (header, html, script, js_names).

    The same for every request with the same settings (no per-user or per-language content), so rendered once
    per process.
    """
    m = build_map(tiles_url=tiles_url, districts_url=districts_url, tile_url=tile_url, attribution=attribution,
                  bounds=bounds)
    figure = m.get_root()
    figure.render()
    header = _VIEWPORT.sub(VIEWPORT, figure.header.render())
    return header, figure.html.render(), figure.script.render(), m.js_names


# folium's page head forbids zooming the page (maximum-scale=1.0, user-scalable=no): people who need to pinch to
# read must be able to (WCAG 1.4.4). Ours lets them.
VIEWPORT = '<meta name="viewport" content="width=device-width, initial-scale=1">'
_VIEWPORT = re.compile(r'<meta name="viewport"[^>]*>', re.S)


_INLINE_TAG = re.compile(r"<(script|style)>")


def with_nonce(fragment, nonce):
    """folium's inline <script> and <style> elements with the response's Content-Security-Policy nonce, the only
    way they may run (folium writes them without attributes; those with a src are our static files)."""
    return _INLINE_TAG.sub(lambda m: f'<{m[1]} nonce="{nonce}">', fragment)
