/* The place search box (web/templates/web/_place_search.html): as the resident types, GET /api/v1/places; the
 * results are a listbox driven by the keyboard (arrows, Enter, Escape) or the pointer. The chosen place centres
 * the map (an area: the map fits its box); in the report form ("report" mode) it is also the report's point, so a
 * report can be made by address and keyboard alone. Every text goes in with textContent.
 */
(function () {
  "use strict";

  function setup(box) {
    var input = box.querySelector(".place-q");
    var list = box.querySelector(".place-results");
    var status = box.querySelector(".place-status");
    var timer = null, asked = 0, items = [], active = -1;

    function close() {
      list.hidden = true;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
      active = -1;
    }

    function highlight(i) {
      var options = list.querySelectorAll("[role=option]");
      options.forEach(function (o, n) { o.setAttribute("aria-selected", n === i ? "true" : "false"); });
      active = i;
      if (options[i]) {
        input.setAttribute("aria-activedescendant", options[i].id);
        options[i].scrollIntoView({block: "nearest"});
      }
    }

    function choose(i) {
      var place = items[i];
      if (!place) return;
      input.value = place.label;
      close();
      status.textContent = box.dataset.chosen.replace("%(place)s", place.label);
      var city = window.OurCity || {};
      var map = city.map;
      if (map) {
        if (place.bbox) map.fitBounds([[place.bbox[1], place.bbox[0]], [place.bbox[3], place.bbox[2]]]);
        else map.setView([place.lat, place["long"]], Math.max(map.getZoom(), 17));
      }
      var latlng = window.L ? L.latLng(place.lat, place["long"]) : {lat: place.lat, lng: place["long"]};
      if (box.dataset.mode === "report" && city.report && city.report.isReporting()) city.report.choosePoint(latlng);
      document.dispatchEvent(new CustomEvent("ourcity:place", {detail: {lat: place.lat, lon: place["long"],
                                                                        label: place.label, mode: box.dataset.mode}}));
    }

    function show(found) {
      items = found;
      list.textContent = "";
      found.forEach(function (place, i) {
        var li = document.createElement("li");
        li.id = input.id + "-option-" + i;
        li.setAttribute("role", "option");
        li.setAttribute("aria-selected", "false");
        li.className = "place-option";
        li.appendChild(Object.assign(document.createElement("span"), {className: "place-label", textContent: place.label}));
        if (place.detail) {
          li.appendChild(Object.assign(document.createElement("span"), {className: "place-detail small",
                                                                        textContent: " · " + place.detail}));
        }
        li.addEventListener("mousedown", function (e) { e.preventDefault(); });  // keep the focus in the box
        li.addEventListener("click", function () { choose(i); });
        list.appendChild(li);
      });
      list.hidden = !found.length;
      input.setAttribute("aria-expanded", found.length ? "true" : "false");
      status.textContent = found.length ? box.dataset.found.replace("%(n)s", found.length) : box.dataset.none;
      if (found.length) highlight(0);
    }

    function ask() {
      var text = input.value.trim();
      if (text.length < 2) { close(); status.textContent = ""; return; }
      var mine = ++asked;
      fetch(box.dataset.url + "?" + new URLSearchParams({q: text.slice(0, 200), limit: "8"}),
            {credentials: "omit", headers: {Accept: "application/json"}})
        .then(function (r) { return r.ok ? r.json() : []; })
        .then(function (found) { if (mine === asked) show(found); })
        .catch(function () { if (mine === asked) show([]); });
    }

    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(ask, 250);
    });
    input.addEventListener("keydown", function (e) {
      if (e.key === "ArrowDown" || e.key === "ArrowUp") {
        if (list.hidden) { if (items.length) { list.hidden = false; input.setAttribute("aria-expanded", "true"); } }
        if (!items.length) return;
        e.preventDefault();
        var step = e.key === "ArrowDown" ? 1 : -1;
        highlight((active + step + items.length) % items.length);
      } else if (e.key === "Enter") {
        e.preventDefault();  // never submits the report form
        clearTimeout(timer);
        if (!list.hidden && active >= 0) choose(active);
        else ask();
      } else if (e.key === "Escape") {
        close();
      }
    });
    input.addEventListener("blur", function () { setTimeout(close, 150); });
    if (box.dataset.mode === "report") {  // "Report a problem" from the keyboard: straight to the address
      var start = document.getElementById("report-start");
      if (start) start.addEventListener("click", function () { setTimeout(function () { input.focus(); }, 0); });
    }
    var form = input.form;
    if (form) form.addEventListener("reset", function () { items = []; list.textContent = ""; status.textContent = ""; close(); });
  }

  document.querySelectorAll(".place-search").forEach(setup);
}());
