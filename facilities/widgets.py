"""Map widgets for the admin, with OpenLayers served from our own static files."""
from django.contrib.gis.forms import OSMWidget


class LocalOSMWidget(OSMWidget):
    """Django's OSMWidget without the CDN: OpenLayers comes from /static/vendor/ol/ (scripts/static-assets.sh).

    The base map is still OpenStreetMap's tile server: without the internet the tiles do not load and the map is
    blank, but the geometry is drawn (and can be edited) all the same, on its own vector layer.
    """

    # New geometries start over Moscow.
    default_lon = 37.62
    default_lat = 55.75
    default_zoom = 10

    class Media:
        extend = False
        css = {"all": ("vendor/ol/ol.css", "gis/css/ol3.css")}
        js = ("vendor/ol/ol.js", "gis/js/OLMapWidget.js")
