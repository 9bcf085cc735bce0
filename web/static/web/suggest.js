/* The report form's category suggestion: as the resident types the description, GET /api/v1/suggestions (with
 * the chosen point) pre-selects the best category, unless the resident picked one by hand, and offers the next
 * ones as buttons. Category names are the select's own option texts; everything goes in with textContent.
 */
(function () {
  "use strict";

  var box = document.getElementById("suggestions");
  var form = document.getElementById("report-form");
  if (!box || !form) return;
  var select = form.elements.category;
  var description = form.elements.description;
  var timer = null, asked = 0, byHand = false, lastAuto = "", choosing = false;

  function optionFor(code) {
    return Array.prototype.filter.call(select.options, function (o) { return o.value === code; })[0];
  }

  function choose(code) {
    choosing = true;
    select.value = code;
    try {
      select.dispatchEvent(new Event("change"));  // map.js shows the category's questions
    } finally {
      choosing = false;
    }
  }

  function show(list) {
    box.textContent = "";
    var known = list.filter(function (s) { return optionFor(s.service_code); });
    if (!known.length) { box.hidden = true; return; }
    if (!byHand && select.value !== known[0].service_code) {
      lastAuto = known[0].service_code;
      choose(lastAuto);
    }
    if (!byHand && select.value === lastAuto) {
      box.appendChild(Object.assign(document.createElement("span"), {className: "suggest-picked",
                                                                     textContent: box.dataset.picked + " "}));
    }
    var others = known.filter(function (s) { return s.service_code !== select.value; }).slice(0, 3);
    if (others.length) {
      box.appendChild(document.createTextNode(box.dataset.others + " "));
      others.forEach(function (s) {
        var button = document.createElement("button");
        button.type = "button";
        button.className = "btn btn-link btn-sm p-0 me-2 align-baseline suggest-other";
        button.dataset.code = s.service_code;
        button.textContent = optionFor(s.service_code).textContent;
        button.addEventListener("click", function () {
          choose(s.service_code);
          byHand = true;  // the resident's choice now
          ask();
        });
        box.appendChild(button);
      });
    }
    box.hidden = false;
  }

  function ask() {
    var text = description.value.trim();
    if (text.length < 3 || !select.options.length) { box.hidden = true; return; }
    var params = {description: text.slice(0, 4000), limit: "4"};
    if (form.elements.lat.value && form.elements.lon.value) {
      params.lat = form.elements.lat.value;
      params["long"] = form.elements.lon.value;
    }
    var mine = ++asked;
    fetch(box.dataset.url + "?" + new URLSearchParams(params), {credentials: "omit",
                                                                 headers: {Accept: "application/json"}})
      .then(function (r) { return r.ok ? r.json() : []; })
      .then(function (list) { if (mine === asked) show(list); })
      .catch(function () { box.hidden = true; });
  }

  description.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(ask, 350);
  });
  // A category the resident picks from the list is theirs: suggestions no longer change it.
  select.addEventListener("change", function () { if (!choosing) byHand = select.value !== ""; });
  // A new point brings a new list of categories (map.js): start again.
  new MutationObserver(function () {
    if (!select.options.length) return;
    if (!optionFor(lastAuto)) lastAuto = "";
    if (!byHand && description.value.trim().length >= 3) ask();
  }).observe(select, {childList: true});
  form.addEventListener("reset", function () { byHand = false; lastAuto = ""; box.hidden = true; box.textContent = ""; });
})();
