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

  // The report is four steps (web/templates/web/_report_form.html): place, category, details and photos,
  // contact; one at a time (on a phone full screen, but the place step, which needs the map). The server checks
  // every field at once; its messages go beside their fields, the first is scrolled into view and focused, and
  // #report-status announces how many there are.
  function setupReport(map, layer) {
    var browse = document.getElementById("browse");
    var panel = document.getElementById("report");
    var layout = document.querySelector(".map-layout");
    var form = document.getElementById("report-form");
    var place = document.getElementById("report-place");
    var result = document.getElementById("report-result");
    var status = document.getElementById("report-status");
    var categorySelect = form.elements.category;
    var facilityChoice = document.getElementById("facility-choice");
    var aboutFacility = document.getElementById("about-facility");
    var attributesBox = document.getElementById("attributes");
    var photoInput = form.elements.photo;
    var steps = Array.prototype.slice.call(form.querySelectorAll(".step"));
    var placeNext = steps[0].querySelector("[data-next]");
    var sourceNote = document.getElementById("place-source");
    var marker = null, options = null, reporting = false, current = 0, placeSource = "";
    // The outlines of the facilities found at the chosen point, so the resident sees what "here" is.
    var outlines = L.geoJSON(null, {interactive: false, style: {color: "#1b3a5c", weight: 2, fillOpacity: 0.15},
                                    pointToLayer: function (f, latlng) { return L.circleMarker(latlng, {radius: 7}); }})
      .addTo(map);
    form.classList.add("stepped");
    steps.forEach(function (step) {
      var title = step.querySelector(".step-title");
      if (title) title.setAttribute("tabindex", "-1");
    });

    function showStep(index, focus) {
      current = Math.max(0, Math.min(index, steps.length - 1));
      steps.forEach(function (step, i) { step.hidden = i !== current; });
      layout.dataset.reportStep = reporting ? steps[current].dataset.step : "";
      if (focus) {
        var title = steps[current].querySelector(".step-title");
        if (title) title.focus({preventScroll: true});
        panel.scrollTop = 0;
      }
    }

    function errorBox(key) {
      return form.querySelector('[data-error-for="' + CSS.escape(key) + '"]') ||
             form.querySelector('[data-error-for="__all__"]');
    }

    // The element a message is about: the named field, the question's group of checkboxes, the place.
    function fieldFor(key) {
      if (key === "location") return null;  // the place is the map: its message is shown, its step's title focused
      var m = /^attribute\[(.+)\]$/.exec(key);
      if (m) return document.getElementById("attr-" + m[1]);
      var named = form.querySelector('[name="' + CSS.escape(key) + '"]');
      return named && named.type !== "hidden" ? named : null;
    }

    function clearErrors() {
      form.querySelectorAll("[data-error-for]").forEach(function (box) { box.textContent = ""; });
      form.querySelectorAll("[aria-invalid]").forEach(function (f) {
        f.removeAttribute("aria-invalid");
        f.classList.remove("is-invalid");
      });
      status.textContent = "";
    }

    function showErrors(errors) {
      var first = null, firstStep = steps.length, count = 0;
      Object.keys(errors).forEach(function (key) {
        var box = errorBox(key);
        box.textContent = [box.textContent].concat(errors[key]).filter(Boolean).join(" ");
        count += errors[key].length;
        var field = fieldFor(key);
        if (field) {
          field.setAttribute("aria-invalid", "true");
          field.classList.add("is-invalid");
        }
        var step = steps.indexOf(box.closest(".step"));
        if (step < 0) step = steps.length - 1;  // a message about the whole form: beside the Send button
        if (step < firstStep) { firstStep = step; first = field || box; }
      });
      if (!count) return;
      showStep(firstStep, false);
      status.textContent = text.errors.replace("%(n)s", count) + " " +
        Object.keys(errors).map(function (k) { return errors[k].join(" "); }).join(" ");
      if (first) {
        first.scrollIntoView({block: "center"});
        var target = first.matches("fieldset") ? first.querySelector("input") : first;
        if (!target || !target.matches("input, select, textarea, button")) {
          target = steps[firstStep].querySelector(".step-title");
        }
        if (target) target.focus({preventScroll: true});
      }
    }

    function start() {
      reporting = true;
      browse.hidden = true;
      panel.hidden = false;
      result.hidden = true;
      form.hidden = false;
      placeNext.disabled = true;
      map.getContainer().classList.add("picking");
      map.closePopup();
      showStep(0, true);
    }

    function stop() {
      reporting = false;
      browse.hidden = false;
      panel.hidden = true;
      form.reset();
      clearErrors();
      place.textContent = "";
      sourceNote.textContent = "";
      placeSource = "";
      attributesBox.textContent = "";
      categorySelect.textContent = "";
      options = null;
      updatePhotoCount();
      map.getContainer().classList.remove("picking");
      removeMarks();
      showStep(0, false);
    }

    function removeMarks() {
      if (marker) { map.removeLayer(marker); marker = null; }
      outlines.clearLayers();
    }

    // Where the chosen point came from, said beside it: "photo" (its EXIF position), or the map, the location, a
    // search ("" says nothing).
    function choosePoint(latlng, source) {
      clearErrors();
      placeSource = source || "";
      sourceNote.textContent = placeSource === "photo" ? text.placeFromPhoto : "";
      placeNext.disabled = true;
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
        if (placeSource === "photo") sourceNote.textContent = "";
        showErrors({location: [placeSource === "photo" ? text.photoOutside : (data.message || data.error)]});
        return;
      }
      place.appendChild(el("div", {"class": "district", text: text.district + ": " + data.district}));
      data.facilities.forEach(function (f) {
        var where = f.covers ? text.inside : text.metresAway.replace("%(m)s", f.distance_m);
        place.appendChild(el("div", {"class": "facility", text: f.type + ": " + f.name + " (" + where + ")"}));
        if (f.geometry) outlines.addData({type: "Feature", geometry: f.geometry, properties: {}});
      });
      var chosen = categorySelect.value;
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
      if (chosen && data.categories.some(function (c) { return c.code === chosen; })) categorySelect.value = chosen;
      placeNext.disabled = false;
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
        var errorId = "err-attr-" + a.code;
        var caption = a.label + (a.required ? " *" : "");
        var label, input;
        if (a.datatype === "multivaluelist") {
          label = null;
          input = el("fieldset", {id: id}, [el("legend", {"class": "form-label", text: caption})].concat(
            a.values.map(function (v) {
              return el("label", {"class": "form-check"}, [
                el("input", {type: "checkbox", "class": "form-check-input", name: name + "[]", value: v.key}),
                document.createTextNode(" " + v.name)]);
            })));
        } else {
          label = el("label", {"class": "form-label", "for": id, text: caption});
          if (a.datatype === "singlevaluelist") {
            input = el("select", {"class": "form-select", name: name, id: id},
                       [el("option", {value: "", text: text.choose})].concat(a.values.map(function (v) {
                         return el("option", {value: v.key, text: v.name});
                       })));
          } else if (a.datatype === "text") {
            input = el("textarea", {"class": "form-control", name: name, id: id, rows: "2"});
          } else {
            var type = {number: "number", datetime: "datetime-local"}[a.datatype] || "text";
            input = el("input", {"class": "form-control", type: type, name: name, id: id});
            if (type === "number") input.setAttribute("step", "any");
          }
        }
        input.setAttribute("aria-describedby", errorId);
        attributesBox.appendChild(el("div", {"class": "mb-2"}, (label ? [label] : []).concat([input,
          el("div", {"class": "field-error", id: errorId, "data-error-for": name})])));
      });
    }

    function updatePhotoCount() {
      var n = photoInput.files ? photoInput.files.length : 0;
      document.getElementById("photo-count").textContent = n ? text.photosChosen.replace("%(n)s", n) : "";
    }

    function next() {
      clearErrors();
      var name = steps[current].dataset.step;
      if (name === "place" && !marker) { showErrors({location: [text.choosePlace]}); return; }
      if (name === "category" && !categorySelect.value) { showErrors({category: [text.chooseCategory]}); return; }
      showStep(current + 1, true);
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
      document.getElementById("result-department").textContent = r.department;
      document.getElementById("result-why").textContent = r.explanation;
      document.getElementById("result-code").textContent = r.tracking_code;
      document.getElementById("result-key").textContent = r.confirmation_key;
      document.getElementById("result-link").setAttribute("href", r.url);
      result.hidden = false;
      reporting = false;
      layout.dataset.reportStep = "result";
      if (marker) { map.removeLayer(marker); marker = null; }  // the complaint itself is drawn now
      map.getContainer().classList.remove("picking");
      tilesVersion = String(Date.now());  // past the tiles' short HTTP cache: the new complaint shows at once
      layer.setUrl(tileUrl());
      status.textContent = text.sent;
    }

    document.getElementById("report-start").addEventListener("click", function (event) {
      event.preventDefault();  // without JavaScript it is a link to the one-page form
      start();
    });
    panel.querySelectorAll(".report-cancel").forEach(function (b) {
      b.addEventListener("click", function () { stop(); layout.dataset.reportStep = ""; });
    });
    form.querySelectorAll("[data-next]").forEach(function (b) { b.addEventListener("click", next); });
    form.querySelectorAll("[data-back]").forEach(function (b) {
      b.addEventListener("click", function () { showStep(current - 1, true); });
    });
    document.getElementById("locate").addEventListener("click", function () {
      if (!navigator.geolocation) { showErrors({location: [text.noLocation]}); return; }
      navigator.geolocation.getCurrentPosition(function (pos) {
        var latlng = L.latLng(pos.coords.latitude, pos.coords.longitude);
        map.setView(latlng, Math.max(map.getZoom(), 17));
        choosePoint(latlng);
      }, function () { showErrors({location: [text.noLocation]}); });
    });
    map.on("click", function (e) { if (reporting && current === 0) choosePoint(e.latlng); });
    categorySelect.addEventListener("change", categoryChanged);
    aboutFacility.addEventListener("change", categoryChanged);
    photoInput.addEventListener("change", updatePhotoCount);
    // A photo may come first: the file chooser of the details step, from the place step. While no place is
    // chosen, the first photo that carries a GPS position (photo-place.js, read here in the browser) chooses it:
    // the map is centred there and the resident may still tap the map to move it.
    document.getElementById("photo-first").addEventListener("click", function () { photoInput.click(); });
    photoInput.addEventListener("change", function () {
      if (!reporting || current !== 0 || marker || !photoInput.files || !photoInput.files.length) return;
      window.OurCityPhotoPlace.fromFiles(photoInput.files).then(function (found) {
        if (!reporting || marker) return;  // the resident chose a place meanwhile: it stays
        if (!found) { sourceNote.textContent = text.photoNoPlace; return; }
        var latlng = L.latLng(found.lat, found.lon);
        map.setView(latlng, Math.max(map.getZoom(), 17));
        choosePoint(latlng, "photo");
      });
    });
    form.addEventListener("submit", submit);
    showStep(0, false);
    return {isReporting: function () { return reporting; }, choosePoint: choosePoint};
  }

  // --- start ----------------------------------------------------------------------------------------------

  // --- clusters: a grid cell's circle shows how many complaints it stands for --------------------------------

  // VectorGrid draws each point of a tile as an SVG circle; a cell (no id, n complaints) gets its count as an SVG
  // text on top, which takes no pointer events (a click still reaches the circle).
  var addPath = L.SVG.Tile.prototype._addPath;
  L.SVG.Tile.prototype._addPath = function (featureLayer) {
    addPath.call(this, featureLayer);
    var p = featureLayer.properties, at = featureLayer._point;
    if (!p || p.id !== undefined || !(p.n > 1) || !at) return;
    var label = L.SVG.create("text");
    label.setAttribute("x", at.x);
    label.setAttribute("y", at.y);
    label.setAttribute("class", "cell-count");
    label.setAttribute("text-anchor", "middle");
    label.setAttribute("dominant-baseline", "central");
    label.textContent = p.n > 999 ? Math.round(p.n / 1000) + "k" : String(p.n);
    this._rootGroup.appendChild(label);
  };

  // --- the district filter moves the map to the district ---------------------------------------------------

  function fitDistrict(map, districts, id) {
    if (!id || !districts) return;
    var found = null;
    districts.eachLayer(function (l) { if (l.feature && String(l.feature.id) === String(id)) found = l; });
    if (found) map.fitBounds(found.getBounds(), {padding: [16, 16]});
  }

  // --- start ----------------------------------------------------------------------------------------------

  function init() {
    var map = window[config.names.map];
    var layer = window[config.names.complaints];
    var districts = window[config.names.districts];
    map.setMinZoom(config.minZoom);
    restoreView(map);
    map.on("moveend", function () { saveView(map); });
    // The map redraws whenever its panel changes size (the report's steps, a phone turned, the window resized):
    // without it Leaflet keeps the old size and leaves part of the panel blank.
    if (window.ResizeObserver) {
      new ResizeObserver(function () { map.invalidateSize({pan: false}); }).observe(map.getContainer());
    }
    var report = setupReport(map, layer);
    layer.on("click", function (e) {
      if (report.isReporting()) return;  // the map's click handler takes the point
      var p = e.layer.properties;
      if (p.id !== undefined) showComplaint(map, p.id, e.latlng);
      else showCell(map, p, e.latlng);
    });
    // A popup lists the other complaints at the same spot: each opens in the popup.
    map.on("popupopen", function (e) {
      var node = e.popup.getElement();
      if (!node) return;
      node.querySelectorAll("[data-complaint]").forEach(function (b) {
        b.addEventListener("click", function () { showComplaint(map, b.dataset.complaint, e.popup.getLatLng()); });
      });
    });
    filters.addEventListener("change", function (e) {
      if (e.target.name === "group") syncCategories();
      if (e.target.name === "district") fitDistrict(map, districts, e.target.value);
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
