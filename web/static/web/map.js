/* The residents' map: filters and legend, popups, and the "Report a problem" form.
 *
 * folium (web/folium_map.py) creates the Leaflet map, the base layer, the district outlines and the complaint
 * vector tiles; their JavaScript names, our URLs and texts come in #map-config. Every text from the server
 * goes in with textContent (or is HTML the server escaped), never as markup of our making.
 */
(function () {
  "use strict";

  var config = JSON.parse(document.getElementById("map-config").textContent);
  var text = config.text;
  var colours = {};
  config.states.forEach(function (s) { colours[s.code] = s.colour; });

  // --- drawing --------------------------------------------------------------------------------------------

  // Leaflet takes a small circle for a marker and asks it for its latlng on every mouse event over it;
  // VectorGrid's point symbols are circles drawn on a tile, with no latlng (Leaflet 1.9 then fails). They
  // answer with the position of their pixel on their tile.
  var circleLatLng = L.CircleMarker.prototype.getLatLng;
  L.CircleMarker.prototype.getLatLng = function () {
    var tile = this._renderer;
    if (this._latlng || !this._point || !tile || !tile._tileCoord || !tile._map) return circleLatLng.call(this);
    var c = tile._tileCoord, size = tile._size;
    return tile._map.unproject(L.point(c.x * size.x + this._point.x, c.y * size.y + this._point.y), c.z);
  };

  function dominantState(p) {
    var best = null, most = -1;
    config.states.forEach(function (s) {
      var n = p[s.code] || 0;
      if (n > most) { most = n; best = s.code; }
    });
    return best;
  }

  // VectorGrid style of a feature of the "complaints" layer: one complaint (it has an id) or a grid cell.
  function complaintStyle(p) {
    if (p.id !== undefined) {
      return {radius: 6, weight: 1.5, color: "#fff", opacity: 1, fill: true,
              fillColor: colours[p.state] || "#000", fillOpacity: 0.95};
    }
    var radius = Math.min(15, 4 + 1.6 * Math.log2(1 + p.n));
    return {radius: radius, weight: 1, color: "#fff", opacity: 1, fill: true,
            fillColor: colours[dominantState(p)] || "#000", fillOpacity: 0.8};
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k];
      else if (k === "class") node.className = attrs[k];
      else node.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { node.appendChild(c); });
    return node;
  }

  // --- filters --------------------------------------------------------------------------------------------

  var filters = document.getElementById("filters");
  var tilesVersion = "";

  function tileUrl() {
    var params = new URLSearchParams();
    var data = new FormData(filters);
    ["group", "category", "district"].forEach(function (name) {
      if (data.get(name)) params.set(name, data.get(name));
    });
    var states = data.getAll("state");
    if (states.length !== config.states.length) {
      states.forEach(function (s) { params.append("state", s); });
      if (!states.length) params.append("state", "none");
    }
    if (tilesVersion) params.set("v", tilesVersion);
    var query = params.toString();
    return config.urls.tiles + (query ? "?" + query : "");
  }

  // Choosing a group narrows the category list to it.
  function syncCategories() {
    var group = filters.elements.group.value;
    var select = filters.elements.category;
    Array.prototype.forEach.call(select.querySelectorAll("optgroup"), function (g) {
      g.hidden = Boolean(group) && g.dataset.group !== group;
      g.disabled = g.hidden;
    });
    var chosen = select.selectedOptions[0];
    if (chosen && chosen.parentNode.disabled) select.value = "";
  }

  // --- the map view in the address (#zoom/lat/lon), so a view can be shared and reloaded ------------------

  function restoreView(map) {
    var m = /^#(\d+)\/(-?[\d.]+)\/(-?[\d.]+)$/.exec(location.hash);
    if (m) map.setView([parseFloat(m[2]), parseFloat(m[3])], parseInt(m[1], 10), {animate: false});
  }

  function saveView(map) {
    var c = map.getCenter();
    history.replaceState(null, "", "#" + map.getZoom() + "/" + c.lat.toFixed(5) + "/" + c.lng.toFixed(5));
  }

  // --- popups ---------------------------------------------------------------------------------------------

  function showComplaint(map, id, latlng) {
    fetch(config.urls.popup.replace("{pk}", id), {credentials: "same-origin"})
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
      .then(function (html) {  // HTML rendered by Django with autoescaping: user text arrives escaped
        L.popup({maxWidth: 320}).setLatLng(latlng).setContent(html).openOn(map);
      })
      .catch(function () { L.popup().setLatLng(latlng).setContent(el("div", {text: text.loadFailed})).openOn(map); });
  }

  function showCell(map, p, latlng) {
    var list = el("ul", {"class": "cell-counts"});
    config.states.forEach(function (s) {
      if (p[s.code]) {
        var swatch = el("span", {"class": "swatch"});
        swatch.style.background = s.colour;  // through the CSSOM: the Content-Security-Policy allows no style attribute
        list.appendChild(el("li", {}, [swatch, document.createTextNode(s.label + ": " + p[s.code])]));
      }
    });
    var zoom = el("button", {type: "button", "class": "btn btn-sm btn-outline-primary", text: text.zoomIn});
    zoom.addEventListener("click", function () {
      map.closePopup();
      map.setView(latlng, Math.min(map.getZoom() + 2, config.rawMinZoom));
    });
    var body = el("div", {"class": "cell-popup"}, [el("strong", {text: text.complaintsHere + ": " + p.n}), list, zoom]);
    L.popup().setLatLng(latlng).setContent(body).openOn(map);
  }

  // --- reporting ------------------------------------------------------------------------------------------

  function setupReport(map, layer) {
    var browse = document.getElementById("browse");
    var panel = document.getElementById("report");
    var form = document.getElementById("report-form");
    var place = document.getElementById("report-place");
    var result = document.getElementById("report-result");
    var categorySelect = form.elements.category;
    var facilityChoice = document.getElementById("facility-choice");
    var aboutFacility = document.getElementById("about-facility");
    var attributesBox = document.getElementById("attributes");
    var marker = null, options = null, reporting = false;
    // The outlines of the facilities found at the chosen point, so the resident sees what "here" is.
    var outlines = L.geoJSON(null, {interactive: false, style: {color: "#1b3a5c", weight: 2, fillOpacity: 0.15},
                                    pointToLayer: function (f, latlng) { return L.circleMarker(latlng, {radius: 7}); }})
      .addTo(map);

    function errorBox(key) {
      return panel.querySelector('[data-error-for="' + CSS.escape(key) + '"]') ||
             panel.querySelector('[data-error-for="__all__"]');
    }

    function clearErrors() {
      panel.querySelectorAll("[data-error-for]").forEach(function (box) { box.textContent = ""; });
      form.querySelectorAll(".is-invalid").forEach(function (f) { f.classList.remove("is-invalid"); });
    }

    function showErrors(errors) {
      Object.keys(errors).forEach(function (key) {
        var box = errorBox(key);
        box.textContent = [box.textContent].concat(errors[key]).filter(Boolean).join(" ");
        var field = form.querySelector('[name="' + CSS.escape(key) + '"]');
        if (field) field.classList.add("is-invalid");
      });
    }

    function start() {
      reporting = true;
      browse.hidden = true;
      panel.hidden = false;
      result.hidden = true;
      map.getContainer().classList.add("picking");
      map.closePopup();
    }

    function stop() {
      reporting = false;
      browse.hidden = false;
      panel.hidden = true;
      form.hidden = true;
      form.reset();
      clearErrors();
      place.textContent = "";
      attributesBox.textContent = "";
      map.getContainer().classList.remove("picking");
      removeMarks();
    }

    function removeMarks() {
      if (marker) { map.removeLayer(marker); marker = null; }
      outlines.clearLayers();
    }

    function choosePoint(latlng) {
      clearErrors();
      if (marker) marker.setLatLng(latlng);
      else marker = L.circleMarker(latlng, {radius: 9, weight: 3, color: "#212529", fillColor: "#fff",
                                            fillOpacity: 1, pane: "complaints"}).addTo(map);
      form.elements.lat.value = latlng.lat.toFixed(7);
      form.elements.lon.value = latlng.lng.toFixed(7);
      // The report's point changed: nearby.js lists the open complaints there.
      document.dispatchEvent(new CustomEvent("ourcity:point", {detail: {lat: latlng.lat, lon: latlng.lng}}));
      place.textContent = text.loading;
      var url = config.urls.point + "?" + new URLSearchParams({lon: latlng.lng, lat: latlng.lat});
      fetch(url, {credentials: "same-origin"})
        .then(function (r) { return r.json(); })
        .then(showOptions)
        .catch(function () { place.textContent = ""; showErrors({location: [text.loadFailed]}); });
    }

    function showOptions(data) {
      options = data;
      place.textContent = "";
      outlines.clearLayers();
      if (!data.inside) {
        form.hidden = true;
        showErrors({location: [data.message || data.error]});
        return;
      }
      place.appendChild(el("div", {"class": "district", text: text.district + ": " + data.district}));
      data.facilities.forEach(function (f) {
        var where = f.covers ? text.inside : text.metresAway.replace("%(m)s", f.distance_m);
        place.appendChild(el("div", {"class": "facility", text: f.type + ": " + f.name + " (" + where + ")"}));
        if (f.geometry) outlines.addData({type: "Feature", geometry: f.geometry, properties: {}});
      });
      categorySelect.textContent = "";
      categorySelect.appendChild(el("option", {value: "", text: text.choose}));
      var groups = {};
      data.categories.forEach(function (c) {
        var key = c.group;
        if (!groups[key]) {
          groups[key] = el("optgroup", {label: c.group});
          categorySelect.appendChild(groups[key]);
        }
        groups[key].appendChild(el("option", {value: c.code, text: c.name}));
      });
      form.hidden = false;
      categoryChanged();
    }

    function facilityById(id) {
      return (options.facilities || []).filter(function (f) { return f.id === id; })[0];
    }

    function categoryChanged() {
      var code = categorySelect.value;
      var category = (options && options.categories || []).filter(function (c) { return c.code === code; })[0];
      var facility = category && category.facility ? facilityById(category.facility) : null;
      facilityChoice.hidden = !facility;
      form.elements.facility.value = facility && aboutFacility.checked ? facility.id : "";
      if (facility) {
        document.getElementById("facility-label").textContent = text.aboutFacility + " " + facility.name;
      }
      renderAttributes(category ? category.attributes : []);
    }

    function renderAttributes(attributes) {
      attributesBox.textContent = "";
      attributes.forEach(function (a) {
        var name = "attribute[" + a.code + "]";
        var id = "attr-" + a.code;
        var label = el("label", {"class": "form-label", "for": id, text: a.label + (a.required ? " *" : "")});
        var input;
        if (a.datatype === "singlevaluelist") {
          input = el("select", {"class": "form-select", name: name, id: id},
                     [el("option", {value: "", text: text.choose})].concat(a.values.map(function (v) {
                       return el("option", {value: v.key, text: v.name});
                     })));
        } else if (a.datatype === "multivaluelist") {
          input = el("div", {id: id}, a.values.map(function (v) {
            return el("label", {"class": "form-check"}, [
              el("input", {type: "checkbox", "class": "form-check-input", name: name + "[]", value: v.key}),
              document.createTextNode(" " + v.name)]);
          }));
        } else if (a.datatype === "text") {
          input = el("textarea", {"class": "form-control", name: name, id: id, rows: "2"});
        } else {
          var type = {number: "number", datetime: "datetime-local"}[a.datatype] || "text";
          input = el("input", {"class": "form-control", type: type, name: name, id: id});
          if (type === "number") input.setAttribute("step", "any");
        }
        attributesBox.appendChild(el("div", {"class": "mb-2"}, [label, input,
          el("div", {"class": "field-error", "data-error-for": name})]));
      });
    }

    function submit(event) {
      event.preventDefault();
      clearErrors();
      var button = document.getElementById("report-submit");
      button.disabled = true;
      fetch(form.action, {method: "POST", body: new FormData(form), credentials: "same-origin",
                          headers: {Accept: "application/json"}})
        .then(function (r) {
          return r.json().then(function (body) { return {ok: r.ok, body: body}; },
                               function () { return {ok: false, body: {errors: {__all__: [text.failed]}}}; });
        })
        .then(function (answer) {
          if (answer.ok) showResult(answer.body);
          else showErrors(answer.body.errors || {__all__: [text.failed]});
        })
        .catch(function () { showErrors({__all__: [text.failed]}); })
        .then(function () { button.disabled = false; });
    }

    function showResult(r) {
      form.hidden = true;
      document.getElementById("report-hint").hidden = true;
      document.getElementById("result-department").textContent = r.department;
      document.getElementById("result-why").textContent = r.explanation;
      document.getElementById("result-code").textContent = r.tracking_code;
      document.getElementById("result-key").textContent = r.confirmation_key;
      document.getElementById("result-link").setAttribute("href", r.url);
      result.hidden = false;
      reporting = false;
      if (marker) { map.removeLayer(marker); marker = null; }  // the complaint itself is drawn now
      map.getContainer().classList.remove("picking");
      tilesVersion = String(Date.now());  // past the tiles' short HTTP cache: the new complaint shows at once
      layer.setUrl(tileUrl());
    }

    document.getElementById("report-start").addEventListener("click", function () {
      start();
      document.getElementById("report-hint").hidden = false;
    });
    panel.querySelectorAll(".report-cancel").forEach(function (b) { b.addEventListener("click", stop); });
    document.getElementById("locate").addEventListener("click", function () {
      if (!navigator.geolocation) { showErrors({location: [text.noLocation]}); return; }
      navigator.geolocation.getCurrentPosition(function (pos) {
        var latlng = L.latLng(pos.coords.latitude, pos.coords.longitude);
        map.setView(latlng, Math.max(map.getZoom(), 17));
        choosePoint(latlng);
      }, function () { showErrors({location: [text.noLocation]}); });
    });
    map.on("click", function (e) { if (reporting) choosePoint(e.latlng); });
    categorySelect.addEventListener("change", categoryChanged);
    aboutFacility.addEventListener("change", categoryChanged);
    form.addEventListener("submit", submit);
    return {isReporting: function () { return reporting; }, choosePoint: choosePoint};
  }

  // --- start ----------------------------------------------------------------------------------------------

  function init() {
    var map = window[config.names.map];
    var layer = window[config.names.complaints];
    map.setMinZoom(config.minZoom);
    restoreView(map);
    map.on("moveend", function () { saveView(map); });
    var report = setupReport(map, layer);
    layer.on("click", function (e) {
      if (report.isReporting()) return;  // the map's click handler takes the point
      var p = e.layer.properties;
      if (p.id !== undefined) showComplaint(map, p.id, e.latlng);
      else showCell(map, p, e.latlng);
    });
    filters.addEventListener("change", function (e) {
      if (e.target.name === "group") syncCategories();
      layer.setUrl(tileUrl());
    });
    window.OurCity.map = map;
    window.OurCity.complaints = layer;
    window.OurCity.report = report;  // place-search.js: a found place is the report's point while reporting
    document.dispatchEvent(new CustomEvent("ourcity:ready"));
  }

  window.OurCity = {complaintStyle: complaintStyle, init: init};
  // folium's script (after this file, web/map.html) makes the map with OurCity.complaintStyle; once the page is
  // parsed, both have run.
  document.addEventListener("DOMContentLoaded", init);
}());
