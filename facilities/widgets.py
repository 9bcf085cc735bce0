"""Map widgets for the admin, with OpenLayers served from our own static files and no inline script."""
from django.conf import settings
from django.contrib.gis.forms import OSMWidget


def _openlayers_tile_url(url):
    """A Leaflet-style tile URL template for OpenLayers: {s} subdomains become OpenLayers' {a-c}, no {r}."""
    return url.replace("{s}", "{a-c}").replace("{r}", "")


class LocalOSMWidget(OSMWidget):
    """Django's OSMWidget without the CDN and without an inline script, so the Content-Security-Policy needs no
    exception for it: OpenLayers comes from /static/vendor/ol/ (scripts/static-assets.sh), the widget's options go
    in a JSON data block and facilities/map-widget.js starts the map. The base map is the residents' map's tile
    server (OURCITY_TILE_URL): without the internet the tiles do not load and the map is blank, but the geometry
    is drawn (and can be edited) all the same, on its own vector layer.
    """

    template_name = "facilities/map_widget.html"
    # New geometries start over the city (its areas' extent, or OURCITY_MAP_BOUNDS; get_context), else nowhere.
    default_lon = 0
    default_lat = 0
    default_zoom = 2
    city_zoom = 10

    class Media:
        extend = False
        css = {"all": ("vendor/ol/ol.css", "gis/css/ol3.css")}
        js = ("vendor/ol/ol.js", "gis/js/OLMapWidget.js", "facilities/map-widget.js")

    def get_context(self, name, value, attrs):
        from .selectors import areas_extent

        context = super().get_context(name, value, attrs)
        bounds = settings.MAP_BOUNDS or areas_extent()
        if bounds:
            context.update(default_lon=(bounds[0] + bounds[2]) / 2, default_lat=(bounds[1] + bounds[3]) / 2,
                           default_zoom=self.city_zoom)
        context["map_options"] = {
            "module": context["module"], "id": context["id"], "map_id": f"{context['id']}_map", "name": name,
            "geom_name": context["geom_type"], "map_srid": context["map_srid"],
            "default_lon": context["default_lon"], "default_lat": context["default_lat"],
            "default_zoom": context["default_zoom"],
            "tile_url": _openlayers_tile_url(settings.TILE_URL), "tile_attribution": settings.TILE_ATTRIBUTION,
        }
        context["options_id"] = f"{context['id']}_map_options"
        return context
