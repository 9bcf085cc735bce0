"""The residents' pages: the map, its data, reporting a problem, following it, and public statistics.

Views read their input, call one service or selector, and answer; the rules live in complaints/ and routing/.
"""
import hashlib
import json

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.gzip import gzip_page
from django.views.decorators.http import condition, require_GET, require_POST

from geo_ourcity.db_router import stale_reads_ok

from complaints.models import Answer, ComplaintEvent
from complaints.selectors import complaint_by_tracking_code, complaint_history
from complaints.services import (ComplaintError, OutsideCityError, complaint_check, complaint_confirm,
                                 complaint_create, complaint_deny)
from complaints.tracking import normalize_tracking_code, redact
from geo_ourcity.languages import default_language, translated
from geo_ourcity.shared_cache import cached
from complaints.transitions import allowed_actions

from . import selectors, tiles
from .folium_map import rendered_map, with_nonce
from .forms import ReportForm, attributes_from
from .handons import handon_csv_rows, handon_tables
from .labels import EVENT_LABELS, STATE_COLOURS, STATE_LABELS, localized, localized_value
from .limits import limited_per_client
from .notify_views import follow_context

TILE_MAX_AGE = 30  # seconds: with the triggers' exact counts, a change shows on the map within this
DISTRICTS_MAX_AGE = 3600


def _outside_city_message():
    return _("This point is outside the city. Complaints are accepted only within the city's boundaries.")


def _json(data, status=200):
    return JsonResponse(data, status=status, json_dumps_params={"ensure_ascii": False})


def _url_template(name, *params):
    """A URL pattern with {param} placeholders, for Leaflet (e.g. /tiles/complaints/{z}/{x}/{y}.mvt)."""
    markers = {p: str(900001 + i) for i, p in enumerate(params)}
    url = reverse(name, kwargs=markers)
    for param, marker in markers.items():
        url = url.replace(marker, "{" + param + "}")
    return url


def _states():
    return [{"code": s.value, "label": str(STATE_LABELS[s]), "colour": STATE_COLOURS[s]} for s in tiles.PUBLIC_STATES]


def _map_texts():
    return {
        "loading": _("Loading…"), "loadFailed": _("Could not load this. Please try again."),
        "failed": _("The complaint could not be sent. Please try again."),
        "district": _("District"), "inside": _("the point is inside it"), "metresAway": _("%(m)s m away"),
        "choose": _("Choose…"), "aboutFacility": _("It is about:"), "zoomIn": _("Zoom in"),
        "complaintsHere": _("Complaints here"), "noLocation": _("Your browser did not give a location."),
        "errors": _("Fields to correct: %(n)s."), "choosePlace": _("Tap the map where the problem is."),
        "chooseCategory": _("Choose what the problem is."), "photosChosen": _("Photos chosen: %(n)s"),
        "sent": _("Sent. Your complaint went to:"),
        # a photo that came first (web/static/web/photo-place.js)
        "placeFromPhoto": _("The place is where the photo was taken (from its location data). Tap the map to "
                            "move it."),
        "photoNoPlace": _("The photo carries no location: tap the map where the problem is."),
        "photoOutside": _("The photo was taken outside the city: tap the map where the problem is."),
    }


def _category_groups():
    """[(group key, group label, [(code, name)])] of the active categories, for the filters."""
    groups = {}
    for c in selectors.active_categories():
        key = translated(c.group_i18n, default_language())  # the group's key: its default language's name
        groups.setdefault(key, (localized(c, "group"), []))[1].append((c.code, localized(c, "name")))
    return [(key, label, sorted(items, key=lambda i: i[1])) for key, (label, items) in
            sorted(groups.items(), key=lambda g: g[1][0])]


# --- the map page and its data --------------------------------------------------------------------------

def map_page(request):
    header, html, script, names = rendered_map(
        _url_template("web:complaint-tile", "z", "x", "y"), reverse("web:districts"),
        settings.TILE_URL, settings.TILE_ATTRIBUTION, selectors.map_bounds())
    config = {
        "names": names,
        "urls": {"tiles": _url_template("web:complaint-tile", "z", "x", "y"), "point": reverse("web:point"),
                 "popup": _url_template("web:complaint-popup", "pk"), "report": reverse("web:report")},
        "states": _states(),
        "minZoom": tiles.MIN_ZOOM,
        "rawMinZoom": tiles.RAW_MIN_ZOOM,
        "text": _map_texts(),
    }
    return render(request, "web/map.html", {
        "folium_header": with_nonce(header, request.csp_nonce), "folium_html": html, "folium_script": script,
        "config": config,
        "states": config["states"], "groups": _category_groups(), "districts": selectors.districts_for_filter(),
        "form": ReportForm(), "errors": {}, "photo_limit": settings.PHOTO_MAX_PER_COMPLAINT,
    })


def _map_filter(params):
    """The filter of a tile request: state (repeatable), group, category (repeatable), district."""
    category_ids = None
    codes = [c for c in params.getlist("category") if c]
    group = params.get("group")
    if codes or group:
        categories = selectors.active_categories().filter(code__in=codes) if codes else \
            selectors.active_categories()
        if group:
            categories = categories.filter(**{f"group_i18n__{default_language()}": group})
        category_ids = tuple(categories.values_list("id", flat=True))
    district = params.get("district") or None
    if district is not None and not district.isdigit():
        raise ValueError("district must be a number")
    return tiles.MapFilter(states=tuple(s for s in params.getlist("state") if s),
                           category_ids=category_ids or (), nothing=category_ids == (),
                           area_id=int(district) if district else None)


@require_GET
@stale_reads_ok
def complaint_tile(request, z, x, y):
    if not tiles.valid_tile(z, x, y):
        raise Http404("no such tile")
    try:
        flt = _map_filter(request.GET)
    except ValueError as exc:
        return HttpResponseBadRequest(str(exc))
    response = HttpResponse(tiles.complaints_tile(z, x, y, flt), content_type="application/vnd.mapbox-vector-tile")
    patch_cache_control(response, public=True, max_age=TILE_MAX_AGE)
    return response


def _districts_etag(request):
    return hashlib.sha1(selectors.districts_version().encode()).hexdigest()[:16]


@require_GET
@gzip_page
@condition(etag_func=_districts_etag)
def districts(request):
    """The city's districts as GeoJSON: the map's outline layer, drawn with or without base tiles."""
    key = f"web:districts:{_districts_etag(request)}"
    body = cached(key, selectors.districts_geojson, DISTRICTS_MAX_AGE)  # computed when the cache is unreachable
    response = HttpResponse(body, content_type="application/geo+json")
    patch_cache_control(response, public=True, max_age=DISTRICTS_MAX_AGE)
    return response


@require_GET
def point(request):
    """What can be reported at ?lon=&lat=: the district, the facilities there, the categories that fit."""
    try:
        lon, lat = float(request.GET["lon"]), float(request.GET["lat"])
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise ValueError
    except (KeyError, ValueError):
        return _json({"error": _("Give a longitude and a latitude.")}, status=400)
    options = selectors.report_options((lon, lat))
    if options is None:
        return _json({"inside": False, "message": _outside_city_message()})
    return _json({
        "inside": True,
        "district": options.district.name if options.district else "",
        "facilities": [{
            "id": f.id, "name": f.name or str(f), "address": f.address, "type": localized(f.type, "name"),
            "owner": f.owner.short_name if f.owner else "", "covers": near.covers,
            "distance_m": round(near.distance_m), "geometry": json.loads(f.geom.json),
        } for f, near in options.facilities],
        "categories": [{
            "code": c.code, "name": localized(c, "name"), "group": localized(c, "group"), "facility": facility_id,
            "attributes": [{
                "code": a.code, "datatype": a.datatype, "required": a.required, "label": localized(a, "description"),
                "values": [{"key": str(v.get("key")), "name": localized_value(v)} for v in a.values
                           if isinstance(v, dict)],
            } for a in c.attributes.all() if a.variable],
        } for c, facility_id in options.categories],
    })


@require_GET
@stale_reads_ok
def complaint_popup(request, pk):
    complaint = selectors.complaint_for_popup(pk)
    if complaint is None:
        raise Http404("no such complaint")
    others = [{"id": o.pk, "category": localized(o.category, "name"), "state": STATE_LABELS.get(o.state, o.state),
               "colour": STATE_COLOURS.get(o.state, "#000"), "submitted_at": o.submitted_at}
              for o in selectors.complaints_at_spot(complaint)]
    response = render(request, "web/_popup.html", {"c": complaint, "others": others,
                                                   **_complaint_context(complaint)})
    patch_cache_control(response, private=True, max_age=TILE_MAX_AGE)  # in the reader's language
    return response


def _complaint_context(complaint):
    """What the complaint page and the map popup show. Free text (the description, answers, the explanation, which
    may quote a hand-over reason) only through complaints.tracking.redact: tracking codes and keys never show."""
    decision = complaint.decision
    # Only published answers: one waiting for a moderator, or returned by one, is not public (issue 10).
    answers = [a for a in complaint.answers.all() if a.state == Answer.State.PUBLISHED]
    for answer in answers:
        answer.public_text = redact(answer.text)
    return {
        "state_label": STATE_LABELS.get(complaint.state, complaint.state),
        "state_colour": STATE_COLOURS.get(complaint.state, "#000"),
        "category_name": localized(complaint.category, "name"),
        "description": redact(complaint.description),
        "explanation": redact(localized(decision, "explanation")) if decision else "",
        "answers": answers,
        # The resident's photos; a department's come with its answer (answer.photos).
        "photos": [p for p in complaint.photos.all() if p.answer_id is None],
    }


# --- reporting ------------------------------------------------------------------------------------------

# complaint_create's error `field` -> the form field the message is shown beside.
ERROR_FIELDS = {"service_code": "category", "location": "location", "description": "description",
                "photo": "photo", "email": "email", "facility": "facility"}


def _wants_page(request):
    """A browser without JavaScript posts the plain form and asks for a page (text/html); the map's script and
    every other client get JSON."""
    accept = request.headers.get("Accept", "")
    return "text/html" in accept and "application/json" not in accept


def report(request):
    """Submit a report: from the map's steps (as JSON: the routed complaint, or messages per field with 400), or,
    without JavaScript, the one-page form of GET /report/ (its page again with the messages beside the fields, or
    the result). Every field is checked at once: all the messages come back together."""
    if request.method == "GET":
        return _report_page(request, ReportForm(), {})
    if request.method != "POST":
        return HttpResponse(status=405, headers={"Allow": "GET, POST"})
    return _report_post(request)


@limited_per_client("web-report", "LIMIT_WEB_REPORTS")  # every submission counts, per client address
def _report_post(request):
    form = ReportForm(request.POST, request.FILES)
    errors = {}
    if form.is_valid():
        data = form.cleaned_data
        category = data["category"]
        try:
            complaint = complaint_create(
                category=category, point=(data["lon"], data["lat"]), description=data["description"],
                attributes=attributes_from(request.POST), email=data["email"],
                facility=data["facility"], photos=request.FILES.getlist("photo"), source="web")
        except ComplaintError as exc:
            errors = _complaint_errors(exc, category)
        else:
            if _wants_page(request):
                response = render(request, "web/report_done.html", _report_result(complaint))
            else:
                response = _json(_report_result(complaint))
            patch_cache_control(response, no_store=True, private=True)  # it carries the confirmation key
            return response
    else:
        errors = {("location" if k in ("lat", "lon") else k): [str(m) for m in v] for k, v in form.errors.items()}
        category = form.cleaned_data.get("category")
        if category is not None:  # its questions and the photos are checked too: every message at once
            try:
                complaint_check(category=category, attributes=attributes_from(request.POST),
                                photos=request.FILES.getlist("photo"))
            except ComplaintError as exc:
                for key, messages_ in _complaint_errors(exc, category).items():
                    errors.setdefault(key, []).extend(messages_)
    if _wants_page(request):
        return _report_page(request, form, errors, status=400)
    return _json({"errors": errors}, status=400)


def _complaint_errors(exc, category):
    """complaint_create's faults (one, or all of them: ComplaintInvalid) -> {form field: [messages]}."""
    codes = {a.code for a in category.attributes.all()}
    errors = {}
    for fault in getattr(exc, "errors", None) or [exc]:
        if isinstance(fault, OutsideCityError):
            key, message = "location", _outside_city_message()
        else:
            field = fault.field
            key = f"attribute[{field}]" if field in codes else ERROR_FIELDS.get(field, "__all__")
            message = str(fault)
        errors.setdefault(key, []).append(message)
    return errors


def _report_page(request, form, errors, status=200):
    """The report as one page (no JavaScript needed): the form's steps one below the other, the chosen category's
    questions with their answers, each message beside its field."""
    category = form.categories.get(form.data.get("category", "")) if form.is_bound else None
    questions = []
    for a in (category.attributes.all() if category else ()):
        if not a.variable:
            continue
        name = f"attribute[{a.code}]"
        answer = form.data.getlist(name + "[]") if a.datatype == "multivaluelist" else form.data.get(name, "")
        questions.append({
            "code": a.code, "name": name, "datatype": a.datatype, "required": a.required,
            "label": localized(a, "description"), "answer": answer, "errors": errors.get(name, []),
            "values": [{"key": str(v.get("key")), "name": localized_value(v)} for v in a.values if isinstance(v, dict)],
        })
    response = render(request, "web/report.html", {
        "form": form, "errors": errors, "general_errors": errors.get("__all__", []), "questions": questions,
        "categories": _category_groups(), "chosen": category.code if category else "",
        "photo_limit": settings.PHOTO_MAX_PER_COMPLAINT,
    }, status=status)
    patch_cache_control(response, no_store=True, private=True)
    return response


def _report_result(complaint):
    decision = complaint.decision
    return {
        "tracking_code": complaint.tracking_code,
        # Shown to the resident this once (and mailed, if they gave an address): it confirms or denies the fix.
        "confirmation_key": complaint.confirmation_key,
        "url": reverse("web:complaint", args=[complaint.tracking_code]),
        "department": complaint.department.display_name,
        "facility": decision.facility.name if decision.facility_id and decision.facility else "",
        "explanation": redact(localized(decision, "explanation")),
        "state": str(STATE_LABELS[complaint.state]),
        "deadline": complaint.deadline.isoformat(),
    }


# --- following a complaint ------------------------------------------------------------------------------

# Every lookup of a tracking code counts against one limit per client: a guesser meets a 429 soon.
LOOKUPS = limited_per_client("code-lookup", "LIMIT_CODE_LOOKUPS")


@LOOKUPS
def find_complaint(request):
    code = normalize_tracking_code(request.GET.get("code", ""))
    if code and complaint_by_tracking_code(code):
        return redirect("web:complaint", code)
    messages.error(request, _("No complaint has this tracking code. Check it and try again."))
    back = request.META.get("HTTP_REFERER", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = reverse("web:map")
    return redirect(back)


@LOOKUPS
def complaint_page(request, code):
    complaint = complaint_by_tracking_code(code)
    if complaint is None:
        raise Http404("no such complaint")
    if complaint.tracking_code != code:
        return redirect("web:complaint", complaint.tracking_code)
    events = [_event_row(e) for e in complaint_history(complaint, public_only=True)]
    actions = allowed_actions(complaint.state)
    return render(request, "web/complaint.html", {
        "c": complaint, "events": events, "can_confirm": "confirm" in actions, "can_deny": "deny" in actions,
        **_complaint_context(complaint), **follow_context(complaint),
    })


def _event_row(event):
    """One public history line; a routing line explains the decision in the reader's language."""
    reason = event.reason
    if event.kind == ComplaintEvent.Kind.ROUTED and event.decision_id:
        reason = localized(event.decision, "explanation")
    return {"event": event, "label": EVENT_LABELS.get(event.kind, event.kind), "reason": redact(reason),
            "to_state": STATE_LABELS.get(event.to_state, event.to_state)}


@require_POST
@LOOKUPS
def complaint_confirm_view(request, code):
    try:
        complaint_confirm(tracking_code=code, key=request.POST.get("key", ""))
    except ComplaintError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Thank you: the complaint is closed as resolved."))
    return redirect("web:complaint", code)


@require_POST
@LOOKUPS
def complaint_deny_view(request, code):
    try:
        complaint_deny(tracking_code=code, key=request.POST.get("key", ""), reason=request.POST.get("reason", ""))
    except ComplaintError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("The complaint is reopened and goes back to the department."))
    return redirect("web:complaint", code)


# --- statistics -----------------------------------------------------------------------------------------

def _bars(rows):
    """[(label, n)] -> [{label, n, pct}] with pct the share of the largest n (for the bar widths)."""
    top = max((n for _label, n in rows), default=0) or 1
    return [{"label": label, "n": n, "pct": round(100 * n / top, 1)} for label, n in rows]


@stale_reads_ok
def stats_page(request):
    s = selectors.complaint_stats()
    states = [(str(STATE_LABELS[st]), s["by_state"].get(st.value, 0)) for st in tiles.PUBLIC_STATES]
    by_state = _bars(states)
    for row, st in zip(by_state, tiles.PUBLIC_STATES):
        row["colour"] = STATE_COLOURS[st]
    median = s["median_answer_seconds"]
    response = render(request, "web/stats.html", {
        "s": s, "by_state": by_state,
        "by_district": _bars([(name or _("outside any district"), n) for name, n in s["by_district"]]),
        "by_department": _bars(s["by_department"]),
        "on_time_pct": round(100 * s["answered_on_time"] / s["answered"], 1) if s["answered"] else None,
        "median_hours": round(median / 3600, 1) if median is not None else None,
        "median_days": round(median / 86400, 1) if median is not None else None,
        **handon_tables(s["handons"]),
    })
    patch_cache_control(response, private=True, max_age=60)
    return response


@stale_reads_ok
def stats_handons_csv(request):
    """The public hand-on figures (the scheduler's snapshot, as on the statistics page) as CSV."""
    rows = selectors.complaint_stats()["handons"]
    # Made whole here (a few hundred lines), so that every read stays inside this view's replica scope.
    response = HttpResponse("".join(handon_csv_rows(rows)), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="handons.csv"'
    patch_cache_control(response, public=True, max_age=60)
    return response
