/* The open complaints near a point (web/templates/web/_nearby.html over GET /api/v1/nearby), as a list beside the
 * map that a keyboard reaches and a screen reader hears (a live status line, an ordered list of links).
 *   "browse": near the map's centre once it is zoomed in far enough (or the place just found);
 *   "report": near the report's point, of the chosen category's group, the description as the tie-break, each
 *             with "this is it: follow it instead" (the complaint's public page at #follow).
 * Every text goes in with textContent.
 */
(function () {
  "use strict";

  var BROWSE_MIN_ZOOM = 15;

  function setup(box) {
    var list = box.querySelector(".nearby-list");
    var status = box.querySelector(".nearby-status");
    var report = document.getElementById("report-form");
    var point = null, asked = 0, timer = null;

    function pageUrl(id) {
      return box.dataset.page.replace("900001", encodeURIComponent(id));
    }

    function show(found) {
      // Drawn again only when what it lists changed (the map moves often), and a keyboard user inside the list
      // keeps their place: the same complaint's link (or button) takes the focus back.
      var drawn = JSON.stringify(found.map(function (c) { return [c.service_request_id, c.distance_m]; }));
      if (drawn === list.dataset.drawn && !box.hidden) return;
      var had = list.contains(document.activeElement) ? document.activeElement : null;
      var hadId = had && had.closest(".nearby-item") && had.closest(".nearby-item").dataset.id;
      var hadFollow = had && had.classList.contains("nearby-follow");
      list.dataset.drawn = drawn;
      list.textContent = "";
      found.forEach(function (c) {
        var li = document.createElement("li");
        li.className = "nearby-item";
        li.dataset.id = c.service_request_id;
        var link = document.createElement("a");
        link.href = pageUrl(c.service_request_id) + (box.dataset.mode === "report" ? "#follow" : "");
        link.textContent = "№ " + c.service_request_id + " · " + c.service_name;
        link.setAttribute("aria-label", box.dataset.open.replace("%(n)s", c.service_request_id) + ": " + c.service_name);
        li.appendChild(link);
        li.appendChild(Object.assign(document.createElement("span"), {className: "nearby-distance small",
          textContent: " · " + box.dataset.metres.replace("%(m)s", c.distance_m)}));
        if (c.description) {
          li.appendChild(Object.assign(document.createElement("span"), {className: "nearby-desc small d-block",
                                                                        textContent: c.description.slice(0, 140)}));
        }
        if (box.dataset.mode === "report") {
          var follow = document.createElement("a");
          follow.className = "btn btn-sm btn-outline-primary nearby-follow";
          follow.href = pageUrl(c.service_request_id) + "#follow";
          follow.dataset.id = c.service_request_id;
          follow.textContent = box.dataset.follow;
          li.appendChild(follow);
        }
        list.appendChild(li);
      });
      status.textContent = found.length ? "" : box.dataset.none;
      box.hidden = false;
      if (hadId) {
        var back = list.querySelector('.nearby-item[data-id="' + CSS.escape(hadId) + '"] ' +
                                      (hadFollow ? ".nearby-follow" : "a"));
        if (back) back.focus();
      }
    }

    function clear() {
      list.textContent = "";
      delete list.dataset.drawn;
    }

    function ask() {
      if (!point) return;
      var params = {lat: point.lat.toFixed(7), "long": point.lon.toFixed(7)};
      if (box.dataset.mode === "report") {
        var code = report && report.elements.category.value;
        if (!code) { box.hidden = true; return; }  // the group comes with the category
        params.service_code = code;
        var text = report.elements.description.value.trim();
        if (text) params.description = text.slice(0, 1000);
      }
      var mine = ++asked;
      fetch(box.dataset.url + "?" + new URLSearchParams(params), {credentials: "omit",
                                                                   headers: {Accept: "application/json"}})
        .then(function (r) { return r.ok ? r.json() : []; })
        .then(function (found) { if (mine === asked) show(found); })
        .catch(function () { if (mine === asked) show([]); });
    }

    function later() {
      clearTimeout(timer);
      timer = setTimeout(ask, 400);
    }

    if (box.dataset.mode === "report") {
      document.addEventListener("ourcity:point", function (e) { point = e.detail; box.hidden = true; ask(); });
      if (report) {
        report.elements.category.addEventListener("change", ask);
        report.elements.description.addEventListener("input", later);
        report.addEventListener("reset", function () { point = null; clear(); box.hidden = true; });
      }
    } else {
      document.addEventListener("ourcity:place", function (e) { point = e.detail; ask(); });
      var onMap = function () {
        var map = window.OurCity && window.OurCity.map;
        if (!map) return;
        map.on("moveend", function () {
          if (map.getZoom() < BROWSE_MIN_ZOOM) {
            point = null; clear(); status.textContent = box.dataset.zoom;
            return;
          }
          var c = map.getCenter();
          point = {lat: c.lat, lon: c.lng};
          later();
        });
        status.textContent = box.dataset.zoom;
      };
      if (window.OurCity && window.OurCity.map) onMap();
      else document.addEventListener("ourcity:ready", onMap);
    }
  }

  document.querySelectorAll(".nearby").forEach(setup);
}());
