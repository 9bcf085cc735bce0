// The small map of a staff ticket page: the facility's outline (or the district's) and the complaint's point.
// Drawn from the page's own GeoJSON, so it shows even when no base-map tile can be loaded.
(function () {
  "use strict";
  var element = document.getElementById("ticket-map");
  var source = document.getElementById("ticket-map-data");
  if (!element || !source || !window.L) { return; }
  var data = JSON.parse(source.textContent);
  var map = L.map(element, { scrollWheelZoom: false });
  if (data.tiles) {
    L.tileLayer(data.tiles, { attribution: data.attribution, maxZoom: 19 }).addTo(map);
  }
  var styles = {
    facility: { color: "#1b3a5c", weight: 3, fillOpacity: 0.15 },
    area: { color: "#495057", weight: 2, dashArray: "4 4", fillOpacity: 0.05 }
  };
  var layer = L.geoJSON(data.features, {
    style: function (feature) { return styles[feature.properties.role] || {}; },
    pointToLayer: function (feature, latlng) {
      if (feature.properties.role === "complaint") {
        return L.circleMarker(latlng, { radius: 7, color: "#fff", weight: 2, fillColor: "#e03131", fillOpacity: 1 });
      }
      return L.circleMarker(latlng, { radius: 10, color: "#1b3a5c", weight: 3, fillOpacity: 0.2 });
    },
    onEachFeature: function (feature, shape) {
      if (feature.properties.name) {
        var label = document.createElement("span");
        label.textContent = feature.properties.name;  // a name is data: text, never HTML
        shape.bindTooltip(label);
      }
    }
  }).addTo(map);
  // The point and the nearest part of the facility; the whole facility when there is no such focus.
  map.fitBounds(data.bounds ? L.latLngBounds(data.bounds) : layer.getBounds(), { maxZoom: 18, padding: [24, 24] });
  window.OurCityStaff = { map: map, layer: layer };
})();
