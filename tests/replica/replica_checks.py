"""Run only inside tests/replica/test_replica.py's pytest (not named test_*: the main run does not collect it),
with DATABASE_REPLICA_URL set to a real streaming standby of the primary.

Replay on the standby is paused after a first complaint; a second one is then filed. A client that has changed
nothing still gets the first state of things from the tiles, the popups, the Open311 GET list and the statistics
(so they come from the replica); the resident who filed the second one, and staff after an action, see it at once
(they read the primary). Once replay resumes, everyone sees it.
"""
import math
import os
import subprocess
import time
from urllib.parse import urlencode

import pytest
from django.db import connections
from django.test import Client

from complaints.models import Complaint
from open311.keys import api_key_issue
from tests.complaints.factories import make_user
from tests.open311.conftest import SERVICE, TVERSKOY, make_service

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "replica"])
FORM = "application/x-www-form-urlencoded"


def replay(action):
    """Pause or resume the standby's replay: as its superuser (the cluster's owner), not as the application's role,
    which may not do it."""
    replica = connections["replica"].settings_dict
    owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run([*owner, "/usr/lib/postgresql/15/bin/psql", "-h", replica["HOST"], "-p", str(replica["PORT"] or 5432),
                    "-U", "postgres", "-d", "postgres", "-qAtc", f"SELECT pg_wal_replay_{action}()"],
                   check=True, capture_output=True)


def one(alias, sql, params=()):
    with connections[alias].cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()[0]


def replayed():
    """Wait until the standby has replayed everything the primary has written so far."""
    target = one("default", "SELECT pg_current_wal_lsn()::text")
    deadline = time.monotonic() + 60
    while not one("replica", "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [target]):
        assert time.monotonic() < deadline, "the standby did not catch up within 60 s"
        time.sleep(0.05)


def tile_url(lon, lat, z=16):
    n = 1 << z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    return f"/tiles/complaints/{z}/{x}/{y}.mvt"


def post(client, key, description):
    data = {"api_key": key, "service_code": SERVICE, "lat": TVERSKOY[1], "long": TVERSKOY[0],
            "description": description, "attribute[kind]": "hole", "email": "ivan@example.org"}
    response = client.post("/open311/v2/requests.json", urlencode(data), content_type=FORM)
    assert response.status_code == 201, response.content
    return Complaint.objects.get(pk=response.json()[0]["service_request_id"])


def listed(client):
    response = client.get("/open311/v2/requests.json", {"service_code": SERVICE})
    assert response.status_code == 200
    return {int(r["service_request_id"]) for r in response.json()}


# The map's two tile paths: one point per complaint (zoom 16) and the per-cell counts (zoom 10, web_complaintcell).
TILE_ZOOMS = (16, 10)


def tiles(client):
    return tuple(client.get(tile_url(*TVERSKOY, z=z)).content for z in TILE_ZOOMS)


def seen(client, complaint, first_tiles):
    """What a client sees of `complaint` in each stale-allowed read: (in the list, popup found, each tile changed,
    the statistics' total)."""
    return (complaint.pk in listed(client),
            client.get(f"/map/complaints/{complaint.pk}/").status_code == 200,
            *(now != first for now, first in zip(tiles(client), first_tiles)),
            client.get("/stats/").context["s"]["total"])


def test_the_replica_serves_stale_reads_and_the_primary_serves_own_writes(demo_city):
    assert connections["replica"].settings_dict["HOST"] != connections["default"].settings_dict["HOST"]
    assert one("replica", "SELECT pg_is_in_recovery()") and not one("default", "SELECT pg_is_in_recovery()")
    make_service()
    key = api_key_issue(name="replica-integrator")[1]
    integrator, resident, reader = Client(), Client(), Client()
    first = post(integrator, key, "the first one")
    replayed()
    first_tiles = tiles(reader)
    assert all(first_tiles)  # the first complaint is on both tiles
    total_before = reader.get("/stats/").context["s"]["total"]
    assert listed(reader) == {first.pk} and total_before >= 1

    replay("pause")
    try:
        deadline = time.monotonic() + 30
        while one("replica", "SELECT pg_get_wal_replay_pause_state()") != "paused":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        second = post(resident, key, "the second one")
        # A client that changed nothing reads the replica: the second complaint is not there yet.
        assert seen(reader, second, first_tiles) == (False, False, False, False, total_before)
        forged = Client()
        forged.cookies["ourcity_primary"] = "1"  # not signed: counts for nothing
        assert seen(forged, second, first_tiles) == (False, False, False, False, total_before)
        # The resident who filed it reads the primary: in the list, its popup, the tile, the figures; its page.
        assert seen(resident, second, first_tiles) == (True, True, True, True, total_before + 1)
        assert resident.get(f"/c/{second.tracking_code}/").status_code == 200

        # Staff after an action: take the first complaint into work, then read the public views.
        staff = Client(headers={"accept-language": "en"})
        staff.force_login(make_user("replica-staff", departments=[first.department]))
        response = staff.post(f"/staff/t/{first.pk}/take/")
        assert response.status_code == 302, response.content
        assert Complaint.objects.get(pk=first.pk).state == "in_progress"
        assert seen(staff, second, first_tiles) == (True, True, True, True, total_before + 1)
        assert listed(reader) == {first.pk}  # the reader still has the replica's view
    finally:
        replay("resume")
    replayed()
    assert seen(reader, second, first_tiles) == (True, True, True, True, total_before + 1)
