"""Reads behind the residents' pages: what can be reported at a point, district outlines, figures."""
import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib.gis.db.models.functions import Distance
from django.contrib.gis.geos import Point
from django.contrib.gis.measure import D
from django.db import connection
from django.db.models import Count
from django.utils import timezone

from complaints.models import OPEN_STATES, State, VolunteerCheck
from complaints.handons import HandonRow, handon_rates
from complaints.selectors import complaints_public
from facilities.models import AdminArea, Department, Facility
from facilities.selectors import areas_covering_point, areas_extent, facilities_near_point, finest_level
from geo_ourcity.db_router import read_connection
from routing.models import Category

from . import tiles
from .labels import localized
from .models import StatisticsSnapshot

# District outlines for the map: simplified (about 30 m) and rounded (about 1 m); a few hundred kB for
# the demo city's districts.
DISTRICT_SIMPLIFY_DEGREES = 0.0005
DISTRICT_DECIMALS = 5


# --- reporting ------------------------------------------------------------------------------------------

@dataclass
class PointOptions:
    district: AdminArea | None
    areas: list
    facilities: list  # [(Facility, NearbyFacility)], nearest first
    categories: list  # [(Category, facility_id or None)]


def active_categories():
    return Category.objects.filter(active=True).prefetch_related("facility_types", "attributes")


def report_options(point):
    """What a resident can report at a point: None outside the city; else the covering district, the
    facilities under or near the point, and the categories that make sense there, each with its facility.

    A category about kinds of facilities (schools, hospitals...) is offered where such a facility covers the
    point or lies within the category's search radius, and nowhere else; unless the registry holds no facility
    of those kinds at all (then it can not judge, and offers it everywhere). Categories about no facility kind
    (roads, yards, lighting...) are offered everywhere in the city.
    """
    point = Point(float(point[0]), float(point[1]), srid=4326) if not isinstance(point, Point) else point
    areas = areas_covering_point(point)
    if not areas:
        return None
    district = areas[0]  # the smallest covering area (of the deepest level)
    categories = list(active_categories())
    all_type_ids = {t.id for c in categories for t in c.facility_types.all()}
    registered = set(Facility.objects.active().filter(type_id__in=all_type_ids)
                     .values_list("type_id", flat=True).distinct()) if all_type_ids else set()

    near_by_key, offered, found = {}, [], {}
    for category in categories:
        type_ids = tuple(sorted(t.id for t in category.facility_types.all()))
        if not type_ids:
            offered.append((category, None))
            continue
        key = (type_ids, category.radius_m)
        if key not in near_by_key:
            near_by_key[key] = facilities_near_point(point, type_ids=type_ids, radius_m=category.radius_m, limit=1)
        near = near_by_key[key]
        if near:
            found.setdefault(near[0].facility_id, near[0])
            offered.append((category, near[0].facility_id))
        elif not registered.intersection(type_ids):
            offered.append((category, None))
    objects = Facility.objects.filter(id__in=found).select_related("type", "owner").in_bulk()
    facilities = sorted(((objects[i], found[i]) for i in found if i in objects),
                        key=lambda pair: (not pair[1].covers, pair[1].distance_m))
    # Categories about what is here come first.
    offered.sort(key=lambda pair: (pair[1] is None, localized(pair[0], "group"), localized(pair[0], "name")))
    return PointOptions(district=district, areas=areas, facilities=facilities, categories=offered)


# --- the map --------------------------------------------------------------------------------------------

def map_bounds():
    """The map's first view: OURCITY_MAP_BOUNDS, else the extent of the city's areas (None: none loaded)."""
    return settings.MAP_BOUNDS or areas_extent()


def districts_version():
    """Changes whenever a district is added, retired or replaced (the cache key of the outlines)."""
    with connection.cursor() as cur:
        cur.execute("SELECT count(*), max(id), max(valid_from), max(valid_to), %s FROM facilities_adminarea "
                    "WHERE level = %s", [finest_level() or "", finest_level() or ""])
        return "-".join(str(v) for v in cur.fetchone())


def districts_geojson():
    """The active areas of the deepest level (districts, wards ...) as a GeoJSON FeatureCollection (text): id,
    name, and `okrug`: the name of the area it lies in; simplified outlines."""
    with connection.cursor() as cur:
        cur.execute(
            """
            SELECT json_build_object('type', 'FeatureCollection', 'features', COALESCE(json_agg(json_build_object(
                'type', 'Feature', 'id', d.id,
                'properties', json_build_object('name', d.name, 'okrug', o.name),
                'geometry', ST_AsGeoJSON(ST_SimplifyPreserveTopology(d.geom, %s), %s)::json
            ) ORDER BY d.name), '[]'::json))::text
            FROM facilities_adminarea d LEFT JOIN facilities_adminarea o ON o.id = d.parent_id
            WHERE d.level = %s AND d.valid_to IS NULL
            """,
            [DISTRICT_SIMPLIFY_DEGREES, DISTRICT_DECIMALS, finest_level() or ""],
        )
        return cur.fetchone()[0]


def districts_for_filter():
    return AdminArea.objects.active().filter(level=finest_level() or "").only("id", "name").order_by("name")


def complaint_for_popup(pk):
    """A public complaint with what its map popup shows, or None."""
    return (complaints_public().select_related("decision", "area").prefetch_related("answers__photos", "photos")
            .filter(pk=pk).first())


# The other complaints drawn on the same spot as one (their circles cover each other): listed in its popup.
SAME_SPOT_M = 10
SAME_SPOT_MAX = 20


def complaints_at_spot(complaint):
    """The other public complaints within SAME_SPOT_M metres of this one, nearest first (at most SAME_SPOT_MAX):
    a box in degrees picks candidates by the index, the true distance in metres decides."""
    box = SAME_SPOT_M / 111_000 * 2  # degrees of latitude; doubled for a longitude away from the equator
    return list(complaints_public().filter(location__dwithin=(complaint.location, box))
                .filter(location__distance_lte=(complaint.location, D(m=SAME_SPOT_M)))
                .exclude(pk=complaint.pk).annotate(distance=Distance("location", complaint.location))
                .order_by("distance", "-submitted_at")[:SAME_SPOT_MAX])


# --- statistics -----------------------------------------------------------------------------------------

TOP = 20


def complaint_stats():
    """Public figures: counts by state, district and department, answers on time, median time to answer.

    Counts by state and district come from the map's per-cell counts at their coarsest level (exact, kept by
    triggers, read live). The figures that take a pass over every complaint (about a second with a million of
    them) are the scheduler's (web.tasks.statistics_refresh, every few minutes, into StatisticsSnapshot); only if
    it has never run are they computed here, once, and kept.
    """
    hidden = State.HIDDEN.value
    with read_connection().cursor() as cur:  # the replica in a view whose reads may be stale
        cur.execute("SELECT state, sum(n) FROM web_complaintcellstate WHERE level = %s AND state <> %s GROUP BY state"
                    " HAVING sum(n) > 0", [tiles.MIN_ZOOM + tiles.CELL_SHIFT, hidden])
        by_state = {state: int(n) for state, n in cur.fetchall()}
        cur.execute("SELECT area_id, sum(n) FROM web_complaintcell WHERE level = %s AND state <> %s GROUP BY area_id"
                    " HAVING sum(n) > 0", [tiles.MIN_ZOOM + tiles.CELL_SHIFT, hidden])
        by_area = cur.fetchall()
    names = AdminArea.objects.in_bulk([a for a, _n in by_area if a])
    by_district = sorted(((names[a].name if a in names else None, int(n)) for a, n in by_area),
                         key=lambda row: (-row[1], row[0] or ""))
    snapshot = StatisticsSnapshot.objects.order_by("-computed_at").first()
    if snapshot is None or "handons" not in snapshot.figures:  # never computed, or before the hand-on figures
        snapshot = None
    heavy = snapshot.figures if snapshot is not None else statistics_refresh().figures
    departments = Department.objects.select_related("authority").in_bulk([d for d, _n in heavy["by_department"]])
    return {
        "total": sum(by_state.values()),
        "by_state": by_state,
        "by_district": by_district,
        "by_department": [(departments[d].display_name, n) for d, n in heavy["by_department"] if d in departments],
        "answered": heavy["answered"],
        "answered_on_time": heavy["answered_on_time"],
        "open_overdue": heavy["open_overdue"],
        "median_answer_seconds": heavy["median_answer_seconds"],
        "handons": [HandonRow.from_list(r) for r in heavy["handons"]],
        "computed_at": snapshot.computed_at if snapshot is not None else None,
        **_answer_cycle_stats(heavy),
    }


def _answer_cycle_stats(heavy):
    """The answer cycle's figures of a snapshot (one taken before they existed has none: zeros)."""
    checks = heavy.get("checks_by_department", [])
    departments = Department.objects.select_related("authority").in_bulk([d for d, _m, _f in checks])
    return {"resolved_confirmed": heavy.get("resolved_confirmed", 0),
            "resolved_unconfirmed": heavy.get("resolved_unconfirmed", 0),
            "checks_by_department": [(departments[d].display_name, made, failed) for d, made, failed in checks
                                     if d in departments]}


def statistics_figures():
    """The statistics that take a pass over every complaint (see complaint_stats)."""
    hidden = State.HIDDEN.value
    with connection.cursor() as cur:
        cur.execute(
            """
            SELECT count(*) FILTER (WHERE answered_at IS NOT NULL),
                   count(*) FILTER (WHERE answered_at <= deadline),
                   count(*) FILTER (WHERE state = ANY(%s) AND deadline < now()),
                   percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM answered_at - submitted_at))
                       FILTER (WHERE answered_at IS NOT NULL)
            FROM complaints_complaint WHERE state <> %s
            """,
            [[str(s) for s in OPEN_STATES], hidden])
        answered, on_time, overdue, median_seconds = cur.fetchone()
    by_department = list(complaints_public().order_by().values("department_id").annotate(n=Count("id"))
                         .order_by("-n", "department_id")[:TOP])
    return {"answered": answered, "answered_on_time": on_time, "open_overdue": overdue,
            "median_answer_seconds": median_seconds,
            # the forwarding rate and first-contact resolution, every breakdown (complaints.selectors owns them)
            "handons": [r.as_list() for r in handon_rates()],
            "by_department": [[r["department_id"], r["n"]] for r in by_department],
            **answer_cycle_figures()}


def answer_cycle_figures():
    """Issue 10's figures: resolved complaints confirmed by their residents and those closed by the end of the
    confirmation window in silence, counted apart; volunteers' on-site checks made and failed per department
    (the department whose answer was checked), the most checked first."""
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FILTER (WHERE NOT resolved_unconfirmed), count(*) FILTER (WHERE resolved_unconfirmed)"
                    " FROM complaints_complaint WHERE state = %s", [State.RESOLVED.value])
        confirmed, unconfirmed = cur.fetchone()
        cur.execute("SELECT k.department_id, count(*), count(*) FILTER (WHERE k.verdict = %s)"
                    " FROM complaints_volunteercheck k JOIN complaints_complaint c ON c.id = k.complaint_id"
                    " WHERE c.state <> %s GROUP BY k.department_id ORDER BY count(*) DESC, k.department_id LIMIT %s",
                    [VolunteerCheck.Verdict.NOT_FIXED.value, State.HIDDEN.value, TOP])
        checks = [[d, made, failed] for d, made, failed in cur.fetchall()]
    return {"resolved_confirmed": confirmed, "resolved_unconfirmed": unconfirmed, "checks_by_department": checks}


def statistics_refresh():
    """Compute the expensive statistics and keep them (the scheduler's task; the page reads the latest). Older
    snapshots than the last few are deleted."""
    started = time.perf_counter()
    figures = statistics_figures()
    snapshot = StatisticsSnapshot.objects.create(computed_at=timezone.now(), figures=figures,
                                                 seconds=round(time.perf_counter() - started, 3))
    keep = list(StatisticsSnapshot.objects.order_by("-computed_at").values_list("pk", flat=True)[:10])
    StatisticsSnapshot.objects.exclude(pk__in=keep).delete()
    return snapshot
