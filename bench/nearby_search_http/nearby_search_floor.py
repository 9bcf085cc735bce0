"""The floors for GET /api/v1/nearby and GET /api/v1/places, in the same Django server as the real endpoints: what
any implementation must do at the least. Each reads its query string, runs one raw SQL statement (no ORM, no
serializers, no rate limit, no validation beyond float()) and writes the rows as JSON.

  /bench/nearby-floor  the open complaints of the category's group within 250 m, five nearest (the bare
                       statement over the partial GiST index of open complaints: a box, then metres; no tie-break)
  /bench/places-floor  the addresses' and facilities' labels holding every word of the query as typed (the
                       stored search key's GIN index, plainto_tsquery: no typo, no prefix, no ranking)
"""
import json

from django.conf import settings
from django.db import connection
from django.http import HttpResponse, HttpResponseBadRequest

NEARBY = """
    SELECT c.id, c.d FROM (
        SELECT c.id, c.category_id, ST_Distance(c.location::geography, p.g::geography) AS d
        FROM complaints_complaint c, (SELECT ST_SetSRID(ST_MakePoint(%(lon)s, %(lat)s), 4326) AS g) p
        WHERE c.state NOT IN ('resolved', 'duplicate', 'hidden')
          AND c.location && ST_Expand(p.g, facilities_degree_window(250, %(lat)s))
          AND ST_DWithin(c.location::geography, p.g::geography, 250)
        OFFSET 0) c  -- the window's few rows from the GiST index alone, as complaints.selectors does
    WHERE c.category_id = ANY(ARRAY(SELECT m.id FROM routing_category m, routing_category s
                                    WHERE s.code = %(code)s AND m.group_i18n = s.group_i18n))
    ORDER BY c.d LIMIT 5"""
PLACES = """
    (SELECT d.id, d.label FROM facilities_address d
     WHERE facilities_search_key(d.label) @@ plainto_tsquery(%(config)s::regconfig, %(q)s) LIMIT 8)
    UNION ALL
    (SELECT f.id, f.name FROM facilities_facility f
     WHERE f.valid_to IS NULL AND facilities_search_key(f.name || ' ' || f.address)
           @@ plainto_tsquery(%(config)s::regconfig, %(q)s) LIMIT 8)
    LIMIT 8"""


def _rows(sql, params):
    with connection.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchall()


def nearby_floor(request):
    try:
        params = {"lon": float(request.GET["long"]), "lat": float(request.GET["lat"]),
                  "code": request.GET["service_code"]}
    except (KeyError, ValueError):
        return HttpResponseBadRequest("lat, long, service_code")
    rows = _rows(NEARBY, params)
    return HttpResponse(json.dumps([{"service_request_id": str(r[0]), "distance_m": round(r[1])} for r in rows]),
                        content_type="application/json")


def places_floor(request):
    q = request.GET.get("q", "")
    rows = _rows(PLACES, {"config": settings.SEARCH_TEXT_CONFIG, "q": q})
    return HttpResponse(json.dumps([{"id": r[0], "label": r[1]} for r in rows], ensure_ascii=False),
                        content_type="application/json")
