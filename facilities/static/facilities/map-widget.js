/* Starts the admin's map widgets (facilities.widgets.LocalOSMWidget) from their JSON options, after
 * OpenLayers and Django's OLMapWidget.js: what Django's widget template does in an inline script. */
(function () {
  "use strict";

  function start() {
    document.querySelectorAll(".dj_map_wrapper > script[type='application/json']").forEach(function (data) {
      var options = JSON.parse(data.textContent);
      options.base_layer = new ol.layer.Tile({
        source: new ol.source.XYZ({url: options.tile_url, attributions: options.tile_attribution, maxZoom: 19})
      });
      window[options.module] = new MapWidget(options);
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
}());
