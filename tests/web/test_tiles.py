"""Complaint vector tiles: one point per complaint when zoomed in, exact per-cell counts when zoomed out (kept by
triggers), filters, moderation, and caching short enough for a change to show within a minute."""
import math

import pytest
from django.db import connection
from django.utils.cache import get_max_age

from complaints.models import Complaint, State
from routing.models import Category
from web import tiles

from .conftest import TVERSKAYA
from .mvt import decode


def tile_of(lon, lat, z):
    n = 1 << z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return z, x, y


def features(client, lon, lat, z, **params):
    response = client.get("/tiles/complaints/%d/%d/%d.mvt" % tile_of(lon, lat, z), params)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.mapbox-vector-tile"
    layers = decode(response.content)
    return layers["complaints"]["features"] if layers else []


def ids(feats):
    return {f["properties"]["id"] for f in feats}


def test_zoomed_in_a_tile_holds_each_complaint_with_its_state(client, report):
    first, second = report(), report(point=(TVERSKAYA[0] + 0.0002, TVERSKAYA[1]))
    feats = features(client, *TVERSKAYA, 16)
    mine = [f for f in feats if f["properties"]["id"] in (first.id, second.id)]
    assert len(mine) == 2
    assert {f["properties"]["state"] for f in mine} == {State.ASSIGNED}
    # Where it is: the point's pixel position in the tile (extent 4096).
    z, x, y = tile_of(*TVERSKAYA, 16)
    n = 1 << z
    px = ((TVERSKAYA[0] + 180) / 360 * n - x) * 4096
    point = next(f for f in mine if f["properties"]["id"] == first.id)["points"][0]
    assert abs(point[0] - px) <= 1


def test_zoomed_out_a_tile_holds_counts_per_cell(client, report):
    made = [report(point=(TVERSKAYA[0] + i * 1e-5, TVERSKAYA[1])) for i in range(3)]
    Complaint.objects.filter(pk=made[0].pk).update(state=State.RESOLVED)
    feats = features(client, *TVERSKAYA, 10)
    cell = max(feats, key=lambda f: f["properties"]["n"])
    assert cell["properties"]["n"] == 3
    assert cell["properties"]["assigned"] == 2 and cell["properties"]["resolved"] == 1
    assert "id" not in cell["properties"]
    # Cells are drawn at their centre: never closer to the tile's edge than half a cell.
    x, y = cell["points"][0]
    assert 256 <= x <= 4096 - 256 and 256 <= y <= 4096 - 256


def test_the_counts_follow_every_change(report):
    """The triggers keep web_complaintcell and web_complaintcellstate equal to a recount, through inserts, updates
    and deletes."""
    made = [report(point=(TVERSKAYA[0] + i * 1e-4, TVERSKAYA[1])) for i in range(4)]
    Complaint.objects.filter(pk=made[0].pk).update(state=State.IN_PROGRESS)
    Complaint.objects.filter(pk=made[1].pk).update(category=Category.objects.get(code="yard-snow"))
    Complaint.objects.filter(pk__in=[made[2].pk, made[3].pk]).update(state=State.HIDDEN)
    Complaint.objects.filter(pk=made[3].pk).delete()
    Complaint.objects.filter(pk=made[0].pk).update(description="changes nothing on the map")

    def cells():
        with connection.cursor() as cur:
            cur.execute("SELECT level, cx, cy, state, category_id, area_id, n FROM web_complaintcell WHERE n <> 0 "
                        "ORDER BY 1, 2, 3, 4, 5, 6")
            return cur.fetchall()

    def by_state():  # the coarse counts (no category, no area): what an unfiltered zoomed-out tile reads
        with connection.cursor() as cur:
            cur.execute("SELECT level, cx, cy, state, n FROM web_complaintcellstate WHERE n <> 0 ORDER BY 1, 2, 3, 4")
            return cur.fetchall()

    def summed(rows):
        out = {}
        for level, cx, cy, state, _category, _area, n in rows:
            out[level, cx, cy, state] = out.get((level, cx, cy, state), 0) + n
        return sorted((*k, n) for k, n in out.items() if n)

    kept, kept_by_state = cells(), by_state()
    with connection.cursor() as cur:
        cur.execute("SELECT web_complaintcell_rebuild()")
    assert kept == cells()
    assert kept_by_state == by_state() == summed(kept)
    assert len(kept) > 0


def test_hidden_complaints_are_never_drawn(client, report):
    complaint = report()
    Complaint.objects.filter(pk=complaint.pk).update(state=State.HIDDEN)
    assert complaint.id not in ids(features(client, *TVERSKAYA, 16))
    assert complaint.id not in ids(features(client, *TVERSKAYA, 16, state=State.HIDDEN))
    assert all(f["properties"].get("hidden") is None for f in features(client, *TVERSKAYA, 10))


@pytest.mark.parametrize("z", [16, 10])
def test_filters(client, report, z):
    snow = Category.objects.get(code="yard-snow")
    yard = report()
    road = report(category=Category.objects.get(code="road-pothole"), attributes={"size": _first_key("road-pothole", "size")})
    Complaint.objects.filter(pk=yard.pk).update(state=State.RESOLVED)

    def count(**params):
        feats = features(client, *TVERSKAYA, z, **params)
        return sum(f["properties"].get("n", 1) for f in feats if f["properties"].get("id") in (None, yard.id, road.id))

    assert count() == 2
    assert count(state=State.RESOLVED) == 1
    assert count(state=[State.RESOLVED, State.ASSIGNED]) == 2
    assert count(state="no-such-state") == 0
    assert count(category="yard-rubbish") == 1
    assert count(category="no-such-category") == 0
    assert count(group=snow.group_i18n["ru"]) == 1  # yards
    assert count(group=snow.group_i18n["ru"], category="road-pothole") == 0
    assert count(district=yard.area_id) == 2
    assert count(district=yard.area_id + 100000) == 0


def _first_key(category_code, attribute_code):
    attribute = Category.objects.get(code=category_code).attributes.get(code=attribute_code)
    return attribute.values[0]["key"]


def test_tiles_are_cached_briefly_and_bad_ones_refused(client, db):
    response = client.get("/tiles/complaints/12/2476/1280.mvt")
    assert 0 < get_max_age(response) <= 60  # a new complaint or a state change shows within a minute
    assert client.get("/tiles/complaints/3/8/1.mvt").status_code == 404  # x beyond 2^z
    assert client.get("/tiles/complaints/12/2476/1280.mvt", {"district": "x"}).status_code == 400
    assert client.get("/tiles/complaints/5/19/10.mvt").content == b""  # below MIN_ZOOM: nothing drawn


def test_a_tile_is_one_query_whatever_the_filter(client, report, django_assert_max_num_queries):
    report()
    with django_assert_max_num_queries(3):  # the filter's category lookup, the tile, the session-less rest
        client.get("/tiles/complaints/%d/%d/%d.mvt" % tile_of(*TVERSKAYA, 11), {"group": "Дворы"})
    assert tiles.RAW_MIN_ZOOM > 11


def test_the_repair_command_recounts(report, capsys):
    from django.core.management import call_command

    report()
    with connection.cursor() as cur:
        cur.execute("TRUNCATE web_complaintcell")
    call_command("rebuild_map_counts")
    assert "map counts rebuilt" in capsys.readouterr().out
    with connection.cursor() as cur:
        cur.execute("SELECT sum(n) FROM web_complaintcell WHERE level = 11")
        assert cur.fetchone()[0] == Complaint.objects.count()
