"""The floor for POST /open311/v2/requests.json: what any implementation must do at the least, in the same
Django server. It parses the form, runs one raw routing statement (the covering district, and the nearest
facility of the service's types within its radius by true distance) and inserts two rows (a decision and a
complaint), in one transaction; no validation of anything else, no serializers, no history, no ORM.
"""
import json
import os
import weakref

from django.db import connection, transaction
from django.http import HttpResponse, HttpResponseBadRequest
from django.views.decorators.csrf import csrf_exempt

ROUTE = """
WITH p AS (SELECT ST_SetSRID(ST_MakePoint($1, $2), 4326) AS g),
c AS (SELECT c.radius_m, array_agg(m.facilitytype_id) AS types FROM routing_category c
      LEFT JOIN routing_category_facility_types m ON m.category_id = c.id WHERE c.code = $3 GROUP BY c.id)
SELECT (SELECT a.id FROM facilities_adminareapiece pc JOIN facilities_adminarea a ON a.id = pc.area_id
        WHERE ST_Covers(pc.geom, p.g) AND a.level = 'district' LIMIT 1), n.id, n.d
FROM p CROSS JOIN c LEFT JOIN LATERAL (
    SELECT k.id, ST_Distance(k.geom::geography, p.g::geography) AS d
    FROM (SELECT f.id, f.geom FROM facilities_facility f WHERE f.type_id = ANY(c.types) AND f.valid_to IS NULL
          ORDER BY f.geom <-> p.g LIMIT 16) k
    WHERE ST_DWithin(k.geom::geography, p.g::geography, c.radius_m) ORDER BY d LIMIT 1) n ON true
"""
TABLES = """
CREATE TABLE IF NOT EXISTS bench_floor_decision (
    id bigserial PRIMARY KEY, area_id bigint, facility_id bigint, distance_m float8,
    created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS bench_floor_complaint (
    id bigserial PRIMARY KEY, decision_id bigint NOT NULL REFERENCES bench_floor_decision (id),
    service_code text NOT NULL, location geometry(Point, 4326) NOT NULL, description text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now());
"""
ROUTE_PLAIN = ROUTE.replace("%", "%%").replace("$1", "%s").replace("$2", "%s").replace("$3", "%s")
POOLED = os.environ.get("OURCITY_DB_POOLED") == "1"
_prepared = weakref.WeakKeyDictionary()  # one PREPARE per database connection, as routing.engine does


@csrf_exempt
def floor(request):
    try:
        lon, lat = float(request.POST["long"]), float(request.POST["lat"])
        code = request.POST["service_code"]
    except (KeyError, ValueError):
        return HttpResponseBadRequest("lat, long, service_code")
    with transaction.atomic(), connection.cursor() as cur:
        if POOLED:  # behind a transaction-mode pooler nothing prepared survives the transaction
            cur.execute(ROUTE_PLAIN, [lon, lat, code])
        else:
            if connection.connection not in _prepared:
                cur.execute("PREPARE bench_floor(float8, float8, text) AS " + ROUTE)
                _prepared[connection.connection] = True
            cur.execute("EXECUTE bench_floor(%s, %s, %s)", [lon, lat, code])
        row = cur.fetchone()
        if row is None or row[0] is None:
            return HttpResponseBadRequest("outside the city")
        cur.execute("INSERT INTO bench_floor_decision (area_id, facility_id, distance_m) VALUES (%s, %s, %s) "
                    "RETURNING id", row)
        decision_id = cur.fetchone()[0]
        cur.execute("INSERT INTO bench_floor_complaint (decision_id, service_code, location, description) "
                    "VALUES (%s, %s, ST_SetSRID(ST_MakePoint(%s, %s), 4326), %s) RETURNING id",
                    [decision_id, code, lon, lat, request.POST.get("description", "")])
        complaint_id = cur.fetchone()[0]
    return HttpResponse(json.dumps([{"service_request_id": str(complaint_id)}]), status=201,
                        content_type="application/json")
